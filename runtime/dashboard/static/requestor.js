"use strict";
// The requestor's pages, chosen by the path: /tasks, /tasks/ID, /providers, /submit, /throughput,
// /conformance. Each view subscribes to its server-sent events and redraws on every change.

const COLUMNS = ["waiting", "running", "verifying", "accepted", "failed"];

function progressBar(progress) {
  const total = COLUMNS.reduce((sum, c) => sum + progress[c], 0) || 1;
  return el("div", {},
    el("div", { class: "bar" }, COLUMNS.map((c) => el("span", { class: c, style: `width:${(100 * progress[c]) / total}%` }))),
    el("div", { class: "counts" }, COLUMNS.map((c) => `${c} ${progress[c]}`).join(" · ")));
}

function abortButton(task) {
  if (task.state !== "active") return null;
  return el("button", {
    class: "danger abort", "data-task": task.task_id,
    onclick: async (event) => {
      event.target.disabled = true;
      try { await post(`/api/tasks/${encodeURIComponent(task.task_id)}/abort`); }
      catch (error) { alert(`abort failed: ${error.message}`); event.target.disabled = false; }
    },
  }, "Abort");
}

function elapsed(task) { return (task.finished_ms || Date.now()) - task.created_ms; }

function tasksView() {
  subscribe({ view: "tasks" }, (data) => show(
    el("h1", {}, "Tasks"),
    data.tasks.length === 0 ? el("p", { class: "muted" }, "No tasks yet: submit one.") :
    table(["task", "app", "env", "state", "progress", "started", "time", "fuel billed", ""],
      data.tasks.map((t) => el("tr", { "data-task": t.task_id },
        el("td", {}, el("a", { href: `/tasks/${encodeURIComponent(t.task_id)}`, class: "id" }, t.task_id)),
        el("td", {}, t.app), el("td", {}, t.env),
        el("td", {}, stateBadge(t.state), t.reason ? el("div", { class: "muted" }, t.reason) : null),
        el("td", {}, progressBar(t.progress)),
        el("td", {}, fmtTime(t.created_ms)), el("td", { class: "num" }, fmtDuration(elapsed(t))),
        el("td", { class: "num" }, fmtFuel(t.fuel)),
        el("td", {}, abortButton(t)))), { id: "tasks" })));
}

function subtaskRow(s) {
  return el("tr", { "data-subtask": s.subtask_id, "data-state": s.state },
    el("td", { class: "id" }, s.subtask_id, s.replica_of ? el("div", { class: "muted" }, `replica of ${s.replica_of}`) : null),
    el("td", {}, stateBadge(s.state)), el("td", { class: "id" }, s.provider),
    el("td", { class: "num" }, s.attempt), el("td", { class: "reason" }, s.reason),
    el("td", { class: "num" }, fmtFuel(s.fuel)), el("td", { class: "num" }, s.wall_ms ? fmtDuration(s.wall_ms) : ""),
    el("td", {}, fmtTime(s.updated_ms)));
}

// The subtask grid, updated in place: only rows whose data changed are rebuilt (a task of thousands of
// subtasks redraws a handful of rows per event, not the whole table).
function subtaskGrid() {
  const body = el("tbody");
  const rows = new Map();
  const table = el("table", { id: "subtasks" }, el("thead", {}, el("tr", {},
    ["subtask", "state", "provider", "attempt", "verdict / reason", "fuel", "compute", "updated"].map((h) => el("th", {}, h)))), body);
  return {
    table,
    update(subtasks) {
      for (const s of subtasks) {
        const key = JSON.stringify(s);
        const row = rows.get(s.subtask_id);
        if (row && row.dataset.key === key) continue;
        const fresh = subtaskRow(s);
        fresh.dataset.key = key;
        if (row) row.replaceWith(fresh); else body.append(fresh);
        rows.set(s.subtask_id, fresh);
      }
    },
  };
}

