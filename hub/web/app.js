// The hub's dashboard (hub/web_ui.h): it shows what the hub's /api/v1 answers
// the logged-in user and computes nothing of its own. Pages are offered by the
// permissions GET /api/v1/me lists; the allocation page only to an unblinded
// reader, and the API refuses its data to anyone else.
"use strict";
const S = { token: sessionStorage.getItem("irt-hub-token"), me: null, study: null, charts: {}, view: null };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const can = (p) => !!(S.me && S.me.permissions.includes(p));
const COLORS = ["#1f5fa8", "#c0392b", "#17663a", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#b7950b", "#2c3e50", "#e84393"];
const color = (i) => COLORS[i % COLORS.length];
// One colour per kit status in every plot (statuses not listed take the others in turn).
const STATUS_ORDER = ["available", "expected", "shipped", "received", "quarantined", "dispensed", "damaged", "missing", "lost",
                      "rejected", "returned", "destroyed", "lost_with_node"];
const statusColor = (s) => color(STATUS_ORDER.indexOf(s) < 0 ? STATUS_ORDER.length : STATUS_ORDER.indexOf(s));

const PAGES = [
  { id: "enrollment", title: "Enrollment", allowed: () => can("view_participants"), load: loadEnrollment },
  { id: "allocation", title: "Allocation balance", allowed: () => can("view_unblinded") && !S.me.blinded, load: loadAllocation },
  { id: "inventory", title: "Inventory", allowed: () => can("view_inventory"), load: loadInventory },
  { id: "nodes", title: "Nodes", allowed: () => can("manage_nodes"), load: loadNodes },
  { id: "deviations", title: "Deviations and alerts", allowed: () => can("view_audit") || can("manage_nodes"), load: loadDeviations },
  { id: "audit", title: "Audit trail", allowed: () => can("view_audit"), load: loadAudit },
  { id: "users", title: "Users", allowed: () => can("manage_users"), load: loadUsers },
  { id: "exports", title: "Exports", allowed: () => can("export_data"), load: loadExports },
  { id: "webhooks", title: "Webhooks", allowed: () => can("manage_nodes"), load: loadWebhooks },
];

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// A 401 ends the session, except for a signed request, where it means a wrong signature.
async function api(method, path, body, signed) {
  const headers = { "Content-Type": "application/json" };
  if (S.token) headers.Authorization = "Bearer " + S.token;
  const r = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (!r.ok) {
    const err = (j && j.error) || { code: "internal", message: "the hub answered " + r.status };
    if (r.status === 401 && path !== "/login" && !signed) { endSession("Your session ended; log in again."); }
    throw new ApiError(r.status, err.code, err.message);
  }
  return j;
}

function message(text, kind) {
  const m = $("message");
  if (!text) { m.className = "msg hidden"; m.textContent = ""; return; }
  m.className = "msg " + (kind || "error");
  m.textContent = text;
}

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("hidden", s.id !== "view-" + view);
  for (const b of $("nav").querySelectorAll("button")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  S.view = view;
}

function endSession(text) {
  S.token = null; S.me = null;
  sessionStorage.removeItem("irt-hub-token");
  for (const c of Object.values(S.charts)) c.destroy();
  S.charts = {};
  $("nav").classList.add("hidden");
  $("nav").textContent = "";
  $("logout").classList.add("hidden");
  $("who").textContent = "";
  for (const s of document.querySelectorAll("main > section")) if (s.id !== "view-login") s.querySelectorAll(".table-wrap, .freshness, #enrollment-summary").forEach((e) => { e.textContent = ""; });
  show("login");
  message(text, "error");
}

async function start() {
  try {
    S.me = await api("GET", "/me");
    S.study = await api("GET", "/study");
  } catch (e) {
    if (e.status !== 401) message(e.message);
    show("login");
    return;
  }
  $("study").textContent = S.study.name + " (" + S.study.id + ", version " + S.study.version + ")";
  $("who").textContent = S.me.user + " · " + S.me.role + (S.me.blinded ? " · blinded" : " · unblinded");
  $("logout").classList.remove("hidden");
  const nav = $("nav");
  nav.textContent = "";
  const pages = PAGES.filter((p) => p.allowed());
  for (const p of pages) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = p.title; b.dataset.view = p.id; b.id = "nav-" + p.id;
    b.addEventListener("click", () => openPage(p.id));
    nav.appendChild(b);
  }
  nav.classList.remove("hidden");
  if (!pages.length) { message("Your role has no dashboard page; ask an administrator for the permissions you need."); return; }
  openPage(pages[0].id);
}

