"use strict";
// Helpers shared by the requestor's and the provider's pages: element building, the session's CSRF
// token, server-sent event subscriptions and formatting.

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

let csrfToken = null;
async function csrf() {
  if (csrfToken === null) {
    const reply = await fetch("/api/session", { credentials: "same-origin" });
    if (reply.status === 401) { location.href = "/login"; return ""; }
    csrfToken = (await reply.json()).csrf;
  }
  return csrfToken;
}

async function post(url, body) {
  const reply = await fetch(url, {
    method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRF-Token": await csrf() },
  });
  const text = await reply.text();
  if (!reply.ok) throw new Error(text || reply.statusText);
  return text ? JSON.parse(text) : {};
}

// Subscribe to one view's events; `render(data)` runs on every change. Returns the EventSource.
function subscribe(query, render) {
  const live = document.getElementById("live");
  const source = new EventSource("/api/stream?" + new URLSearchParams(query));
  source.onopen = () => { live.textContent = "live"; live.classList.add("on"); };
  source.onerror = () => { live.textContent = "reconnecting"; live.classList.remove("on"); };
  source.onmessage = (event) => render(JSON.parse(event.data));
  return source;
}

function show(...nodes) {
  const view = document.getElementById("view");
  view.replaceChildren(...nodes.flat().filter((node) => node !== null && node !== undefined));
}

function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString() : ""; }
function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${ms} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60000).toFixed(1)} min`;
}
function fmtFuel(fuel) {
  return fuel >= 1e9 ? `${(fuel / 1e9).toFixed(2)} Gfuel` : fuel >= 1e6 ? `${(fuel / 1e6).toFixed(1)} Mfuel` : `${fuel}`;
}
function stateBadge(state) { return el("span", { class: `state ${state}`, "data-state": state }, state); }

// Logging out changes state, so it carries the CSRF token like every other POST.
document.getElementById("logout")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  await post("/logout").catch(() => null);
  location.href = "/login";
});
