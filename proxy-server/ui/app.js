// The vendorgate dashboard: vanilla JS over the admin API, same origin, no build step.
// Data is only ever put into the page as text (never as HTML): audit rows carry strings an
// agent chose (paths, idempotency keys).
"use strict";

const TOKEN_KEY = "vendorgate.admin_token";
const $ = (sel) => document.querySelector(sel);
const LOG_MAX_ROWS = 500;

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers || {});
  const resp = await fetch(path, Object.assign({}, opts, { headers }));
  if (!resp.ok) {
    let message = resp.status + " " + resp.statusText;
    try { const b = await resp.json(); if (b && b.error && b.error.message) message = b.error.message; } catch (_) { /* not JSON */ }
    if (resp.status === 401) signOut("The admin token was refused: " + message);
    throw new ApiError(resp.status, message);
  }
  return resp;
}

async function apiJson(path) { return (await api(path)).json(); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function showError(msg) {
  const p = $("#error");
  p.textContent = msg || "";
  p.hidden = !msg;
}

function usd(v) { return v === null || v === undefined ? "—" : "$" + v; }

function shortTime(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—"; }

function relative(iso) {
  const ms = Date.parse(iso) - Date.now();
  const abs = Math.abs(ms), m = 60000, h = 60 * m, d = 24 * h;
  const n = abs >= d ? Math.round(abs / d) + " d" : abs >= h ? Math.round(abs / h) + " h" : Math.max(1, Math.round(abs / m)) + " min";
  return ms >= 0 ? "in " + n : n + " ago";
}

function keyState(k) { return k.revoked ? "revoked" : k.expired ? "expired" : "active"; }

// A bar of spent against a cap. Widths are display only: the figures shown are the
// server's decimal strings, never float arithmetic on money.
function capBar(spent, cap, label) {
  const wrap = el("span", {});
  if (cap !== null && cap !== undefined) {
    const ratio = Math.min(1, parseFloat(spent) / Math.max(parseFloat(cap), 1e-9));
    const bar = el("span", { class: "bar" + (ratio >= 1 ? " full" : ratio >= 0.8 ? " warn" : ""), role: "img", "aria-label": Math.round(ratio * 100) + "% of the " + label });
    const fill = el("span", {});
    fill.style.width = (ratio * 100).toFixed(1) + "%";
    bar.append(fill);
    wrap.append(bar, usd(spent) + " / " + usd(cap));
  } else {
    wrap.append(usd(spent) + " (no " + label + ")");
  }
  return wrap;
}

function keyCap(k) {
  // The cap that binds: the daily cap shows today's spend, the run cap the total.
  const p = k.policy || {};
  if (p.max_usd !== null && p.max_usd !== undefined) return capBar(k.total_usd, p.max_usd, "run cap");
  return capBar(k.today_usd, p.daily_usd_cap, "daily cap");
}

function runLink(runId) {
  return runId ? el("a", { href: "#run/" + encodeURIComponent(runId), text: runId }) : "—";
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (!rows.length) {
    const cols = tbody.closest("table").querySelectorAll("thead th").length;
    tbody.append(el("tr", {}, el("td", { colspan: cols, class: "hint", text: empty })));
  }
}

function td(content, cls) { return el("td", cls ? { class: cls } : {}, content === null || content === undefined ? "—" : content); }

function callText(r) { return (r.method || "") + " " + (r.vendor ? "/" + r.vendor : "") + (r.endpoint || ""); }

// ---- sign in -----------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopLive();
  route();
  if (message) showError(message);
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $("#token");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  showError("");
  try {
    await apiJson("/v1/overview");
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showError(e.message);
    return;
  }
  route();
}

// ---- views -------------------------------------------------------------------------------

const views = ["overview", "keys", "budgets", "alerts", "log", "run"];

function route() {
  const signedIn = !!token();
  $("#login").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  const [name, arg] = (location.hash.slice(1) || "overview").split("/");
  const view = views.includes(name) ? name : "overview";
  for (const v of views) $("#view-" + v).hidden = !signedIn || v !== view;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!signedIn) { $("#token").focus(); return; }
  showError("");
  if (view !== "log") stopLive();
  const run = { overview: loadOverview, keys: () => loadKeys(null), budgets: loadBudgets, alerts: loadAlerts, log: startLive, run: () => loadRun(arg ? decodeURIComponent(arg) : "") }[view];
  run().catch((e) => showError(e.message));
}