async function openPage(id) {
  const page = PAGES.find((p) => p.id === id);
  message("");
  show(id);
  try { await page.load(); } catch (e) { if (e.status !== 401) message(page.title + ": " + e.message); }
}

// ---- shared pieces

function table(columns, rows, caption) {
  // columns: [{title, cell(row) -> html, num}]
  let h = "<table>" + (caption ? "<caption>" + esc(caption) + "</caption>" : "") + "<thead><tr>";
  for (const c of columns) h += "<th scope=\"col\"" + (c.num ? " class=\"num\"" : "") + ">" + esc(c.title) + "</th>";
  h += "</tr></thead><tbody>";
  if (!rows.length) h += "<tr><td colspan=\"" + columns.length + "\">None.</td></tr>";
  for (const r of rows) {
    h += "<tr" + (r.__class ? " class=\"" + r.__class + "\"" : "") + ">";
    for (const c of columns) h += "<td" + (c.num ? " class=\"num\"" : "") + ">" + c.cell(r) + "</td>";
    h += "</tr>";
  }
  return h + "</tbody></table>";
}

function ago(seconds) {
  if (seconds == null) return "never";
  if (seconds < 120) return seconds + " s ago";
  if (seconds < 7200) return Math.round(seconds / 60) + " min ago";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
  return Math.round(seconds / 86400) + " days ago";
}

// What the page shows stops at each node's last sync: say so, node by node.
function freshness(view, asOf) {
  const box = document.querySelector("#view-" + view + " .freshness");
  const loaded = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  let h = "<strong>Loaded " + esc(loaded) + ".</strong> What a site recorded after its node's last sync is not in these figures yet.";
  if (!asOf.length) h += " No node is enrolled yet.";
  else {
    h += "<ul>";
    for (const n of asOf) {
      h += "<li>Node " + esc(n.node_id) + " (site " + esc(n.site_id) + "): last sync " +
        (n.last_contact ? esc(n.last_contact) + " (" + ago(n.since_contact_s) + ")" : "never") +
        (n.sync_overdue ? " <span class=\"overdue\">— not synced for longer than the study's expected offline period</span>" : "") + "</li>";
    }
    h += "</ul>";
  }
  box.innerHTML = h;
}

function chart(id, config) {
  if (S.charts[id]) S.charts[id].destroy();
  config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
  S.charts[id] = new Chart($(id), config);
}

// ---- pages

let enrollmentData = null;

async function loadEnrollment() {
  enrollmentData = await api("GET", "/dashboard/enrollment");
  drawEnrollment();
}

function drawEnrollment() {
  const d = enrollmentData;
  const by = $("enrollment-by").value;
  freshness("enrollment", d.data_as_of);
  let summary = "<strong>" + d.randomized + "</strong> participants randomized" +
    (d.target_participants ? " of a target of <strong>" + d.target_participants + "</strong>" : "") + " (today " + esc(d.today) + "). ";
  if (d.completion) summary += "Enrollment expected to complete on <strong>" + esc(d.completion.expected) + "</strong> (10th to 90th percentile " + esc(d.completion.p10) + " to " + esc(d.completion.p90) + ").";
  else if (d.completion_note) summary += "No completion date: " + esc(d.completion_note) + ".";
  $("enrollment-summary").innerHTML = summary;
  const datasets = [];
  if (by === "overall") {
    datasets.push({ label: "Randomized", data: d.actual.overall, borderColor: color(0), backgroundColor: color(0), spanGaps: false, pointRadius: 2 });
    datasets.push({ label: "Forecast", data: d.forecast, borderColor: color(1), backgroundColor: color(1), borderDash: [6, 4], pointRadius: 2 });
  } else {
    Object.keys(d.actual[by]).forEach((k, i) => {
      datasets.push({ label: (by === "site" ? "Site " : "") + k, data: d.actual[by][k], borderColor: color(i), backgroundColor: color(i), pointRadius: 2 });
    });
  }
  chart("chart-enrollment", {
    type: "line",
    data: { labels: d.dates, datasets },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "participants randomized (cumulative)" } } } },
  });
  // The same numbers as a table: the last value of each series.
  const rows = datasets.map((s) => {
    const values = s.data.filter((v) => v != null);
    return { name: s.label, value: values.length ? values[values.length - 1] : "" };
  });
  $("enrollment-table").innerHTML = table([{ title: "Series", cell: (r) => esc(r.name) },
    { title: by === "overall" ? "Today / end of forecast" : "Randomized to date", cell: (r) => esc(r.value), num: true }], rows);
}

