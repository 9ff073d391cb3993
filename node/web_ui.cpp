#include "node/web_ui.h"

namespace irt::node {

namespace {

// One self-contained page: no font, script or style from anywhere else.
constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IRT site node</title>
<style>
:root { --ink:#1b2430; --muted:#5b6675; --line:#d5dbe3; --bg:#f4f6f9; --accent:#1f5fa8; --ok:#1d7a46; --bad:#b3261e; --warn:#9a6700; }
* { box-sizing: border-box; }
body { margin:0; font: 18px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header { position:sticky; top:0; z-index:5; display:flex; flex-wrap:wrap; gap:8px 16px; align-items:center; padding:10px 16px; background:#fff; border-bottom:1px solid var(--line); }
header .site { font-weight:600; }
.pill { display:inline-flex; align-items:center; gap:6px; padding:6px 12px; border-radius:999px; font-weight:600; font-size:16px; }
.pill.online { background:#e3f4ea; color:var(--ok); }
.pill.offline { background:#fdecea; color:var(--bad); }
.pill.refused { background:#fff4d6; color:var(--warn); }
.dot { width:12px; height:12px; border-radius:50%; background:currentColor; }
.muted { color:var(--muted); font-size:16px; }
.spacer { flex:1; }
nav { display:flex; gap:8px; padding:10px 16px; background:#fff; border-bottom:1px solid var(--line); }
nav button { flex:1; }
main { max-width:768px; margin:0 auto; padding:16px; }
button, .button { min-height:48px; min-width:48px; padding:10px 18px; font:inherit; font-weight:600; border-radius:10px; border:1px solid var(--line); background:#fff; color:var(--ink); cursor:pointer; }
button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
button.danger { background:var(--bad); border-color:var(--bad); color:#fff; }
button[aria-current="page"] { border-color:var(--accent); color:var(--accent); }
button:disabled { opacity:.5; }
label { display:block; margin:14px 0 6px; font-weight:600; }
input, select, textarea { width:100%; min-height:48px; padding:10px 12px; font:inherit; border:1px solid var(--line); border-radius:10px; background:#fff; }
.card { background:#fff; border:1px solid var(--line); border-radius:12px; padding:14px 16px; margin:12px 0; }
.row { display:flex; gap:12px; align-items:center; flex-wrap:wrap; }
.list-item { display:flex; justify-content:space-between; align-items:center; width:100%; text-align:left; margin:8px 0; }
.badge { padding:3px 10px; border-radius:8px; background:#eef1f5; font-size:15px; font-weight:600; }
.msg { padding:12px 14px; border-radius:10px; margin:12px 0; }
.msg.error { background:#fdecea; color:var(--bad); }
.msg.ok { background:#e3f4ea; color:var(--ok); }
.arm { background:#fff4d6; color:var(--warn); padding:8px 12px; border-radius:8px; font-weight:700; }
table { width:100%; border-collapse:collapse; background:#fff; }
th, td { padding:10px 8px; border-bottom:1px solid var(--line); text-align:left; font-size:16px; }
.yn { display:flex; gap:8px; } .yn button { flex:1; } .yn button.on { background:var(--accent); color:#fff; border-color:var(--accent); }
dialog { border:none; border-radius:14px; padding:20px; width:min(560px, 92vw); }
dialog::backdrop { background:rgba(0,0,0,.35); }
.hidden { display:none !important; }
h1 { font-size:24px; margin:8px 0 12px; } h2 { font-size:20px; margin:18px 0 8px; }
</style>
</head>
<body>
<header>
  <span class="site" id="site">IRT site node</span>
  <span id="conn" class="pill offline" role="status"><span class="dot"></span><span id="conn-text">Offline</span></span>
  <span class="muted">Last sync: <span id="last-sync">never</span></span>
  <span class="muted" id="pending"></span>
  <span class="spacer"></span>
  <span id="who" class="muted"></span>
  <button id="logout" class="hidden">Log out</button>
</header>
<nav id="nav" class="hidden">
  <button id="nav-participants" data-view="participants">Participants</button>
  <button id="nav-screen" data-view="screen">Screen</button>
  <button id="nav-inventory" data-view="inventory">Inventory</button>
  <button id="nav-status" data-view="status">Status</button>
</nav>
<main>
  <div id="message" class="msg hidden" role="alert"></div>
  <section id="view-login">
    <h1>Log in</h1>
    <form id="login-form" class="card">
      <label for="login-user">User</label><input id="login-user" autocomplete="username" autocapitalize="none">
      <label for="login-password">Password</label><input id="login-password" type="password" autocomplete="current-password">
      <p><button class="primary" id="login-button" type="submit">Log in</button></p>
    </form>
  </section>
  <section id="view-participants" class="hidden"><h1>Participants</h1><div id="participant-list"></div></section>
  <section id="view-participant" class="hidden"><div id="participant-detail"></div></section>
  <section id="view-screen" class="hidden"><h1>Screen a participant</h1><form id="screen-form" class="card"></form></section>
  <section id="view-inventory" class="hidden"><h1>Inventory</h1><div id="shipments"></div><div id="inventory"></div></section>
  <section id="view-status" class="hidden"><h1>Node status</h1><div id="status-detail" class="card"></div></section>
</main>
<dialog id="sign-dialog">
  <form method="dialog" id="sign-form">
    <h2 id="sign-title">Electronic signature</h2>
    <p id="sign-meaning"></p>
    <div id="sign-reason-box"><label for="sign-reason" id="sign-reason-label">Reason</label><textarea id="sign-reason" rows="2"></textarea></div>
    <div id="sign-password-box"><label for="sign-password">Your password (signs this action)</label><input id="sign-password" type="password" autocomplete="current-password"></div>
    <div class="row" style="margin-top:16px"><button type="button" id="sign-cancel">Cancel</button><span class="spacer"></span><button class="primary" id="sign-confirm" type="submit">Confirm</button></div>
  </form>
</dialog>
<script>
"use strict";
const S = { token: sessionStorage.getItem("irt-token"), me: JSON.parse(sessionStorage.getItem("irt-me") || "null"), study: null, status: null };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const can = (p) => S.me && S.me.permissions.includes(p);

// Each action sends a fresh Idempotency-Key and, when the node did not answer
// (the answer may be what was lost), retries with the same key and body: the
// node applies it once. getRandomValues works on plain http, unlike randomUUID.
function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (S.token) headers.Authorization = "Bearer " + S.token;
  const retries = method === "POST" && path !== "/login" && path !== "/logout" ? 2 : 0;
  if (retries) headers["Idempotency-Key"] = newKey();
  const text = body ? JSON.stringify(body) : undefined;
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch("/api/v1" + path, { method, headers, body: text });
      break;
    } catch (e) {
      if (attempt >= retries) throw { code: "unreachable", message: "The node is not answering. Check that it is running on this device." };
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = (data && data.error) || { code: "internal", message: "HTTP " + res.status };
    if (res.status === 401 && path !== "/login" && !/signature/.test(err.message)) { logout(true); }
    throw err;
  }
  return data;
}
function show(text, ok) { const m = $("message"); m.textContent = text; m.className = "msg " + (ok ? "ok" : "error"); m.scrollIntoView({ block: "nearest" }); }
function clearMessage() { $("message").className = "msg hidden"; }
function view(name) {
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("hidden", s.id !== "view-" + name);
  for (const b of document.querySelectorAll("nav button")) b.setAttribute("aria-current", b.dataset.view === name ? "page" : "false");
}
function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago"; if (s < 3600) return Math.round(s / 60) + " min ago";
  return new Date(ms).toLocaleString();
}
async function refreshStatus() {
  if (!S.token) return;
  try {
    const st = await api("GET", "/status"); S.status = st;
    const state = st.sync_state || (st.online ? "online" : "offline");
    $("conn").className = "pill " + state;
    $("conn-text").textContent = state === "refused" ? "Sync refused by the hub" : state === "online" ? "Online" : "Offline";
    $("conn").title = state === "refused" ? st.sync_error : "";
    $("last-sync").textContent = ago(st.last_sync_ms);
    $("pending").textContent = st.pending_events + " events to send";
    $("site").textContent = "Site " + st.site_id + " · " + st.study_id;
  } catch (e) {
    $("conn").className = "pill offline"; $("conn-text").textContent = "Node unreachable";
  }
}
function logout(expired) {
  if (S.token && !expired) api("POST", "/logout").catch(() => {});
  S.token = null; S.me = null; sessionStorage.removeItem("irt-token"); sessionStorage.removeItem("irt-me");
  $("nav").classList.add("hidden"); $("logout").classList.add("hidden"); $("who").textContent = "";
  view("login"); if (expired) show("Your session ended. Log in again.");
}
$("logout").onclick = () => logout(false);
$("login-form").onsubmit = async (ev) => {
  ev.preventDefault(); clearMessage();
  try {
    const r = await api("POST", "/login", { user: $("login-user").value.trim(), password: $("login-password").value });
    S.token = r.token; S.me = r; sessionStorage.setItem("irt-token", r.token); sessionStorage.setItem("irt-me", JSON.stringify(r));
    $("login-password").value = ""; await start();
  } catch (e) { show(e.message); }
};
for (const b of document.querySelectorAll("nav button")) b.onclick = () => { clearMessage(); open(b.dataset.view); };

// A critical action: asks the reason (when needed) and the password.
function sign(title, meaning, opts) {
  return new Promise((resolve) => {
    const d = $("sign-dialog");
    $("sign-title").textContent = title; $("sign-meaning").textContent = meaning || "";
    $("sign-reason-box").classList.toggle("hidden", !opts.reason); $("sign-reason-label").textContent = opts.reason || "";
    $("sign-password-box").classList.toggle("hidden", !opts.password);
    $("sign-reason").value = ""; $("sign-password").value = "";
    $("sign-cancel").onclick = () => { d.close(); resolve(null); };
    $("sign-form").onsubmit = (ev) => { ev.preventDefault(); const r = { reason: $("sign-reason").value, password: $("sign-password").value }; $("sign-password").value = ""; d.close(); resolve(r); };
    d.showModal(); (opts.reason ? $("sign-reason") : $("sign-password")).focus();
  });
}

async function open(name, arg) {
  view(name);
  try {
    if (name === "participants") await renderParticipants();
    if (name === "participant") await renderParticipant(arg);
    if (name === "screen") renderScreen();
    if (name === "inventory") await renderInventory();
    if (name === "status") await renderStatus();
  } catch (e) { show(e.message); }
}

async function renderParticipants() {
  const list = $("participant-list");
  if (!can("view_participants") && !can("dispense")) { list.innerHTML = '<p class="muted">Your role does not view participants.</p>'; return; }
  const r = await api("GET", "/participants");
  list.innerHTML = r.participants.length ? "" : '<p class="muted">No participant yet.</p>';
  for (const p of r.participants.slice().reverse()) {
    const b = document.createElement("button"); b.className = "list-item card"; b.dataset.participant = p.participant;
    b.innerHTML = "<span><strong>" + esc(p.participant) + "</strong> " + (p.randomization_number ? '<span class="muted">' + esc(p.randomization_number) + "</span>" : "") +
      (p.arm ? ' <span class="arm">' + esc(p.arm.name) + "</span>" : "") + '</span><span class="badge">' + esc(p.status) + (p.unblinded ? " · unblinded" : "") + "</span>";
    b.onclick = () => { clearMessage(); open("participant", p.participant); };
    list.appendChild(b);
  }
}

function kitLine(k) {
  return "<li><strong>" + esc(k.kit) + "</strong> · " + esc(k.label) + (k.kit_type_name ? " · " + esc(k.kit_type_name) : "") + " · expires " + esc(k.expiry) + "</li>";
}

async function renderParticipant(number) {
  const p = await api("GET", "/participants/" + encodeURIComponent(number));
  const el = $("participant-detail");
  let h = '<h1>Participant <span id="p-number">' + esc(p.participant) + '</span></h1><div class="card">';
  h += '<p>Status: <span class="badge" id="p-status">' + esc(p.status) + "</span>" + (p.unblinded ? ' <span class="badge">code broken</span>' : "") + "</p>";
  if (p.randomization_number) h += '<p>Randomization number: <strong id="p-randno">' + esc(p.randomization_number) + "</strong> on " + esc(p.randomized_on) + "</p>";
  if (p.arm) h += '<p class="arm" id="p-arm">Arm: ' + esc(p.arm.name) + " (" + esc(p.arm.id) + ")</p>";
  h += '<p class="muted">' + Object.entries(p.factors).map(([k, v]) => esc(k) + ": " + esc(v)).join(" · ") + "</p>";
  if (p.cohort) { const c = (S.study.cohorts || []).find((x) => x.id === p.cohort); h += '<p>Cohort: <span id="p-cohort">' + esc(c ? c.name + " (" + c.id + ")" : p.cohort) + "</span></p>"; }
  if (p.screen_failure_reason) h += "<p>Screen failure: " + esc(p.screen_failure_reason) + "</p>";
  if (p.withdrawal_reason) h += "<p>Withdrawn: " + esc(p.withdrawal_reason) + "</p>";
  h += "</div>";
  if (p.visits.length) {
    h += "<h2>Visits</h2>";
    for (const v of p.visits) h += '<div class="card"><strong>' + esc(v.visit) + "</strong> on " + esc(v.date) + (v.deviation ? ' <span class="badge">deviation: ' + esc(v.deviation) + "</span>" : "") + '<ul class="kits">' + v.kits.map(kitLine).join("") + "</ul></div>";
  }
  h += '<div class="row" id="actions">';
  if (p.status === "screened" && can("randomize")) h += '<button class="primary" id="action-randomize">Randomize</button>';
  if (p.status === "randomized" && can("dispense")) {
    const next = p.schedule.filter((v) => v.dispenses && !v.done);
    if (next.length) h += '<select id="dispense-visit" style="width:auto">' + next.map((v) => '<option value="' + esc(v.visit) + '">' + esc(v.visit + " · " + v.name + " (" + v.window_from + " to " + v.window_to + ")") + "</option>").join("") + '</select><button class="primary" id="action-dispense">Dispense</button>';
  }
  if (p.randomization_number && can("unblind")) h += '<button class="danger" id="action-unblind">Emergency unblinding</button>';
  if ((p.status === "screened" || p.status === "randomized") && can("withdraw")) h += '<button id="action-withdraw">Withdraw</button>';
  h += '</div><div id="result"></div>';
  el.innerHTML = h;
  const act = (id, fn) => { const b = $(id); if (b) b.onclick = fn; };
  act("action-randomize", async () => { clearMessage();
    const s = await sign("Randomize", "I confirm the randomization of participant " + p.participant, { password: true }); if (!s) return;
    try {
      const r = await api("POST", "/participants/" + encodeURIComponent(p.participant) + "/randomize", { signature_password: s.password });
      await renderParticipant(p.participant);
      $("result").innerHTML = '<div class="msg ok" id="randomize-result">Randomized: <strong>' + esc(r.randomization_number) + "</strong>. Hand out kit " + r.kits.map((k) => "<strong>" + esc(k.kit) + "</strong>").join(", ") + ".</div>";
    } catch (e) { show(e.message); }
  });
  act("action-dispense", async () => { clearMessage();
    const visit = $("dispense-visit").value; const sv = p.schedule.find((v) => v.visit === visit);
    let body = { visit };
    if (!sv.in_window_today) {
      const s = await sign("Outside the visit window", "Visit " + visit + " is outside its window. Dispensing anyway is recorded as a protocol deviation.", { reason: "Reason for the override", password: true });
      if (!s) return; body.override_reason = s.reason; body.signature_password = s.password;
    }
    try {
      const r = await api("POST", "/participants/" + encodeURIComponent(p.participant) + "/dispense", body);
      await renderParticipant(p.participant);
      $("result").innerHTML = '<div class="msg ok">Dispense kit ' + r.kits.map((k) => "<strong>" + esc(k.kit) + "</strong>").join(", ") + ".</div>";
    } catch (e) { show(e.message); }
  });
  act("action-unblind", async () => { clearMessage();
    const s = await sign("Emergency unblinding", "I confirm the emergency unblinding of participant " + p.participant + ". This is recorded and reported to the central team.", { reason: "Medical reason", password: true });
    if (!s) return;
    try {
      const r = await api("POST", "/participants/" + encodeURIComponent(p.participant) + "/unblind", { reason: s.reason, signature_password: s.password });
      await renderParticipant(p.participant);
      $("result").innerHTML = '<div class="arm" id="unblind-result">Code broken: ' + esc(r.arm.name) + " (" + esc(r.arm.id) + ")</div>";
    } catch (e) { show(e.message); }
  });
  act("action-withdraw", async () => { clearMessage();
    const s = await sign("Withdraw", "Withdraw participant " + p.participant + " from the study.", { reason: "Reason" }); if (!s) return;
    try { await api("POST", "/participants/" + encodeURIComponent(p.participant) + "/withdraw", { reason: s.reason }); await renderParticipant(p.participant); show("Participant withdrawn.", true); }
    catch (e) { show(e.message); }
  });
}

function renderScreen() {
  const f = $("screen-form"); const st = S.study;
  if (!can("screen")) { f.innerHTML = '<p class="muted">Your role does not screen participants.</p>'; return; }
  let h = "";
  if ((st.cohorts || []).length) h += '<label for="cohort">Cohort</label><select id="cohort" name="cohort"><option value="">Choose…</option>' + st.cohorts.map((c) => '<option value="' + esc(c.id) + '">' + esc(c.name + " (" + c.id + ")") + "</option>").join("") + "</select>";
  for (const fac of st.factors) {
    h += '<label for="factor-' + esc(fac.id) + '">' + esc(fac.name) + (fac.required ? "" : " (optional)") + '</label><select id="factor-' + esc(fac.id) + '" name="factor-' + esc(fac.id) + '"><option value="">Choose…</option>' + fac.levels.map((l) => '<option value="' + esc(l) + '">' + esc(l) + "</option>").join("") + "</select>";
  }
  h += "<h2>Eligibility</h2>";
  st.eligibility.forEach((q, i) => { h += '<label>' + esc(q) + '</label><div class="yn" id="elig-' + i + '" data-answer=""><button type="button" data-v="yes">Yes</button><button type="button" data-v="no">No</button></div>'; });
  h += '<label for="screen-failure">Screen failure reason (only if not eligible)</label><input id="screen-failure">';
  h += '<p><button class="primary" id="screen-submit" type="submit">Screen participant</button></p>';
  f.innerHTML = h;
  for (const yn of f.querySelectorAll(".yn")) for (const b of yn.querySelectorAll("button")) b.onclick = () => { yn.dataset.answer = b.dataset.v; for (const o of yn.querySelectorAll("button")) o.classList.toggle("on", o === b); };
  f.onsubmit = async (ev) => {
    ev.preventDefault(); clearMessage();
    const factors = {}; for (const fac of st.factors) { const v = $("factor-" + fac.id).value; if (v) factors[fac.id] = v; }
    const eligibility = st.eligibility.map((q, i) => $("elig-" + i).dataset.answer);
    if (eligibility.includes("")) { show("Answer every eligibility question with yes or no."); return; }
    try {
      const body = { factors, eligibility, screen_failure_reason: $("screen-failure").value };
      if ((st.cohorts || []).length && $("cohort").value) body.cohort = $("cohort").value;
      const r = await api("POST", "/participants", body);
      show("Screened participant " + r.participant.participant + " (" + r.participant.status + ").", true);
      await open("participant", r.participant.participant);
      show("Screened participant " + r.participant.participant + " (" + r.participant.status + ").", true);
    } catch (e) { show(e.message); }
  };
}

async function renderInventory() {
  if (!can("view_inventory")) { $("inventory").innerHTML = '<p class="muted">Your role does not view the inventory.</p>'; $("shipments").innerHTML = ""; return; }
  const [inv, sh] = await Promise.all([api("GET", "/inventory"), api("GET", "/shipments")]);
  let h = "";
  for (const s of sh.shipments.filter((s) => !s.received)) {
    h += '<div class="card"><strong>Shipment ' + esc(s.shipment) + "</strong> to receive (" + s.kits.length + ' kits)<table><tr><th>Kit</th><th>Label</th><th>Condition</th></tr>';
    for (const k of s.kits.filter((k) => k.status === "expected")) h += "<tr><td>" + esc(k.kit) + "</td><td>" + esc(k.label) + '</td><td><select data-kit="' + esc(k.kit) + '"><option>received</option><option>damaged</option><option>missing</option></select></td></tr>';
    h += '</table><p><button class="primary" data-receive="' + esc(s.shipment) + '">Record receipt</button></p></div>';
  }
  $("shipments").innerHTML = can("receive_shipment") ? h : "";
  for (const b of document.querySelectorAll("[data-receive]")) b.onclick = async () => {
    const card = b.closest(".card"); const kits = [...card.querySelectorAll("select[data-kit]")].map((s) => ({ kit: s.dataset.kit, condition: s.value }));
    const body = { kits };
    if (kits.some((k) => k.condition === "damaged")) { const s = await sign("Report damaged kits", "Damaged kits are recorded with your signature.", { password: true }); if (!s) return; body.signature_password = s.password; }
    try { await api("POST", "/shipments/" + encodeURIComponent(b.dataset.receive) + "/receive", body); show("Receipt recorded.", true); await renderInventory(); } catch (e) { show(e.message); }
  };
  const unblinded = inv.kits.some((k) => k.kit_type);
  let t = '<p class="muted">Today ' + esc(inv.today) + " · kits within " + inv.do_not_dispense_days + ' days of expiry are not dispensed</p><table id="inventory-table"><tr><th>Kit</th><th>Label</th>' + (unblinded ? "<th>Kit type</th><th>Arm</th><th>Lot</th>" : "") + "<th>Status</th><th>Expiry</th><th></th></tr>";
  for (const k of inv.kits) {
    t += "<tr><td>" + esc(k.kit) + "</td><td>" + esc(k.label) + "</td>" + (unblinded ? "<td>" + esc(k.kit_type_name) + '</td><td class="arm-cell">' + esc(k.arm ? k.arm.name : "") + "</td><td>" + esc(k.lot) + "</td>" : "") +
      "<td>" + esc(k.status) + (k.participant ? " · " + esc(k.participant) : "") + "</td><td>" + esc(k.expiry) + "</td><td>" +
      (k.status === "available" && can("report_excursion") ? '<button data-quarantine="' + esc(k.kit) + '">Quarantine</button>' : "") + "</td></tr>";
  }
  $("inventory").innerHTML = t + "</table>";
  for (const b of document.querySelectorAll("[data-quarantine]")) b.onclick = async () => {
    const s = await sign("Temperature excursion", "Kit " + b.dataset.quarantine + " stays quarantined until the hub releases or rejects it.", { reason: "What happened (temperature, duration)" }); if (!s) return;
    try { await api("POST", "/kits/" + encodeURIComponent(b.dataset.quarantine) + "/quarantine", { reason: s.reason }); show("Kit quarantined.", true); await renderInventory(); } catch (e) { show(e.message); }
  };
}

async function renderStatus() {
  const st = await api("GET", "/status"); let h = "<p>Node <strong>" + esc(st.node_id) + "</strong>, site " + esc(st.site_id) + ", study " + esc(st.study_id) + "</p>";
  h += "<p>" + (st.sync_state === "refused" ? '<strong id="sync-refused">' + esc(st.sync_error) + "</strong>" : st.online ? "Online" : "Offline: everything is kept and sent at the next sync") + ". Last sync " + esc(ago(st.last_sync_ms)) + ". Events waiting: " + st.pending_events + ".</p>";
  h += "<h2>Randomization slots left</h2><ul>" + st.slots_left.map((s) => "<li>" + esc(s.stratum) + ": " + s.free + "</li>").join("") + "</ul>";
  h += "<p>Participant numbers left: " + st.numbers_left + "</p><h2>Kits by status</h2><ul>" + Object.entries(st.kits).map(([k, v]) => "<li>" + esc(k) + ": " + v + "</li>").join("") + "</ul>";
  $("status-detail").innerHTML = h;
}

async function start() {
  try { S.study = await api("GET", "/study"); } catch (e) { show(e.message); return; }
  $("nav").classList.remove("hidden"); $("logout").classList.remove("hidden");
  $("who").textContent = S.me.user + " · " + S.me.role + (S.me.blinded ? "" : " (unblinded)");
  await refreshStatus(); await open("participants");
}
setInterval(refreshStatus, 5000);
if (S.token) start(); else view("login");
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view web_ui_page() { return kPage; }

}  // namespace irt::node