function cards(dl, items) {
  dl.replaceChildren(...items.map(([label, value]) => el("div", {}, el("dt", { text: label }), el("dd", { text: value }))));
}

async function loadOverview() {
  const o = await apiJson("/v1/overview");
  const s = o.spend_by_state_usd || {};
  cards($("#overview-cards"), [
    ["Spend today (UTC " + o.day + ")", usd(o.spend_today_usd)],
    ["Forwarded calls", String(o.forwarded)],
    ["Refused calls", String(o.refused)],
    ["Pending", usd(s.pending || "0.00")],
    ["Unknown", usd(s.unknown || "0.00")],
  ]);
  $("#overview-note").textContent = o.truncated
    ? "Busy day: figures cover the newest " + o.rows_read + " calls only."
    : "From " + o.rows_read + " audit rows today.";
  fill($("#top-keys tbody"), o.top_keys.map((k) => el("tr", { "data-key-id": k.key_id },
    td(el("code", { text: k.key_id })), td(runLink(k.run_id)),
    td(capBar(k.today_usd, k.policy.daily_usd_cap, "daily cap")),
    td(capBar(k.total_usd, k.policy.max_usd, "run cap")),
    td(keyState(k), "state-" + keyState(k)))), "No spend today.");
  $("#fastest-h").textContent = "Runs spending fastest (last " + o.rate_window_minutes + " minutes)";
  fill($("#fastest-runs tbody"), o.fastest_runs.map((r) => el("tr", {},
    td(runLink(r.run_id)), td(usd(r.spent_usd), "num"), td(usd(r.per_minute_usd), "num"), td(String(r.calls), "num"))), "No run spent in this window.");
  fill($("#recent-refusals tbody"), o.recent_refusals.map((r) => el("tr", {},
    td(shortTime(r.time)), td(r.key_id ? el("code", { text: r.key_id }) : null), td(callText(r)),
    td(el("span", { class: "decision-refused", text: r.decision, title: r.message || "" })))), "No refusals today.");
  fill($("#unsettled tbody"), o.unsettled.map((r) => el("tr", {},
    td(shortTime(r.time)), td(r.key_id ? el("code", { text: r.key_id }) : null), td(callText(r)),
    td(r.money_state), td(usd(r.cost_usd), "num"))), "Nothing pending or unknown today.");
}

// Keys: server-side pages (a cursor per page), so 100k keys cost one page of rows.
const keysPaging = { cursors: [], next: null };

async function loadKeys(cursor) {
  const q = $("#keys-q").value.trim();
  // `q` (even empty) asks for the paged form of the list.
  const params = new URLSearchParams({ limit: "50", q });
  if ($("#keys-active").checked) params.set("active", "true");
  if (cursor) params.set("cursor", cursor);
  const resp = await api("/v1/keys?" + params);
  const keys = await resp.json();
  keysPaging.next = resp.headers.get("Vendorgate-Next-Cursor");
  fill($("#keys-table tbody"), keys.map(keyRow), q ? "No key with that id or run id." : "No keys.");
  $("#keys-next").disabled = !keysPaging.next;
  $("#keys-first").disabled = !cursor;
  $("#keys-status").textContent = keys.length + " keys on this page" + (keysPaging.next ? "; more on the next." : ".");
  // Read by the browser benchmark (docs/BENCHMARKS.md): the first time the keys are shown.
  if (!performance.getEntriesByName("keys-rendered").length) performance.mark("keys-rendered");
}

function keyRow(k) {
  const state = keyState(k);
  const revoke = el("button", { type: "button", "data-action": "revoke", "aria-label": "Revoke " + k.key_id, disabled: state === "revoked", text: "Revoke" });
  revoke.addEventListener("click", () => confirmRevoke(k, revoke));
  return el("tr", { "data-key-id": k.key_id },
    td(el("code", { text: k.key_id })), td(k.vendor), td(runLink(k.run_id)),
    td(state, "state-" + state), td(keyCap(k)),
    td(el("span", { title: k.expires_at, text: relative(k.expires_at) })), td(revoke));
}