async function loadAllocation() {
  const d = await api("GET", "/dashboard/allocation");
  freshness("allocation", d.data_as_of);
  const groups = [{ name: "Overall", counts: d.overall }].concat(d.strata.map((s) => ({ name: s.stratum, counts: s.counts })));
  chart("chart-allocation", {
    type: "bar",
    data: { labels: groups.map((g) => g.name),
            datasets: d.arms.map((a, i) => ({ label: a.name + " (ratio " + a.ratio + ")", data: groups.map((g) => g.counts[a.id] || 0), backgroundColor: color(i) })) },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "participants" } } } },
  });
  const columns = [{ title: "Stratum or site", cell: (r) => esc(r.name) }].concat(
    d.arms.map((a) => ({ title: a.name, cell: (r) => esc(r.counts[a.id] || 0), num: true })));
  $("allocation-table").innerHTML = table(columns, groups, "By stratum") +
    table(columns, d.sites.map((s) => ({ name: "Site " + s.site, counts: s.counts })), "By site");
}

async function loadInventory() {
  const d = await api("GET", "/dashboard/inventory");
  freshness("inventory", d.data_as_of);
  const label = (c) => (c.kind === "depot" ? "Depot " : "Site ") + c.id;
  chart("chart-custodians", {
    type: "bar",
    data: { labels: d.custodians.map(label),
            datasets: d.statuses.map((s) => ({ label: s.replace(/_/g, " "), data: d.custodians.map((c) => c.by_status[s] || 0), backgroundColor: statusColor(s) })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "kits" } } } },
  });
  const monthStatuses = [...new Set(d.expiry_months.flatMap((m) => Object.keys(m.by_status)))];
  chart("chart-expiry", {
    type: "bar",
    data: { labels: d.expiry_months.map((m) => m.month),
            datasets: monthStatuses.map((s) => ({ label: s.replace(/_/g, " "), data: d.expiry_months.map((m) => m.by_status[s] || 0), backgroundColor: statusColor(s) })) },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "kits in stock" } } } },
  });
  $("inventory-table").innerHTML = "<p>" + d.at_risk + " kits in all are at risk of passing their last dispensable day before they are likely to be used (forecast of " + esc(d.today) + ").</p>" +
    table([{ title: "Depot or site", cell: (c) => esc(label(c)) + " <span class=\"muted\">" + esc(c.name) + "</span>" },
           { title: "Kits in stock", cell: (c) => esc(c.in_stock), num: true },
           { title: "At risk", cell: (c) => (c.at_risk ? "<span class=\"badge bad\">" + esc(c.at_risk) + "</span>" : "0"), num: true },
           { title: "First at risk", cell: (c) => esc(c.first_at_risk || "") },
           { title: "By status", cell: (c) => esc(Object.entries(c.by_status).map(([k, v]) => k.replace(/_/g, " ") + " " + v).join(", ")) }],
          d.custodians);
  await loadNeeds();
}

// The forecast's kits needed per week (GET /api/v1/forecast): each site's
// scheduled visits and expected randomizations, and each depot's sites.
// Kit types only when the API sends them (unblinded readers).
async function loadNeeds() {
  const f = await api("GET", "/forecast?weeks=8");
  $("needs-note").textContent = "Scheduled visits of participants on study plus the randomizations expected at each site's estimated rate, from " +
    f.today + "; a depot's row is what its sites need.";
  const rows = f.sites.map((s) => ({ name: "Site " + s.site, weeks: s.weeks }))
    .concat(f.depots.map((d) => ({ name: "Depot " + d.depot, weeks: d.weeks })));
  const perType = (w) => (w.per_kit_type ? "<br><span class=\"muted\">" + esc(Object.entries(w.per_kit_type).map(([k, v]) => k + " " + v).join(", ")) + "</span>" : "");
  const weeks = rows.length ? rows[0].weeks : [];
  $("needs-table").innerHTML = table([{ title: "Site or depot", cell: (r) => esc(r.name) }].concat(
    weeks.map((w, i) => ({ title: "Week of " + w.from, cell: (r) => esc(r.weeks[i].kits) + perType(r.weeks[i]), num: true }))), rows);
}

