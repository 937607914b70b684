"use strict";
// The provider's single page: identity, environments and limits, what runs now, earnings, verdicts.

function renderProvider(p) {
  show(
    el("h1", {}, "Provider ", el("span", { class: "id" }, p.provider_id)),
    el("p", { class: "muted" }, `working for the requestor at ${p.requestor}`),
    el("div", { class: "grid2" },
      el("div", { class: "card" },
        el("h2", {}, "Environments and limits"),
        table(["environment", "benchmark"], p.envs.map((e) =>
          el("tr", {}, el("td", {}, e.env), el("td", { class: "num" }, e.benchmark === null ? "not measured" : e.benchmark.toFixed(1))))),
        el("p", {}, `capacity ${p.capacity} subtasks at once, price ${p.price} per 1e9 fuel`),
        el("p", { class: "muted" }, `whitelist: ${p.whitelist.wasm_modules.length} wasm modules, local apps: ${p.whitelist.local_apps.join(", ") || "none"}, docker: ${p.whitelist.docker_repositories.join(", ") || "none"}`)),
      el("div", { class: "card", id: "earnings" },
        el("h2", {}, "Earnings"),
        el("p", {}, el("strong", { id: "fuel-earned" }, fmtFuel(p.fuel_earned)), ` of accepted wasm work (${p.wasm_earnings.toFixed(4)} at this price); cpu ${fmtDuration(Math.round(p.cpu_ns_earned / 1e6))}`),
        el("p", {}, "results: ", el("span", { id: "accepted" }, `${p.accepted} accepted`), ", ",
          el("span", { id: "rejected" }, `${p.rejected} rejected`), `, ${p.failed} failed here`))),
    el("h2", {}, `Running now (${p.running.length})`),
    table(["subtask", "task", "app", "environment", "running for"], p.running.map((r) =>
      el("tr", {}, el("td", { class: "id" }, r.subtask_id), el("td", { class: "id" }, r.task_id), el("td", {}, r.app),
        el("td", {}, r.env), el("td", { class: "num" }, fmtDuration(r.running_ms)))), { id: "running" }),
    el("h2", {}, "Latest results that earned nothing"),
    table(["subtask", "verdict", "reason"], p.setbacks.map((s) =>
      el("tr", {}, el("td", { class: "id" }, s.subtask_id), el("td", {}, stateBadge(s.verdict)), el("td", {}, s.reason)))),
  );
}

subscribe({ view: "provider" }, renderProvider);