function confirmRevoke(k, button) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = "Key " + k.key_id + (k.run_id ? " (run " + k.run_id + ")" : "") +
    " stops working at once: its next call gets 401. This cannot be undone.";
  const ok = $("#confirm-ok"), cancel = $("#confirm-cancel");
  const close = () => { ok.onclick = null; cancel.onclick = null; dialog.close(); button.focus(); };
  cancel.onclick = close;
  ok.onclick = async () => {
    ok.disabled = true;
    try {
      await api("/v1/keys/" + encodeURIComponent(k.key_id), { method: "DELETE" });
      const row = button.closest("tr");
      const fresh = await apiJson("/v1/keys/" + encodeURIComponent(k.key_id));
      row.replaceWith(keyRow(fresh));
      $("#keys-status").textContent = "Revoked " + k.key_id + ".";
      ok.onclick = null; cancel.onclick = null; dialog.close();
      const again = document.querySelector('tr[data-key-id="' + CSS.escape(k.key_id) + '"] button');
      if (again) again.focus();
    } catch (e) {
      close();
      showError("Could not revoke " + k.key_id + ": " + e.message);
    } finally {
      ok.disabled = false;
    }
  };
  dialog.showModal();
  cancel.focus();
}

async function loadRun(runId) {
  $("#run-id").value = runId;
  const empty = () => { $("#run-cards").replaceChildren(); fill($("#run-keys tbody"), [], "—"); fill($("#run-rows tbody"), [], "—"); };
  if (!runId) { empty(); $("#run-id").focus(); return; }
  let r;
  try {
    r = await apiJson("/v1/runs/" + encodeURIComponent(runId));
  } catch (e) { empty(); throw e; }
  $("#run-h").textContent = "Run " + r.run_id;
  const s = r.by_state_usd || {};
  cards($("#run-cards"), [
    ["Calls", String(r.calls)], ["Refused", String(r.refused)],
    ["Estimated (forwarded calls)", usd(r.estimate_usd)], ["Settled", usd(r.settled_usd)],
    ["Pending", usd(s.pending || "0.00")], ["Unknown", usd(s.unknown || "0.00")],
  ]);
  fill($("#run-keys tbody"), r.keys.map((k) => el("tr", { "data-key-id": k.key_id },
    td(el("code", { text: k.key_id })), td(k.vendor), td(keyState(k), "state-" + keyState(k)), td(keyCap(k)),
    td(el("span", { title: k.expires_at, text: relative(k.expires_at) })))), "No key carries this run id.");
  fill($("#run-rows tbody"), r.rows.map((a) => el("tr", {},
    td(shortTime(a.time)), td(callText(a)),
    td(el("span", { class: a.decision === "forwarded" ? "" : "decision-refused", text: a.decision, title: a.message || "" })),
    td(String(a.status), "num"), td(usd(a.estimate_usd), "num"), td(usd(a.cost_usd), "num"), td(a.money_state))), "No calls yet.");
}

// ---- budgets and alerts -------------------------------------------------------------------

function percent(fraction) {
  // alert_at is a JSON number of at most four decimals (basis points): display only.
  return (Math.round(fraction * 10000) / 100) + "%";
}

async function loadBudgets() {
  const budgets = await apiJson("/v1/budgets");
  fill($("#budgets-table tbody"), budgets.map((b) => el("tr", { "data-budget": b.name },
    td(el("strong", { text: b.name })),
    td(capBar(b.total_usd, b.max_usd, "run cap")),
    td(capBar(b.today_usd, b.daily_usd_cap, "daily cap")),
    td(usd(b.remaining_usd), "num"), td(usd(b.reserved_usd), "num"), td(usd(b.pending_usd), "num"),
    td(b.alert_at.length ? b.alert_at.map(percent).join(", ") : "—"),
    td(b.keys.length ? el("details", {}, el("summary", { text: b.keys.length + (b.keys.length === 1 ? " key" : " keys") }),
      ...b.keys.map((k) => el("div", {}, el("code", { text: k })))) : "none"))), "No budgets yet: POST /v1/budgets or `vendorgate budgets create`.");
  $("#budgets-status").textContent = budgets.length + (budgets.length === 1 ? " budget" : " budgets") + ", read " + new Date().toISOString().slice(11, 19) + " UTC.";
}