async function loadNodes() {
  const d = await api("GET", "/nodes");
  $("nodes-note").textContent = "Nodes not synced for longer than the study's expected offline period (" + d.offline_days + " days) are marked.";
  const rows = d.nodes.map((n) => Object.assign({ __class: n.sync_overdue ? "overdue" : "" }, n));
  $("nodes-table").innerHTML = table([
    { title: "Node", cell: (n) => esc(n.node_id) + (n.sync_overdue ? " <span class=\"badge bad\">not synced</span>" : "") },
    { title: "Site", cell: (n) => esc(n.site_id) },
    { title: "Status", cell: (n) => esc(n.status) },
    { title: "Last contact", cell: (n) => esc(n.last_contact || "never") + "<br><span class=\"muted\">" + ago(n.since_contact_s) + "</span>" },
    { title: "Events received", cell: (n) => esc(n.acked_seq), num: true },
    { title: "Directives pending", cell: (n) => esc(n.directives_pending), num: true },
    { title: "Last receipt", cell: (n) => (n.last_receipt && n.last_receipt.seq != null ? "event " + esc(n.last_receipt.seq) + "<br><span class=\"muted\">" + esc(n.last_receipt.at || "") + "</span>" : "none") },
    { title: "Clock skew", cell: (n) => (n.clock_skew_ms == null ? "unknown" : esc((n.clock_skew_ms / 1000).toFixed(1).replace(/^-0\.0$/, "0.0")) + " s"), num: true },
    { title: "Slots left", cell: (n) => esc(n.slots_left.map((s) => s.label + ": " + s.slots).join("; ") || "none") },
    { title: "Numbers left", cell: (n) => esc(n.numbers_left), num: true },
    { title: "Kits", cell: (n) => esc(Object.entries(n.kits_by_status).map(([k, v]) => k.replace(/_/g, " ") + " " + v).join(", ")) },
    { title: "Open alerts", cell: (n) => esc(n.open_alerts.length), num: true },
  ], rows);
}

async function loadDeviations() {
  const open = $("deviations-open").checked;
  if (can("view_audit")) {
    const d = await api("GET", "/deviations" + (open ? "?open=true" : ""));
    const signer = can("manage_study");
    $("deviations-table").innerHTML = table([
      { title: "Raised", cell: (v) => esc(v.raised) },
      { title: "Kind", cell: (v) => esc(v.kind) },
      { title: "Site", cell: (v) => esc(v.site_id) },
      { title: "Summary", cell: (v) => esc(v.summary) + (v.unblinded ? "<br><span class=\"muted\">" + esc(JSON.stringify(v.unblinded)) + "</span>" : "") },
      { title: "Status", cell: (v) => (v.status === "open" ? "<span class=\"badge bad\">open</span>" : "<span class=\"badge ok\">" + esc(v.status) + "</span><br><span class=\"muted\">" + esc(v.acknowledged_by || "") + " " + esc(v.acknowledged || "") + ": " + esc(v.comment || "") + "</span>") },
      { title: "Action", cell: (v) => (v.status === "open" && signer ? "<button type=\"button\" class=\"ack\" data-id=\"" + esc(v.id) + "\">Acknowledge</button>" : "") },
    ], d.deviations);
    for (const b of document.querySelectorAll("#deviations-table button.ack")) b.addEventListener("click", () => acknowledge(b.dataset.id));
  } else {
    $("deviations-table").textContent = "Your role may not read deviations (it needs view_audit).";
  }
  $("alerts-box").classList.toggle("hidden", !can("manage_nodes"));
  if (can("manage_nodes")) {
    const a = await api("GET", "/alerts" + (open ? "" : "?open=false"));
    $("alerts-table").innerHTML = table([
      { title: "Raised", cell: (x) => esc(x.created) },
      { title: "Kind", cell: (x) => esc(x.kind) },
      { title: "Node", cell: (x) => esc(x.node_id) },
      { title: "Message", cell: (x) => esc(x.message) },
      { title: "Resolved", cell: (x) => (x.resolved ? esc(x.resolved) + " by " + esc(x.resolved_by) + ": " + esc(x.resolution || "") : "<span class=\"badge bad\">open</span>") },
    ], a.alerts);
  }
}