function taskView(taskId) {
  let shownParts = -1;
  const preview = el("img", { id: "preview", alt: "preview of the accepted parts", "data-parts": "0" });
  preview.addEventListener("load", () => { preview.dataset.parts = preview.dataset.loading; });
  const summary = el("div");
  const count = el("h2");
  const grid = subtaskGrid();
  show(summary, count, grid.table);
  subscribe({ view: "task", task_id: taskId }, (t) => {
    if (t.preview && t.progress.accepted !== shownParts && t.progress.accepted > 0) {
      shownParts = t.progress.accepted;
      preview.dataset.loading = String(shownParts);
      preview.src = `/api/tasks/${encodeURIComponent(taskId)}/preview.png?parts=${shownParts}`;
    }
    summary.replaceChildren(...[
      el("h1", {}, "Task ", el("span", { class: "id" }, t.task_id), " ", el("span", { id: "task-state" }, stateBadge(t.state)), " ", abortButton(t)),
      el("p", {}, `${t.app} on ${t.env}; started ${fmtTime(t.created_ms)}, ${t.finished_ms ? "ran" : "running for"} ${fmtDuration(elapsed(t))}; fuel billed ${fmtFuel(t.fuel)}`),
      t.reason ? el("p", { class: "error", id: "task-reason" }, t.reason) : null,
      el("div", { class: "grid2" },
        el("div", { class: "card" }, el("h2", {}, "Progress"), progressBar(t.progress),
          el("h2", {}, "Parameters"), el("code", {}, JSON.stringify(t.params)),
          el("h2", {}, "Outputs"),
          t.outputs.length ? el("ul", { id: "outputs" }, t.outputs.map((name) => el("li", {},
            el("a", { href: `/api/tasks/${encodeURIComponent(t.task_id)}/outputs/${name.split("/").map(encodeURIComponent).join("/")}` }, name))))
            : el("p", { class: "muted" }, t.state === "finished" ? "none" : "when the task finishes"),
          el("h2", {}, "Bill"),
          table(["provider", "subtasks", "fuel", "cost"], t.bills.map((b) => el("tr", {},
            el("td", { class: "id" }, b.provider), el("td", { class: "num" }, b.subtasks),
            el("td", { class: "num" }, fmtFuel(b.fuel)), el("td", { class: "num" }, b.cost.toFixed(6)))))),
        t.preview ? el("div", { class: "card" }, el("h2", {}, "Preview"), preview,
          el("p", { class: "muted", id: "preview-caption" }, `${t.progress.accepted} parts accepted${t.state === "finished" ? ", complete" : ""}`)) : null),
    ].filter((node) => node !== null));
    count.textContent = `Subtasks (${t.subtasks.length})`;
    grid.update(t.subtasks);
  });
}

function providersView() {
  subscribe({ view: "providers" }, (data) => show(
    el("h1", {}, "Providers"),
    table(["provider", "environments (benchmark)", "capacity", "price", "trust", "results", "dropped", "refused results"],
      data.providers.map((p) => el("tr", { "data-provider": p.provider_id },
        el("td", { class: "id" }, p.provider_id, el("div", { class: "muted" }, `seen ${fmtTime(p.last_seen_ms)}`)),
        el("td", {}, Object.entries(p.envs).map(([env, score]) => el("div", {}, `${env} (${Number(score).toFixed(1)})`))),
        el("td", { class: "num" }, p.capacity), el("td", { class: "num" }, p.price),
        el("td", { class: "num" }, p.trust.toFixed(2), el("div", { class: "muted" },
          `re-run ${(100 * p.sample_rate).toFixed(0)}%${p.blacklisted ? ", blacklisted" : ""}${p.benchmark_inflated ? ", benchmark inflated" : ""}`)),
        el("td", {}, el("span", { class: "accepted-count" }, `${p.results.accepted} accepted`), el("br"),
          el("span", { class: "rejected-count" }, `${p.rejected} rejected`), el("br"), `${p.results.failed} failed in all`),
        el("td", { class: "dropped" }, p.dropped.map((d) => el("div", {}, el("span", { class: "id" }, d.task_id), `: ${d.reason}`))),
        el("td", { class: "refused" }, p.refused.map((r) => el("div", {}, stateBadge(r.state), " ", el("span", { class: "id" }, r.subtask_id), `: ${r.reason}`))))),
      { id: "providers" })));
}

function throughputView() {
  subscribe({ view: "throughput" }, (data) => {
    const width = 900, height = 220, pad = 30;
    const values = data.accepted;
    const top = Math.max(1, ...values);
    const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, values.length - 1);
    const y = (v) => height - pad - (v * (height - 2 * pad)) / top;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart"); svg.setAttribute("width", width); svg.setAttribute("height", height);
    svg.setAttribute("id", "throughput-chart");
    const line = document.createElementNS(svg.namespaceURI, "polyline");
    line.setAttribute("points", values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    svg.append(line);
    for (const [text, tx, ty] of [[`${top}/s`, 2, pad], ["0", 2, height - pad], [`-${values.length} s`, pad, height - 8], ["now", width - pad - 16, height - 8]]) {
      const label = document.createElementNS(svg.namespaceURI, "text");
      label.setAttribute("x", tx); label.setAttribute("y", ty); label.textContent = text; svg.append(label);
    }
    const total = values.reduce((a, b) => a + b, 0);
    show(el("h1", {}, "Throughput"), el("p", {}, `subtasks accepted per second over the last ${values.length} s: ${total} in all, peak ${Math.max(0, ...values)}/s`), svg);
  });
}