function eventWho(e) {
  const d = e.data || {};
  const who = el("span", {});
  if (d.budget) who.append("budget ", el("strong", { text: d.budget }), " via ");
  who.append(el("code", { text: d.key_id || e.key_id || "—" }));
  if (d.run_id) who.append(" (run ", runLink(d.run_id), ")");
  return who;
}

function capName(c) { return c === "daily_usd_cap" ? "daily cap" : "run cap"; }

function eventWhat(e) {
  const d = e.data || {};
  switch (e.type) {
    case "spend.threshold_crossed":
      return percent(d.threshold) + " of the " + capName(d.cap) + " reached: " + usd(d.counted_usd) + " of " + usd(d.cap_usd) + " counted, " + usd(d.remaining_usd) + " left.";
    case "spend.cap_reached":
      return "A call of " + usd(d.refused_estimate_usd) + " (" + (d.endpoint || "?") + ") refused: " + usd(d.counted_usd) + " of the " + capName(d.cap) + " " + usd(d.cap_usd) + " counted.";
    case "spend.unknown":
      return "Counted at " + usd(d.counted_usd) + " without the vendor's confirmation (" + (d.reason || "unknown") + "): " + (d.endpoint || "?") + ".";
    case "key.revoked":
      return "Revoked at " + shortTime(d.revoked_at) + ".";
    case "request.duplicate_blocked":
      return "A repeat of " + (d.endpoint || "?") + " refused (first call at " + shortTime(d.first_call && d.first_call.time) + ").";
    default:
      return JSON.stringify(d);
  }
}

function eventDeliveries(e) {
  if (!e.deliveries.length) return el("span", { class: "hint", text: "no webhook" });
  const wrap = el("span", {});
  for (const x of e.deliveries) {
    const cls = x.state === "delivered" ? "state-active" : x.state === "failed" ? "state-revoked" : "state-expired";
    wrap.append(el("div", {}, el("code", { text: x.webhook_id }), " ",
      el("span", { class: cls, text: x.state }),
      " (" + x.attempts + (x.attempts === 1 ? " attempt" : " attempts") + (x.last_status ? ", last HTTP " + x.last_status : "") + ")"));
  }
  return wrap;
}

// A receiver URL can hold a secret (a Slack incoming-webhook path is one): the page shows
// its origin only.
function receiver(url) {
  try { return new URL(url).origin + "/…"; } catch (_) { return "—"; }
}

async function loadAlerts() {
  const [events, hooks] = await Promise.all([apiJson("/v1/events?limit=200"), apiJson("/v1/webhooks")]);
  fill($("#events-table tbody"), events.map((e) => el("tr", { "data-event-id": e.id, "data-event-type": e.type },
    td(shortTime(e.time)),
    td(el("span", { class: e.type === "spend.threshold_crossed" ? "event-warn" : "event-stop", text: e.type })),
    td(eventWho(e)), td(eventWhat(e)), td(eventDeliveries(e)))), "No events yet.");
  fill($("#webhooks-table tbody"), hooks.map((w) => el("tr", { "data-webhook-id": w.id },
    td(el("code", { text: w.id })), td(receiver(w.url)), td(w.events.join(", ")), td(w.format),
    td(w.disabled ? el("span", { class: "state-revoked", text: "disabled: " + w.disabled }) : el("span", { class: "state-active", text: "active" })))), "No webhooks: events are kept here only.");
  $("#alerts-status").textContent = events.length + (events.length === 1 ? " event" : " events") + ", read " + new Date().toISOString().slice(11, 19) + " UTC.";
}

// ---- live log ------------------------------------------------------------------------------

let live = null; // { abort: AbortController }

function logFilters() {
  const f = new URLSearchParams();
  for (const [id, name] of [["#f-key", "key_id"], ["#f-run", "run_id"], ["#f-vendor", "vendor"], ["#f-decision", "decision"], ["#f-money", "money_state"]]) {
    const v = $(id).value.trim();
    if (v) f.set(name, v);
  }
  return f;
}

function matches(f, r) {
  const d = f.get("decision");
  if (d && (d === "refused" ? r.decision === "forwarded" : r.decision !== d)) return false;
  for (const k of ["vendor", "money_state"]) if (f.get(k) && r[k] !== f.get(k)) return false;
  return true;
}