function acknowledge(id) {
  const dialog = $("sign-dialog");
  $("sign-meaning").textContent = "Deviation " + id + ": your comment and signature are recorded in the audit trail with the time.";
  $("sign-comment").value = ""; $("sign-password").value = "";
  $("sign-error").classList.add("hidden");
  dialog.dataset.id = id;
  dialog.showModal();
  $("sign-comment").focus();
}

async function signAndAcknowledge(ev) {
  ev.preventDefault();
  const dialog = $("sign-dialog");
  const comment = $("sign-comment").value.trim(), password = $("sign-password").value;
  const error = $("sign-error");
  if (!comment || !password) {
    error.textContent = !comment ? "Write the comment first." : "Sign with your password.";
    error.classList.remove("hidden");
    return;
  }
  try {
    await api("POST", "/deviations/" + encodeURIComponent(dialog.dataset.id) + "/acknowledge", { comment, signature: { password } }, true);
  } catch (e) {
    error.textContent = e.message;
    error.classList.remove("hidden");
    return;
  }
  dialog.close();
  await loadDeviations();
  message("Deviation " + dialog.dataset.id + " acknowledged and signed.", "ok");
}

async function loadAudit() {
  const q = new URLSearchParams();
  for (const f of ["since", "user", "object"]) { const v = $("audit-" + f).value.trim(); if (v) q.set(f, v); }
  const d = await api("GET", "/audit" + (q.toString() ? "?" + q.toString() : ""));
  const entries = d.entries.slice(-500).reverse();
  $("audit-table").innerHTML = "<p class=\"muted\">" + d.entries.length + " entries" + (d.entries.length > 500 ? ", the newest 500 shown (narrow the filters)" : "") + ", newest first" +
    (d.blinded ? "; what would reveal an allocation is withheld from your role" : "") + ".</p>" +
    table([
      { title: "At (UTC)", cell: (e) => esc(e.at) },
      { title: "Source", cell: (e) => esc(e.source) + (e.node_id ? " " + esc(e.node_id) : "") },
      { title: "User", cell: (e) => esc(e.user) },
      { title: "Action", cell: (e) => esc(e.action) },
      { title: "Object", cell: (e) => esc(e.object) },
      { title: "Reason", cell: (e) => esc(e.reason) + (e.withheld ? " <span class=\"badge\">allocation withheld</span>" : "") },
      { title: "Change", cell: (e) => (e.old_value || e.new_value ? esc(e.old_value) + " → " + esc(e.new_value) : "") },
      { title: "Signature", cell: (e) => esc(e.signature) },
    ], entries);
}

async function loadUsers() {
  const d = await api("GET", "/users");
  $("users-table").innerHTML = table([
    { title: "User", cell: (u) => esc(u.name) },
    { title: "Role", cell: (u) => esc(u.role) },
    { title: "Sites", cell: (u) => esc((u.sites || []).join(", ") || "all") },
    { title: "Status", cell: (u) => (u.status === "enabled" ? "<span class=\"badge ok\">enabled</span>" : "<span class=\"badge bad\">" + esc(u.status) + "</span>") },
    { title: "Created", cell: (u) => esc(u.created) },
  ], d.users);
}

// An export as a file: fetched with the session's token (a header, so not a
// plain link), saved under the name the hub gives it (study, what, format).
async function download(method, path, body, signed, fallbackName) {
  const headers = { Authorization: "Bearer " + S.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) {
    let err = null;
    try { err = (await r.json()).error; } catch (e) { err = null; }
    err = err || { code: "internal", message: "the hub answered " + r.status };
    if (r.status === 401 && !signed) endSession("Your session ended; log in again.");
    throw new ApiError(r.status, err.code, err.message);
  }
  const named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
  const name = named ? named[1] : fallbackName;
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url; a.download = name; a.classList.add("hidden");
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}

const extension = (format) => (format === "odm" ? "xml" : format);

async function loadExports() {
  // The unblinded randomizations: offered to a role that reads unblinded; the API refuses anyone else.
  $("export-unblinded-box").classList.toggle("hidden", S.me.blinded || !can("view_unblinded"));
}

async function exportBlinded(ev) {
  ev.preventDefault();
  message("");
  const what = $("export-what").value, format = $("export-format").value;
  try {
    const name = await download("GET", "/exports/" + encodeURIComponent(what) + "?format=" + encodeURIComponent(format), undefined, false,
      what + "." + extension(format));
    message("Downloaded " + name + " (blinded).", "ok");
  } catch (e) { if (e.status !== 401) message("Export: " + e.message); }
}