function conformanceView() {
  subscribe({ view: "conformance" }, (data) => show(
    el("h1", {}, "Conformance reports"),
    el("p", { class: "muted" }, `reports written by taskapi conformance APP --report FILE, read from ${data.folder}`),
    data.reports.length === 0 ? el("p", { class: "muted" }, "No reports there.") :
    data.reports.map((r) => r.error ? el("p", { class: "error" }, `${r.file}: ${r.error}`) : el("div", { class: "card report" },
      el("h2", {}, `${r.app} on ${r.env} `, stateBadge(r.passed ? "passed" : "failed")),
      el("p", { class: "muted" }, `${r.file}: id ${r.app_id}, seed ${r.seed}, ${r.examples} examples, ${r.seconds} s, ${r.started_at}`),
      table(["property", "result", "checks", "message"], r.properties.map((p) => el("tr", {},
        el("td", {}, p.name), el("td", {}, stateBadge(p.status === "passed" ? "accepted" : p.status === "failed" ? "failed" : p.status), " ", p.status),
        el("td", { class: "num" }, p.checks), el("td", { class: "muted" }, p.message))))))));
}

function paramField(name, spec) {
  const id = `param-${name}`;
  let input;
  if (spec.type === "boolean") {
    input = el("input", { type: "checkbox", id, name, checked: spec.default === true });
  } else if (spec.type === "integer" || spec.type === "number") {
    input = el("input", { type: "number", id, name, step: spec.type === "integer" ? "1" : "any",
      value: spec.default ?? "" });
  } else if (spec.type === "array" || spec.type === "object") {
    input = el("textarea", { id, name, rows: 2 }, spec.default === null ? "" : JSON.stringify(spec.default));
  } else {
    input = el("input", { type: "text", id, name, value: spec.default ?? "" });
  }
  input.dataset.type = spec.type;
  return el("div", { class: "param" }, el("label", { for: id }, `${name} (${spec.type}${spec.required ? ", required" : ""})`),
    input, el("div", { class: "hint" }, spec.description));
}

function readParams(form) {
  const params = {};
  for (const input of form.querySelectorAll("[data-type]")) {
    const type = input.dataset.type;
    if (type === "boolean") { params[input.name] = input.checked; continue; }
    if (input.value.trim() === "") continue;
    params[input.name] = type === "integer" || type === "number" ? Number(input.value)
      : type === "array" || type === "object" ? JSON.parse(input.value) : input.value;
  }
  return params;
}

async function submitView() {
  const apps = (await (await fetch("/api/apps", { credentials: "same-origin" })).json()).apps;
  const fields = el("div", { id: "params" });
  const description = el("p", { class: "muted" });
  const error = el("p", { class: "error", id: "submit-error" });
  const choice = el("select", { id: "app", name: "choice" }, apps.map((a, i) => el("option", { value: i }, `${a.name} (${a.env})`)));
  const pick = () => {
    const app = apps[Number(choice.value)];
    description.textContent = app.description;
    fields.replaceChildren(...Object.entries(app.parameters).map(([name, spec]) => paramField(name, spec)));
  };
  choice.addEventListener("change", pick);
  const form = el("form", { class: "submit", id: "submit-form" },
    el("label", { for: "app" }, "App"), choice, description, fields,
    el("label", { for: "params_file" }, "Parameter file (JSON object; its values win over the fields)"),
    el("input", { type: "file", id: "params_file", name: "params_file", accept: ".json,application/json" }),
    el("label", { for: "inputs" }, "Input files (placed in the task's task_inputs/ by their names)"),
    el("input", { type: "file", id: "inputs", name: "inputs", multiple: true }),
    el("label", { for: "max_subtasks" }, "Max subtasks"),
    el("input", { type: "number", id: "max_subtasks", name: "max_subtasks", value: 10000, min: 1 }),
    el("p", {}, el("button", { type: "submit", class: "primary" }, "Submit task")), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const app = apps[Number(choice.value)];
    const body = new FormData();
    body.append("app", app.name);
    body.append("env", app.env);
    try { body.append("params", JSON.stringify(readParams(form))); }
    catch (problem) { error.textContent = `a JSON field is not JSON: ${problem.message}`; return; }
    body.append("max_subtasks", form.querySelector("#max_subtasks").value);
    const file = form.querySelector("#params_file").files[0];
    if (file) body.append("params_file", file, file.name);
    for (const input of form.querySelector("#inputs").files) body.append("inputs", input, input.name);
    try {
      const reply = await post("/api/tasks", body);
      location.href = `/tasks/${encodeURIComponent(reply.task_id)}`;
    } catch (problem) { error.textContent = problem.message; }
  });
  show(el("h1", {}, "Submit a task"), form);
  pick();
}

function route() {
  const path = location.pathname;
  const current = path.split("/")[1] || "tasks";
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("current", link.dataset.nav === current);
  if (path.startsWith("/tasks/")) return taskView(decodeURIComponent(path.slice("/tasks/".length)));
  if (path === "/providers") return providersView();
  if (path === "/submit") return submitView();
  if (path === "/throughput") return throughputView();
  if (path === "/conformance") return conformanceView();
  return tasksView();
}

route();