function logRow(r, isNew) {
  return el("tr", { "data-audit-id": String(r.id), class: isNew ? "fresh" : null },
    td(shortTime(r.time)), td(r.key_id ? el("code", { text: r.key_id }) : null), td(runLink(r.run_id)), td(callText(r)),
    td(el("span", { class: r.decision === "forwarded" ? "" : "decision-refused", text: r.decision, title: r.message || "" })),
    td(String(r.status), "num"), td(usd(r.estimate_usd), "num"), td(usd(r.cost_usd), "num"), td(r.money_state), td(String(r.latency_ms), "num"));
}

function addLogRow(r, isNew) {
  const tbody = $("#log-table tbody");
  const placeholder = tbody.querySelector("td.hint");
  if (placeholder) placeholder.closest("tr").remove();
  tbody.prepend(logRow(r, isNew));
  while (tbody.rows.length > LOG_MAX_ROWS) tbody.deleteRow(-1);
}

function stopLive() {
  if (live) { live.abort.abort(); live = null; }
}

async function startLive() {
  stopLive();
  const f = logFilters();
  const abort = new AbortController();
  live = { abort };
  const status = $("#live-status");
  // Recent rows first (the store filters by key and run; vendor, decision and money state
  // here), then the stream from the newest row read, so nothing falls between the two.
  const back = new URLSearchParams({ limit: "100" });
  for (const k of ["key_id", "run_id"]) if (f.get(k)) back.set(k, f.get(k));
  const rows = await apiJson("/v1/audit?" + back);
  let after = rows.reduce((m, r) => Math.max(m, r.id), 0);
  fill($("#log-table tbody"), [], "Waiting for calls…");
  for (const r of rows) if (matches(f, r)) addLogRow(r, false);
  let delay = 500;
  while (live && live.abort === abort) {
    try {
      const q = new URLSearchParams(f);
      q.set("after_id", String(after));
      const resp = await api("/v1/audit/stream?" + q, { signal: abort.signal, headers: { Accept: "text/event-stream" } });
      status.textContent = "Live: connected.";
      delay = 500;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const ev = parseEvent(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
          if (ev.event === "audit") {
            const r = JSON.parse(ev.data);
            after = Math.max(after, r.id);
            addLogRow(r, true);
          } else if (ev.event === "error") {
            status.textContent = "Live: the store did not answer (" + JSON.parse(ev.data).error + "); retrying.";
          }
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
      if (e instanceof ApiError && e.status === 401) return;
      status.textContent = "Live: disconnected (" + e.message + "); reconnecting…";
    }
    if (abort.signal.aborted) return;
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function parseEvent(chunk) {
  const ev = { event: "message", data: "" };
  for (const line of chunk.split("\n")) {
    if (line.startsWith(":")) continue; // keep-alive comment
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") ev.event = value;
    else if (field === "data") ev.data += (ev.data ? "\n" : "") + value;
  }
  return ev;
}

async function exportCsv() {
  // fetch + a blob link, because a plain link could not carry the Authorization header.
  const resp = await api("/v1/audit.csv?" + logFilters());
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: "vendorgate-audit.csv" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ---- wiring -----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", () => signOut(""));
  $("#keys-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    keysPaging.cursors = [];
    loadKeys(null).catch((e) => showError(e.message));
  });
  $("#keys-next").addEventListener("click", () => {
    if (!keysPaging.next) return;
    keysPaging.cursors.push(keysPaging.next);
    loadKeys(keysPaging.next).catch((e) => showError(e.message));
  });
  $("#keys-first").addEventListener("click", () => {
    keysPaging.cursors = [];
    loadKeys(null).catch((e) => showError(e.message));
  });
  $("#run-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#run/" + encodeURIComponent($("#run-id").value.trim());
  });
  $("#log-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    startLive().catch((e) => showError(e.message));
  });
  $("#budgets-refresh").addEventListener("click", () => loadBudgets().catch((e) => showError(e.message)));
  $("#alerts-refresh").addEventListener("click", () => loadAlerts().catch((e) => showError(e.message)));
  $("#export").addEventListener("click", () => exportCsv().catch((e) => showError(e.message)));
  window.addEventListener("hashchange", route);
  route();
});