function askUnblindedExport(ev) {
  ev.preventDefault();
  $("export-reason").value = ""; $("export-password").value = "";
  $("export-error").classList.add("hidden");
  $("export-dialog").showModal();
  $("export-reason").focus();
}

async function exportUnblinded(ev) {
  ev.preventDefault();
  const reason = $("export-reason").value.trim(), password = $("export-password").value;
  const format = $("export-unblinded-format").value;
  const error = $("export-error");
  if (!reason || !password) {
    error.textContent = !reason ? "Write why the export is unblinded first." : "Sign with your password.";
    error.classList.remove("hidden");
    return;
  }
  let name;
  try {
    name = await download("POST", "/exports/randomizations", { format, reason, signature: { password } }, true,
      "randomizations-unblinded." + extension(format));
  } catch (e) {
    error.textContent = e.message;
    error.classList.remove("hidden");
    return;
  }
  $("export-password").value = "";
  $("export-dialog").close();
  message("Downloaded " + name + " (unblinded, signed and recorded in the audit trail).", "ok");
}

async function loadWebhooks() {
  const w = await api("GET", "/webhooks?all=true");
  $("webhooks-table").innerHTML = table([
    { title: "Id", cell: (x) => esc(x.id), num: true },
    { title: "Name", cell: (x) => esc(x.name) },
    { title: "URL", cell: (x) => esc(x.url) },
    { title: "Events", cell: (x) => esc(x.events.join(", ")) },
    { title: "Added", cell: (x) => esc(x.created) + " by " + esc(x.created_by) },
    { title: "Status", cell: (x) => (x.active ? "<span class=\"badge ok\">active</span>" : "<span class=\"badge\">removed " + esc(x.removed) + "</span>") },
  ], w.webhooks);
  const d = await api("GET", "/webhooks/deliveries");
  const badge = { delivered: "ok", pending: "bad" };
  $("deliveries-table").innerHTML = table([
    { title: "Delivery", cell: (x) => "<code>" + esc(x.id) + "</code>" },
    { title: "Webhook", cell: (x) => esc(x.webhook_id), num: true },
    { title: "Event", cell: (x) => esc(x.kind) + "<br><span class=\"muted\">" + esc(x.event_id) + "</span>" },
    { title: "Status", cell: (x) => "<span class=\"badge " + (badge[x.status] || "") + "\">" + esc(x.status) + "</span>" + (x.delivered ? "<br><span class=\"muted\">" + esc(x.delivered) + "</span>" : "") },
    { title: "Attempts", cell: (x) => esc(x.attempts), num: true },
    { title: "Last answer", cell: (x) => esc(x.last_status == null ? "" : "HTTP " + x.last_status) + (x.last_error ? "<br><span class=\"muted\">" + esc(x.last_error) + "</span>" : "") },
    { title: "Next attempt", cell: (x) => esc(x.next_attempt || "") },
  ], d.deliveries);
}

// ---- wiring

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    message("");
    try {
      const r = await api("POST", "/login", { user: $("login-user").value.trim(), password: $("login-password").value });
      S.token = r.token;
      sessionStorage.setItem("irt-hub-token", r.token);
      $("login-password").value = "";
      await start();
    } catch (e) { message(e.message); }
  });
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/logout", {}); } catch (e) { /* the session is gone either way */ }
    endSession("");
    message("Logged out.", "ok");
  });
  $("enrollment-by").addEventListener("change", drawEnrollment);
  $("deviations-open").addEventListener("change", () => openPage("deviations"));
  $("audit-form").addEventListener("submit", (ev) => { ev.preventDefault(); openPage("audit"); });
  $("sign-form").addEventListener("submit", signAndAcknowledge);
  $("sign-cancel").addEventListener("click", () => $("sign-dialog").close());
  $("export-form").addEventListener("submit", exportBlinded);
  $("export-unblinded-form").addEventListener("submit", askUnblindedExport);
  $("export-dialog-form").addEventListener("submit", exportUnblinded);
  $("export-cancel").addEventListener("click", () => $("export-dialog").close());
  $("webhooks-refresh").addEventListener("click", () => openPage("webhooks"));
  if (S.token) start(); else show("login");
});
