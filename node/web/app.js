// The node's tablet UI (node/web_ui.h): it shows what the node's own /api/v1
// answers the logged-in user, offline too. Tabs follow the user's permissions;
// blinding is the API's. Loaded as a file under a Content-Security-Policy with
// no inline script or style: handlers are set from here, never as attributes,
// and markup written here carries classes, never style attributes.
"use strict";
const S = { token: sessionStorage.getItem("irt-token"), me: JSON.parse(sessionStorage.getItem("irt-me") || "null"), study: null, nodeDown: false };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const can = (p) => !!(S.me && S.me.permissions.includes(p));

// Words as people read them, not as the API spells them.
const WORDS = {
  screened: "Screened", screen_failed: "Screen failure", randomized: "Randomized", withdrawn: "Withdrawn", completed: "Completed",
  expected: "Expected", shipped: "Shipped", received: "Received", available: "Available", damaged: "Damaged", missing: "Missing",
  lost: "Lost", quarantined: "Quarantined", rejected: "Rejected", dispensed: "Dispensed", returned: "Returned",
  destroyed: "Destroyed", lost_with_node: "Lost with a tablet",
  done: "Done", due: "Due", overdue: "Overdue", upcoming: "Upcoming", not_planned: "Not planned",
};
const word = (w) => WORDS[w] || String(w == null ? "" : w).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
function factorName(id) {
  if (id === "site") return "Site"; if (id === "country") return "Country";
  const f = S.study && S.study.factors.find((x) => x.id === id); return f ? f.name : id;
}
// "site=101;diabetes=yes" -> "Site 101 · Diabetes: yes"
function stratumLabel(label) {
  if (label === "all") return "All participants";
  return String(label).split(";").map((kv) => { const [k, v] = kv.split("=");
    return k === "site" || k === "country" ? factorName(k) + " " + v : factorName(k) + ": " + v; }).join(" · ");
}
// The API names fields ("factors.diabetes", "eligibility[2]"); people read their names.
function humanize(msg) {
  return String(msg || "")
    .replace(/factors\.([A-Za-z0-9_-]+)/g, (m, id) => factorName(id))
    .replace(/eligibility\[(\d+)\]/g, (m, i) => "Eligibility question " + (Number(i) + 1))
    .replace(/\bscreen_failure_reason\b/g, "the screen failure reason")
    .replace(/\bsignature_password\b/g, "your password")
    .replace(/\boverride_reason\b/g, "the reason for the override")
    .replace(/\bminimum_celsius\b/g, "the lowest temperature").replace(/\bmaximum_celsius\b/g, "the highest temperature")
    .replace(/\bduration_minutes\b/g, "the duration").replace(/\bto_node\b/g, "the tablet")
    .replace(/\b(with|using) POST \/api\/v1\/\S+/g, "").replace(/ \(POST \/api\/v1\/[^)]*\)/g, "")
    .replace(/ with the idempotency key[^.;]*/gi, "");
}

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
    if (res.status === 401 && path !== "/login" && !/signature/.test(err.message)) { logout("Your session ended. Log in again."); }
    throw { code: err.code, message: humanize(err.message) };
  }
  return data;
}
function show(text, ok) { const m = $("message"); m.textContent = String(text).replace(/^./, (c) => c.toUpperCase()); m.className = "msg " + (ok ? "ok" : "error"); m.scrollIntoView({ block: "nearest" }); }
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

// The header: whether the node answers and reaches its hub, before login too.
// The status poll does not keep a session alive (the node counts only what a person does).
function nodeDown(down) {
  S.nodeDown = down;
  $("node-down").classList.toggle("hidden", !down);
  $("last-sync-box").classList.toggle("hidden", down);
  $("pending").classList.toggle("hidden", down);
  if (down) { $("conn").className = "pill down"; $("conn-text").textContent = "Node not running"; $("conn").title = ""; }
}
async function poll() {
  let c;
  try { const r = await fetch("/api/v1/connection", { cache: "no-store" }); c = await r.json(); } catch (e) { nodeDown(true); return; }
  nodeDown(false);
  const state = c.sync_state || (c.online ? "online" : "offline");
  $("conn").className = "pill " + state; $("conn").dataset.state = state;
  $("conn-text").textContent = state === "refused" ? "Sync refused by the hub" : state === "online" ? "Online" : "Offline";
  $("last-sync").textContent = ago(c.last_sync_ms);
  if (!S.token) return;
  try {
    const st = await api("GET", "/status");
    $("conn").title = st.sync_state === "refused" ? st.sync_error : "";
    $("pending").textContent = st.pending_events + " events to send";
    $("site").textContent = "Site " + st.site_id + " · " + st.study_id;
  } catch (e) { /* a lost session logs out in api() */ }
}

// Logging out (by hand, when the session ended or after the idle time)
// clears everything that was on screen: a shared tablet keeps nothing.
function clearScreens() {
  for (const id of ["participant-list", "participant-detail", "due", "screen-form", "shipments", "inventory", "return-detail", "status-detail"]) $(id).innerHTML = "";
  for (const id of ["sign-dialog", "excursion-dialog"]) { const d = $(id); if (d.open) d.close(); }
  $("sign-reason").value = ""; $("sign-password").value = ""; $("sign-witness-password").value = ""; $("login-password").value = "";
  $("site").textContent = "IRT site node"; $("pending").textContent = ""; $("who").textContent = "";
}
function logout(why) {
  if (S.token && !why) api("POST", "/logout").catch(() => {});
  else if (S.token) fetch("/api/v1/logout", { method: "POST", headers: { Authorization: "Bearer " + S.token } }).catch(() => {});
  S.token = null; S.me = null; S.study = null; sessionStorage.removeItem("irt-token"); sessionStorage.removeItem("irt-me");
  $("nav").classList.add("hidden"); $("logout").classList.add("hidden");
  clearScreens(); view("login"); clearMessage();
  if (why) show(why);
}
let lastUse = Date.now();
for (const ev of ["pointerdown", "keydown", "wheel", "touchstart"]) addEventListener(ev, () => { lastUse = Date.now(); }, { capture: true, passive: true });
setInterval(() => {
  if (!S.token || !S.me || !S.me.idle_timeout_s) return;
  const idle = S.me.idle_timeout_s;
  if (Date.now() - lastUse > idle * 1000)
    logout("Logged out after " + (idle % 60 ? idle + " seconds" : idle / 60 + " minutes") + " without use. Log in again to continue.");
}, 1000);

$("logout").onclick = () => logout(null);
$("login-form").onsubmit = async (ev) => {
  ev.preventDefault(); clearMessage();
  const user = $("login-user").value.trim(), password = $("login-password").value;
  if (!user || !password) { show("Enter your user name and password."); return; }
  try {
    const r = await api("POST", "/login", { user, password });
    S.token = r.token; S.me = r; sessionStorage.setItem("irt-token", r.token); sessionStorage.setItem("irt-me", JSON.stringify(r));
    $("login-password").value = ""; lastUse = Date.now(); await start();
  } catch (e) { show(e.message); }
};
for (const b of document.querySelectorAll("nav button")) b.onclick = () => { clearMessage(); open(b.dataset.view); };

// Asks before an action: a confirmation, and when needed a reason and the password (an e-signature).
function ask(title, meaningHtml, opts) {
  return new Promise((resolve) => {
    const d = $("sign-dialog");
    $("sign-title").textContent = title; $("sign-meaning").innerHTML = meaningHtml || "";
    $("sign-choice-box").classList.toggle("hidden", !opts.choices);
    if (opts.choices) { $("sign-choice-label").textContent = opts.choiceLabel || "Choose"; $("sign-choice").innerHTML = opts.choices.map(([v, t]) => '<option value="' + esc(v) + '">' + esc(t) + "</option>").join(""); }
    $("sign-text-box").classList.toggle("hidden", !opts.text); $("sign-text-label").textContent = opts.text || ""; $("sign-text").type = opts.textType || "text"; $("sign-text").value = "";
    $("sign-reason-box").classList.toggle("hidden", !opts.reason); $("sign-reason-label").textContent = opts.reason || "";
    $("sign-reason-error").classList.add("hidden");
    $("sign-password-box").classList.toggle("hidden", !opts.password);
    $("sign-witness-box").classList.toggle("hidden", !opts.witness); $("sign-witness-error").classList.add("hidden");
    $("sign-reason").value = ""; $("sign-password").value = ""; $("sign-witness").value = ""; $("sign-witness-password").value = "";
    $("sign-confirm").textContent = opts.confirm || "Confirm";
    $("sign-confirm").className = opts.danger ? "danger" : "primary";
    $("sign-cancel").onclick = () => { d.close(); resolve(null); };
    d.oncancel = () => resolve(null);
    $("sign-form").onsubmit = (ev) => {
      ev.preventDefault();
      if (opts.reason && !$("sign-reason").value.trim()) { $("sign-reason-error").classList.remove("hidden"); $("sign-reason").focus(); return; }
      if (opts.witness && (!$("sign-witness").value.trim() || !$("sign-witness-password").value)) { $("sign-witness-error").classList.remove("hidden"); $("sign-witness").focus(); return; }
      const r = { reason: $("sign-reason").value.trim(), password: $("sign-password").value, choice: $("sign-choice").value, text: $("sign-text").value.trim(), witness: $("sign-witness").value.trim(), witnessPassword: $("sign-witness-password").value };
      $("sign-password").value = ""; $("sign-witness-password").value = ""; d.close(); resolve(r);
    };
    $("sign-reason").oninput = () => $("sign-reason-error").classList.add("hidden");
    $("sign-witness").oninput = $("sign-witness-password").oninput = () => $("sign-witness-error").classList.add("hidden");
    d.showModal(); (opts.text ? $("sign-text") : opts.reason ? $("sign-reason") : opts.password ? $("sign-password") : $("sign-confirm")).focus();
  });
}

// A temperature excursion: the logger's readings, checked here with messages
// for people (the node checks them again). Resolves with the readings or null.
function askExcursion(meaningHtml, locations, count) {
  return new Promise((resolve) => {
    const d = $("excursion-dialog");
    $("exc-meaning").innerHTML = meaningHtml;
    $("exc-location-box").classList.toggle("hidden", !locations);
    if (locations) $("exc-location").innerHTML = '<option value="">Choose…</option>' + locations.map((l) => '<option value="' + esc(l) + '">' + esc(l) + "</option>").join("");
    for (const id of ["min", "max", "duration", "reason"]) $("exc-" + id).value = "";
    const fields = ["location", "min", "max", "duration", "reason"];
    const setError = (id, text) => {
      const e = $("exc-err-" + id); e.textContent = text || ""; e.classList.toggle("hidden", !text);
      $("exc-" + id).setAttribute("aria-invalid", text ? "true" : "false");
    };
    for (const id of fields) { setError(id, ""); $("exc-" + id).oninput = $("exc-" + id).onchange = () => setError(id, ""); }
    $("exc-confirm").textContent = locations ? "Quarantine every kit there" : "Quarantine " + count + (count === 1 ? " kit" : " kits");
    $("exc-cancel").onclick = () => { d.close(); resolve(null); };
    d.oncancel = () => resolve(null);
    const celsius = (id) => { const t = $("exc-" + id).value.trim().replace(",", "."); return /^[-+]?\d+(\.\d+)?$/.test(t) ? Number(t) : null; };
    $("exc-form").onsubmit = (ev) => {
      ev.preventDefault();
      const min = celsius("min"), max = celsius("max"), dur = $("exc-duration").value.trim(), reason = $("exc-reason").value.trim();
      const bad = [];
      if (locations && !$("exc-location").value) bad.push(["location", "Choose the storage location whose kits were exposed."]);
      if (min === null) bad.push(["min", "Lowest temperature: give the logger's lowest reading in °C, for example 2 or -1.5."]);
      if (max === null) bad.push(["max", "Highest temperature: give the logger's highest reading in °C, for example 12.5."]);
      if (min !== null && max !== null && max < min) bad.push(["max", "The highest temperature is below the lowest: check the logger's readings."]);
      if (!/^\d+$/.test(dur) || Number(dur) < 1) bad.push(["duration", "Give how long the kits were outside the range, in whole minutes (1 or more)."]);
      if (!reason) bad.push(["reason", "Say what happened, for example: fridge door left open overnight."]);
      for (const [id, text] of bad) setError(id, text);
      if (bad.length) { $("exc-" + bad[0][0]).focus(); return; }
      d.close();
      resolve({ location: locations ? $("exc-location").value : "", minimum_celsius: min, maximum_celsius: max, duration_minutes: Number(dur), reason });
    };
    d.showModal(); (locations ? $("exc-location") : $("exc-min")).focus();
  });
}

const TABS = {
  participants: () => can("view_participants") || can("dispense"),
  visits: () => can("view_participants") || can("dispense"),
  screen: () => can("screen"),
  inventory: () => can("view_inventory") || can("receive_shipment"),
  status: () => true,
};
async function open(name, arg) {
  if (name === "participant") $("participant-detail").innerHTML = "";  // never another participant's record while loading
  if (name === "return") $("return-detail").innerHTML = "";  // never a list of kits already sent back
  view(name);
  const section = $("view-" + name);
  section.setAttribute("aria-busy", "true");  // until its answer is drawn
  try {
    if (name === "participants") await renderParticipants();
    if (name === "participant") await renderParticipant(arg);
    if (name === "visits") await renderVisits();
    if (name === "screen") renderScreen();
    if (name === "inventory") await renderInventory();
    if (name === "return") await renderReturn();
    if (name === "status") await renderStatus();
  } catch (e) { show(e.message); }
  section.removeAttribute("aria-busy");
}

async function renderParticipants() {
  const list = $("participant-list");
  const r = await api("GET", "/participants");
  list.innerHTML = r.participants.length ? "" : '<p class="muted">No participant yet.</p>';
  for (const p of r.participants.slice().reverse()) {
    const b = document.createElement("button"); b.className = "list-item card"; b.dataset.participant = p.participant;
    b.innerHTML = "<span><strong>" + esc(p.participant) + "</strong> " + (p.randomization_number ? '<span class="muted">' + esc(p.randomization_number) + "</span>" : "") +
      (p.arm ? ' <span class="arm">' + esc(p.arm.name) + "</span>" : "") + '</span><span class="badge">' + esc(word(p.status)) + (p.unblinded ? " · code broken" : "") + "</span>";
    b.onclick = () => { clearMessage(); open("participant", p.participant); };
    list.appendChild(b);
  }
}

function kitLine(k) {
  return "<li><strong>" + esc(k.kit) + "</strong> · " + esc(k.label) + (k.kit_type_name ? " · " + esc(k.kit_type_name) : "") + " · expires " + esc(k.expiry) + "</li>";
}
// What to hand out, first and largest on the screen.
function handout(id, kits, lines) {
  return '<div class="handout" id="' + id + '" role="status"><div class="lead">Hand out ' + (kits.length === 1 ? "kit" : "kits") + "</div>" +
    kits.map((k) => '<div class="kit-big">' + esc(k.kit) + "</div>").join("") + lines + "</div>";
}

// Each visit after randomization: done, missed, due (window open), overdue, upcoming.
function timeline(p) {
  return '<ol class="timeline" id="schedule">' + p.schedule.map((v) => {
    const rec = p.visits.find((x) => x.visit === v.visit);
    const kits = rec && rec.kits.length ? " · kits " + rec.kits.map((k) => k.kit + (k.kit_type_name ? " (" + k.kit_type_name + ")" : "")).join(", ") : "";
    const detail = v.state === "done" ? "on " + v.date + kits + (rec && rec.order_reason ? " · out of order: " + rec.order_reason : "") +
        (rec && rec.deviation ? " · deviation: outside the window" + (rec.deviation === rec.order_reason ? "" : ": " + rec.deviation) : "")
      : v.state === "missed" ? "on " + v.date + ": " + v.missed_reason
      : "window " + v.window_from + " to " + v.window_to;
    return '<li class="st-' + esc(v.state) + '" data-visit="' + esc(v.visit) + '"><span class="tl-name">' + esc(v.name) + '</span><span class="state st-' + esc(v.state) + '">' + esc(word(v.state)) + '</span><span class="muted">' + esc(detail) + "</span></li>";
  }).join("") + "</ol>";
}

// The site's visits to plan, offline too: overdue, due now, window opening this week.
async function renderVisits() {
  const r = await api("GET", "/visits/due?days=7");
  const groups = [["overdue", "Overdue", "overdue"], ["today", "Due today (window open)", "due"], ["week", "This week (window opens)", "upcoming"]];
  let h = '<p class="muted">Today ' + esc(r.today) + "</p>";
  for (const [id, title, state] of groups) {
    const list = r.visits.filter((v) => v.state === state).sort((a, b) => (a.window_to < b.window_to ? -1 : 1));
    h += '<section class="due-group" aria-labelledby="due-title-' + id + '"><h2 id="due-title-' + id + '">' + title + " (" + list.length + ')</h2><div id="due-' + id + '">' +
      (list.length ? list.map((v) => '<button class="list-item card" data-due-participant="' + esc(v.participant) + '"><span><strong>' + esc(v.participant) + "</strong> " + esc(v.name) + '</span><span class="muted">' +
        esc(state === "overdue" ? "window closed " + v.window_to : state === "due" ? "until " + v.window_to : "from " + v.window_from) + "</span></button>").join("") : '<p class="muted">None.</p>') + "</div></section>";
  }
  $("due").innerHTML = h;
  for (const b of document.querySelectorAll("[data-due-participant]")) b.onclick = () => { clearMessage(); open("participant", b.dataset.dueParticipant); };
}

async function renderParticipant(number, resultHtml) {
  const p = await api("GET", "/participants/" + encodeURIComponent(number));
  const el = $("participant-detail");
  let h = '<div id="result">' + (resultHtml || "") + '</div><h1>Participant <span id="p-number">' + esc(p.participant) + '</span></h1><div class="card">';
  h += '<p>Status: <span class="badge" id="p-status">' + esc(word(p.status)) + "</span></p>";
  if (p.randomization_number) h += '<p>Randomization number: <strong id="p-randno">' + esc(p.randomization_number) + "</strong> on " + esc(p.randomized_on) + "</p>";
  if (p.unblinded) h += '<p id="p-code-broken">Code broken on ' + esc(p.unblinded_on) + (p.unblinded_by ? " by " + esc(p.unblinded_by) : "") + "</p>";
  if (p.arm) h += '<p class="arm" id="p-arm">Arm: ' + esc(p.arm.name) + " (" + esc(p.arm.id) + ")</p>";
  const factors = Object.entries(p.factors);
  if (factors.length) h += '<p class="muted" id="p-factors">' + factors.map(([k, v]) => esc(factorName(k)) + ": " + esc(v)).join(" · ") + "</p>";
  if (p.cohort) { const c = (S.study.cohorts || []).find((x) => x.id === p.cohort); h += '<p>Cohort: <span id="p-cohort">' + esc(c ? c.name + " (" + c.id + ")" : p.cohort) + "</span></p>"; }
  if (p.screen_failure_reason) h += '<p id="p-failure">Screen failure: ' + esc(p.screen_failure_reason) + "</p>";
  // Who signed the withdrawal, when and why (as for the code break).
  if (p.withdrawal_reason) h += '<p id="p-withdrawn">Withdrawn' + (p.withdrawn_on ? " on " + esc(p.withdrawn_on) + " by " + esc(p.withdrawn_by) : "") + ": " + esc(p.withdrawal_reason) + "</p>";
  if (p.transfer_requested_to) h += '<p id="p-transfer">Transfer to site ' + esc(p.transfer_requested_to) + " requested" + (p.transfer_reason ? ": " + esc(p.transfer_reason) : "") + "</p>";
  if (p.transfer_decision) h += '<p id="p-transfer-decision">' + esc(p.transfer_decision.charAt(0).toUpperCase() + p.transfer_decision.slice(1)) + "</p>";
  h += "</div>";
  // The visit that comes next is offered; another one only out of order, with a reason.
  const pending = p.schedule.filter((v) => !v.done && !v.randomization);
  const next = pending[0];
  const others = pending.filter((v) => v !== next && v.dispenses);
  h += '<div class="row" id="actions">';
  if (p.status === "screened" && can("randomize")) h += '<button class="primary" id="action-randomize">Randomize</button>';
  if (p.status === "randomized" && can("dispense") && next) {
    h += next.dispenses ? '<button class="primary" id="action-dispense">Dispense ' + esc(next.name) + "</button>"
                        : '<button class="primary" id="action-visit-done">Record ' + esc(next.name) + " as done</button>";
    h += '<button id="action-visit-missed">' + esc(next.name) + " missed…</button>";
    if (others.length) h += '<button id="action-out-of-order">Another visit (out of order)…</button>';
  }
  const handedOut = p.visits.flatMap((v) => v.kits.filter((k) => k.status === "dispensed").map((k) => [v.visit, k.kit]));
  if (p.status === "randomized" && can("dispense") && handedOut.length) h += '<button id="action-replace">Replace a damaged or lost kit…</button>';
  h += "</div>";
  if (p.schedule.length) h += "<h2>Visit schedule</h2>" + timeline(p);
  // Withdrawal and the code break: away from the routine buttons, each asks first.
  let rare = "";
  if (p.randomization_number && can("unblind"))
    rare += p.unblinded ? '<button id="action-unblind-done" disabled>Code broken on ' + esc(p.unblinded_on) + (p.unblinded_by ? " by " + esc(p.unblinded_by) : "") + "</button>"
                        : '<button class="danger" id="action-unblind">Emergency unblinding…</button>';
  if (p.status === "randomized" && can("withdraw")) rare += '<button id="action-complete">Record study completion…</button>';
  if ((p.status === "screened" || p.status === "randomized") && can("withdraw") && !p.transfer_requested_to) rare += '<button id="action-transfer">Request a transfer…</button>';
  if ((p.status === "screened" || p.status === "randomized") && can("withdraw")) rare += '<button class="danger-outline" id="action-withdraw">Withdraw from the study…</button>';
  if (rare) h += '<section class="rare" id="rare-actions" aria-label="Rarely used actions"><h2>Rarely used</h2><div class="row">' + rare + "</div></section>";
  el.innerHTML = h;
  const act = (id, fn) => { const b = $(id); if (b) b.onclick = fn; };
  const path = "/participants/" + encodeURIComponent(p.participant);
  act("action-randomize", async () => { clearMessage();
    const s = await ask("Randomize", "<p>I confirm the randomization of participant " + esc(p.participant) + ".</p>", { password: true, confirm: "Randomize" }); if (!s) return;
    try {
      const r = await api("POST", path + "/randomize", { signature_password: s.password });
      await renderParticipant(p.participant, handout("randomize-result", r.kits,
        '<p>Randomized: <strong id="randomize-number">' + esc(r.randomization_number) + "</strong> · participant " + esc(p.participant) + "</p>"));
    } catch (e) { show(e.message); }
  });
  // Dispensing asks first, showing the kits to hand out.
  const dispense = async (sv, order) => {
    let preview;
    try { preview = await api("GET", path + "/dispense-preview?visit=" + encodeURIComponent(sv.visit)); } catch (e) { show(e.message); return; }
    const outside = !sv.in_window_today;
    const s = await ask("Dispense " + sv.name, '<p>Hand out to participant ' + esc(p.participant) + ':</p><div id="confirm-kits">' +
      preview.kits.map((k) => '<div class="kit-big">' + esc(k.kit) + "</div>").join("") + "</div>" +
      (outside ? "<p><strong>" + esc(sv.name) + " is outside its window (" + esc(sv.window_from) + " to " + esc(sv.window_to) + "): dispensing is recorded as a protocol deviation.</strong></p>" : ""),
      { reason: outside && !order ? "Reason for dispensing outside the window" : "", password: outside, confirm: "Dispense " + (preview.kits.length === 1 ? "this kit" : "these kits") });
    if (!s) return;
    const body = { visit: sv.visit };
    if (order) body.order_reason = order;
    if (outside) { body.override_reason = order || s.reason; body.signature_password = s.password; }
    try {
      const r = await api("POST", path + "/dispense", body);
      await renderParticipant(p.participant, handout("dispense-result", r.kits, "<p>" + esc(sv.name) + " · participant " + esc(p.participant) + "</p>"));
    } catch (e) { show(e.message); }
  };
  act("action-dispense", () => { clearMessage(); return dispense(next); });
  act("action-out-of-order", async () => { clearMessage();
    const s = await ask("Another visit, out of order", "<p>The next visit is " + esc(next.name) + ". Dispensing another visit first is an exception; say why.</p>",
      { choices: others.map((v) => [v.visit, v.name + " (" + v.window_from + " to " + v.window_to + ")"]), choiceLabel: "Visit", reason: "Why out of order", confirm: "Continue" });
    if (!s) return;
    await dispense(others.find((v) => v.visit === s.choice), s.reason);
  });
  act("action-replace", async () => { clearMessage();
    const visitName = (id) => (p.schedule.find((v) => v.visit === id) || { name: id }).name;
    const s = await ask("Replace a kit", "<p>The kit is recorded as damaged or lost and a new one of the same kind is handed out.</p>",
      { choices: handedOut.flatMap(([v, k]) => ["damaged", "lost"].map((c) => [v + "|" + k + "|" + c, "Kit " + k + " (" + visitName(v) + ") " + c])), choiceLabel: "Kit and what happened",
        reason: "What happened", password: true, confirm: "Replace the kit" });
    if (!s) return;
    const [visit, kit, condition] = s.choice.split("|");
    try {
      const r = await api("POST", path + "/dispense", { visit, replace_kit: kit, replace_condition: condition, reason: s.reason, signature_password: s.password });
      await renderParticipant(p.participant, handout("replace-result", r.kits, "<p>Replaces kit " + esc(kit) + " (" + esc(condition) + ") · participant " + esc(p.participant) + "</p>"));
    } catch (e) { show(e.message); }
  });
  act("action-complete", async () => { clearMessage();
    const s = await ask("Record study completion", "<p>Participant " + esc(p.participant) + " completed the study: no further visits or kits.</p>", { confirm: "Record completion" });
    if (!s) return;
    try { await api("POST", path + "/complete", {}); await renderParticipant(p.participant); show("Study completion recorded.", true); } catch (e) { show(e.message); }
  });
  act("action-transfer", async () => { clearMessage();
    const s = await ask("Request a transfer", "<p>The central team moves participant " + esc(p.participant) + " to the other site once the request reaches the hub.</p>", { text: "Site to transfer to (site number)", reason: "Reason", confirm: "Request the transfer" });
    if (!s) return;
    try { await api("POST", path + "/transfer", { to_site: s.text, reason: s.reason }); await renderParticipant(p.participant); show("Transfer to site " + s.text + " requested.", true); } catch (e) { show(e.message); }
  });
  act("action-visit-done", async () => { clearMessage();
    const s = await ask("Record " + next.name + " as done", "<p>" + esc(next.name) + " of participant " + esc(p.participant) + " took place today. No kits are dispensed at this visit.</p>", { confirm: "Record as done" });
    if (!s) return;
    try { await api("POST", path + "/visits/" + encodeURIComponent(next.visit), { outcome: "done" }); await renderParticipant(p.participant); show(next.name + " recorded as done.", true); }
    catch (e) { show(e.message); }
  });
  act("action-visit-missed", async () => { clearMessage();
    const s = await ask(next.name + " missed", "<p>Record that " + esc(next.name) + " of participant " + esc(p.participant) + " did not take place." + (next.dispenses ? " Its kits are then not dispensed." : "") + "</p>", { reason: "Why it was missed", confirm: "Record as missed", danger: true });
    if (!s) return;
    try { await api("POST", path + "/visits/" + encodeURIComponent(next.visit), { outcome: "missed", reason: s.reason }); await renderParticipant(p.participant); show(next.name + " recorded as missed.", true); }
    catch (e) { show(e.message); }
  });
  act("action-unblind", async () => { clearMessage();
    const s = await ask("Emergency unblinding", "<p>I confirm the emergency unblinding of participant " + esc(p.participant) + ". This is recorded and reported to the central team.</p>", { reason: "Medical reason", password: true, confirm: "Break the code", danger: true });
    if (!s) return;
    try {
      const r = await api("POST", path + "/unblind", { reason: s.reason, signature_password: s.password });
      await renderParticipant(p.participant, '<div class="arm" id="unblind-result" role="status">Code broken: ' + esc(r.arm.name) + " (" + esc(r.arm.id) + ")</div>");
    } catch (e) { show(e.message); }
  });
  act("action-withdraw", async () => { clearMessage();
    const s = await ask("Withdraw from the study", "<p>I confirm the withdrawal of participant " + esc(p.participant) + " from the study. This cannot be undone here.</p>", { reason: "Reason", password: true, confirm: "Withdraw", danger: true }); if (!s) return;
    try { await api("POST", path + "/withdraw", { reason: s.reason, signature_password: s.password }); await renderParticipant(p.participant); show("Participant withdrawn.", true); }
    catch (e) { show(e.message); }
  });
}

// Screening: checked here first, with each message next to its field and
// gone once the field is fixed; a participant number is used only after
// the person confirms.
function renderScreen() {
  const f = $("screen-form"); const st = S.study;
  let h = "";
  const field = (id, labelText, control) => '<label for="' + id + '">' + esc(labelText) + "</label>" + control + '<p class="field-error hidden" id="err-' + id + '"></p>';
  if ((st.cohorts || []).length) h += field("cohort", "Cohort", '<select id="cohort" name="cohort" aria-describedby="err-cohort"><option value="">Choose…</option>' + st.cohorts.map((c) => '<option value="' + esc(c.id) + '">' + esc(c.name + " (" + c.id + ")") + "</option>").join("") + "</select>");
  for (const fac of st.factors)
    h += field("factor-" + fac.id, fac.name + (fac.required ? "" : " (optional)"), '<select id="factor-' + esc(fac.id) + '" aria-describedby="err-factor-' + esc(fac.id) + '"><option value="">Choose…</option>' + fac.levels.map((l) => '<option value="' + esc(l) + '">' + esc(l) + "</option>").join("") + "</select>");
  h += "<h2>Eligibility</h2>";
  st.eligibility.forEach((q, i) => { h += '<fieldset><legend id="q-' + i + '">' + esc(q) + '</legend><div class="yn" id="elig-' + i + '" data-answer="" aria-describedby="err-elig-' + i + '"><button type="button" data-v="yes" aria-pressed="false">Yes</button><button type="button" data-v="no" aria-pressed="false">No</button></div><p class="field-error hidden" id="err-elig-' + i + '"></p></fieldset>'; });
  h += '<div id="failure-box" class="hidden">' + field("screen-failure", "Screen failure reason", '<textarea id="screen-failure" rows="2" aria-describedby="err-screen-failure"></textarea>') + "</div>";
  h += '<p><button class="primary" id="screen-submit" type="submit">Screen participant…</button></p>';
  f.innerHTML = h;
  const setError = (id, text) => {
    const e = $("err-" + id); e.textContent = text || ""; e.classList.toggle("hidden", !text);
    if ($(id)) $(id).setAttribute("aria-invalid", text ? "true" : "false");
  };
  const anyNo = () => st.eligibility.some((q, i) => $("elig-" + i).dataset.answer === "no");
  for (const yn of f.querySelectorAll(".yn")) for (const b of yn.querySelectorAll("button")) b.onclick = () => {
    yn.dataset.answer = b.dataset.v; for (const o of yn.querySelectorAll("button")) o.setAttribute("aria-pressed", o === b ? "true" : "false");
    setError(yn.id, "");
    $("failure-box").classList.toggle("hidden", !anyNo());
    if (!anyNo()) setError("screen-failure", "");
  };
  for (const c of f.querySelectorAll("select, textarea")) c.addEventListener(c.tagName === "SELECT" ? "change" : "input", () => { if (c.value.trim()) setError(c.id, ""); });
  f.onsubmit = async (ev) => {
    ev.preventDefault(); clearMessage();
    const failing = anyNo();
    // The reason counts only when an answer is no: a reason typed while every
    // answer is yes never turns the participant into a screen failure.
    const reason = failing ? $("screen-failure").value.trim() : "";
    let first = null; const bad = (id, text) => { setError(id, text); first = first || id; };
    if ((st.cohorts || []).length && !$("cohort").value) bad("cohort", "Choose the participant's cohort.");
    if (!failing) for (const fac of st.factors) if (fac.required && !$("factor-" + fac.id).value) bad("factor-" + fac.id, "Choose " + fac.name.toLowerCase() + ": randomization needs it.");
    st.eligibility.forEach((q, i) => { if (!$("elig-" + i).dataset.answer) bad("elig-" + i, "Answer yes or no."); });
    if (failing && !reason) bad("screen-failure", "An answer is no: give the reason for the screen failure.");
    if (first) { const c = $(first); (c.querySelector("button") || c).focus(); show("Some answers are missing; see the messages below each field."); return; }
    const factors = {}; for (const fac of st.factors) { const v = $("factor-" + fac.id).value; if (v) factors[fac.id] = v; }
    const eligibility = st.eligibility.map((q, i) => $("elig-" + i).dataset.answer);
    const summary = "<ul>" + st.factors.filter((fac) => factors[fac.id]).map((fac) => "<li>" + esc(fac.name) + ": " + esc(factors[fac.id]) + "</li>").join("") +
      "<li>Eligibility: " + (failing ? "not eligible (" + esc(reason) + ")" : "every answer yes") + "</li></ul>";
    const ok = await ask(failing ? "Record a screen failure?" : "Screen this participant?", summary +
      "<p><strong>This uses the next participant number of this site; it cannot be given back.</strong></p>",
      { confirm: failing ? "Record the screen failure" : "Screen and use a number" });
    if (!ok) return;
    try {
      const body = { factors, eligibility };
      if (reason) body.screen_failure_reason = reason;
      if ((st.cohorts || []).length && $("cohort").value) body.cohort = $("cohort").value;
      const r = await api("POST", "/participants", body);
      const text = (failing ? "Screen failure recorded for participant " : "Screened participant ") + r.participant.participant + ".";
      await open("participant", r.participant.participant);
      show(text, true);
    } catch (e) { show(e.message); }
  };
}

// Shipment receipt: a scanner types like a keyboard (the number, then Enter);
// each scanned kit shows as received at once; the rest can be received in
// one action; received shipments stay listed below.
// Two draws may overlap (the tab opened, then an action's redraw): only the last asked is drawn.
let inventoryDraws = 0;
async function renderInventory() {
  const draw = ++inventoryDraws;
  const [inv, sh] = await Promise.all([can("view_inventory") ? api("GET", "/inventory") : null, api("GET", "/shipments")]);
  if (draw !== inventoryDraws) return;
  let h = "";
  for (const s of sh.shipments.filter((s) => !s.received)) {
    const expected = s.kits.filter((k) => k.status === "expected");
    // Kits another node of the site handed to this one (a tablet's, or back to the
// site node) arrive as a "handover" shipment.
    const title = s.kind === "handover" ? "Kits handed over to this node (" + esc(s.shipment) + ") to receive" : "Shipment " + esc(s.shipment) + " to receive";
    h += '<div class="card" data-shipment="' + esc(s.shipment) + '" data-kind="' + esc(s.kind) + '"><h2>' + title + '</h2><p class="muted" aria-live="polite"><span data-checked>0</span> of ' + expected.length + " kits checked</p>" +
      '<label for="scan-' + esc(s.shipment) + '">Scan or type a kit number</label><input id="scan-' + esc(s.shipment) + '" data-scan autocomplete="off" autocapitalize="none">' +
      '<p class="field-error hidden" data-scan-error role="alert"></p><table><tr><th scope="col">Kit</th><th scope="col">Label</th><th scope="col">Condition</th></tr>';
    for (const k of expected) h += '<tr data-row="' + esc(k.kit) + '"><td>' + esc(k.kit) + "</td><td>" + esc(k.label) + '</td><td><select aria-label="Condition of kit ' + esc(k.kit) + '" data-kit="' + esc(k.kit) + '"><option value="">Not checked</option><option value="received">Received</option><option value="damaged">Damaged</option><option value="missing">Missing</option></select></td></tr>';
    h += '</table><div class="row receipt-actions"><button data-receive-all>Receive all remaining</button><span class="spacer"></span><button class="primary" data-receive>Record receipt</button></div></div>';
  }
  if (!can("receive_shipment")) h = "";
  // Received shipments, and the return shipments this node sent (in transit to
  // their depot as far as the node knows: the depot's receipt is recorded at the hub).
  const history = sh.shipments.filter((s) => s.received);
  if (history.length && (can("receive_shipment") || can("return_kits"))) h += '<h2>Shipment history</h2><div class="table-wrap"><table id="shipment-history"><tr><th scope="col">Shipment</th><th scope="col">Sent on</th><th scope="col">Kits</th></tr>' +
    history.map((s) => '<tr data-history="' + esc(s.shipment) + '"><td>' + esc(s.shipment) + "</td><td>" + esc(s.shipped_on) + "</td><td>" + (s.kind === "return"
      ? returnState(s) + (s.courier ? " · " + esc(s.courier) : "") + (s.tracking ? " · tracking " + esc(s.tracking) : "")
      : Object.entries(s.kits_by_status).map(([st, n]) => esc(word(st)) + " " + n).join(" · ")) + "</td></tr>").join("") + "</table></div>";
  $("shipments").innerHTML = h;
  for (const card of document.querySelectorAll("[data-shipment]")) {
    const selects = [...card.querySelectorAll("select[data-kit]")];
    const count = () => { card.querySelector("[data-checked]").textContent = selects.filter((x) => x.value).length; };
    for (const sel of selects) sel.onchange = () => { sel.closest("tr").classList.toggle("scanned", !!sel.value); count(); };
    const scan = card.querySelector("[data-scan]"), scanError = card.querySelector("[data-scan-error]");
    scan.onkeydown = (ev) => {
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      const number = scan.value.trim(); if (!number) return;
      const sel = selects.find((x) => x.dataset.kit === number);
      scanError.classList.toggle("hidden", !!sel);
      if (!sel) { scanError.textContent = "Kit " + number + " is not expected in shipment " + card.dataset.shipment + "; check the number on the label."; scan.select(); return; }
      if (!sel.value) sel.value = "received";
      sel.onchange(); scan.value = ""; scan.focus();
    };
    const record = async () => {
      const kits = selects.filter((x) => x.value).map((x) => ({ kit: x.dataset.kit, condition: x.value }));
      if (!kits.length) { show("Scan the kits of the shipment, or mark their condition, first."); return; }
      const body = { kits };
      if (kits.some((k) => k.condition === "damaged")) { const s = await ask("Report damaged kits", "<p>Damaged kits are recorded with your signature.</p>", { password: true }); if (!s) return; body.signature_password = s.password; }
      try {
        await api("POST", "/shipments/" + encodeURIComponent(card.dataset.shipment) + "/receive", body);
        const n = (c) => kits.filter((k) => k.condition === c).length;
        await renderInventory();
        show("Receipt of shipment " + card.dataset.shipment + " recorded: " + n("received") + " received, " + n("damaged") + " damaged, " + n("missing") + " missing.", true);
      } catch (e) { show(e.message); }
    };
    card.querySelector("[data-receive]").onclick = record;
    card.querySelector("[data-receive-all]").onclick = () => { for (const x of selects) if (!x.value) { x.value = "received"; x.closest("tr").classList.add("scanned"); } count(); return record(); };
  }
  if (!inv) { $("inventory").innerHTML = ""; return; }
  renderKits(inv);
}

const kitsText = (kits) => (kits.length === 1 ? "Kit " : "Kits ") + kits.map(esc).join(", ");
const plural = (n) => n + (n === 1 ? " kit" : " kits");
// A return shipment as far as the node knows: its kits still in transit, and
// what the depot reported of the others (GET /api/v1/shipments at_depot).
function returnState(s) {
  const parts = [];
  if (s.kits.length) parts.push("In transit to depot " + esc(depotName(s.depot)) + " · " + plural(s.kits.length));
  const reported = Object.entries(s.at_depot || {}).map(([st, n]) => esc(word(st)) + " " + n);
  if (reported.length) parts.push("At depot " + esc(depotName(s.depot)) + ": " + reported.join(" · "));
  return parts.join(" · ");
}
function depotName(id) { const d = ((S.study && S.study.depots) || []).find((x) => x.id === id); return d ? d.name + " (" + d.id + ")" : id; }
// What may go back to a depot (the node checks it again): kits returned by
// participants, rejected by the hub, damaged, or unused and expired.
const returnable = (inv) => inv.kits.filter((k) => ["returned", "rejected", "damaged"].includes(k.status) || (k.status === "available" && k.expiry < inv.today));
const returnWhy = (k) => (k.status === "available" ? "Expired on " + k.expiry : word(k.status) + (k.participant ? " · " + k.participant : "") + (k.units_returned != null ? " · " + k.units_returned + " units back" : ""));

// A return shipment to a depot: the kits chosen from the list or scanned (a
// scanner types like a keyboard), the depot, courier and tracking number,
// signed with the password; then it shows in the shipment history.
async function renderReturn() {
  const inv = await api("GET", "/inventory");
  const kits = returnable(inv), unblinded = inv.kits.some((k) => k.kit_type);
  const depots = (S.study && S.study.depots) || [];
  let h = '<p><button id="return-back">Back to the inventory</button></p>';
  h += '<p class="muted">Kits returned by participants, rejected by the hub, damaged, or unused and expired go back to a depot. Today ' + esc(inv.today) + ".</p>";
  if (!kits.length) { $("return-detail").innerHTML = h + '<p id="return-none" class="card">No kit of this site may be sent back now.</p>'; $("return-back").onclick = () => open("inventory"); return; }
  h += '<div class="card"><label for="return-scan">Scan or type a kit number</label><input id="return-scan" autocomplete="off" autocapitalize="none" aria-describedby="return-scan-error">' +
    '<p class="field-error hidden" id="return-scan-error" role="alert"></p><p class="muted" aria-live="polite"><span id="return-count">0</span> of ' + kits.length + " kits chosen</p>" +
    '<div class="table-wrap"><table id="return-table"><tr><th scope="col"><span class="sr-only">Choose</span></th><th scope="col">Kit</th>' + (unblinded ? '<th scope="col">Kit type</th><th scope="col">Lot</th>' : '<th scope="col">Label</th>') + '<th scope="col">Why it goes back</th></tr>' +
    kits.map((k) => '<tr data-return-row="' + esc(k.kit) + '"><td><input type="checkbox" class="select-kit" aria-label="Send back kit ' + esc(k.kit) + '" data-return-select="' + esc(k.kit) + '"></td><td>' + esc(k.kit) + "</td>" +
      (unblinded ? "<td>" + esc(k.kit_type_name) + "</td><td>" + esc(k.lot) + "</td>" : "<td>" + esc(k.label) + "</td>") + "<td>" + esc(returnWhy(k)) + "</td></tr>").join("") + "</table></div></div>";
  h += '<div class="card"><label for="return-depot">Depot</label><select id="return-depot">' + depots.map((d) => '<option value="' + esc(d.id) + '">' + esc(d.name + " (" + d.id + ")") + "</option>").join("") + "</select>" +
    '<div class="row"><div class="reading"><label for="return-courier">Courier (optional)</label><input id="return-courier" autocomplete="off"></div>' +
    '<div class="reading"><label for="return-tracking">Tracking number (optional)</label><input id="return-tracking" autocomplete="off" autocapitalize="none"></div></div>' +
    '<label for="return-reason">Note for the depot (optional)</label><input id="return-reason" autocomplete="off">' +
    '<p class="receipt-actions"><button class="primary" id="return-send" disabled>Send 0 kits back…</button></p></div>';
  $("return-detail").innerHTML = h;
  $("return-back").onclick = () => { clearMessage(); open("inventory"); };
  const boxes = [...document.querySelectorAll("[data-return-select]")];
  const chosen = () => boxes.filter((b) => b.checked).map((b) => b.dataset.returnSelect);
  const update = () => {
    for (const b of boxes) b.closest("tr").classList.toggle("scanned", b.checked);
    const n = chosen().length;
    $("return-count").textContent = n; $("return-send").disabled = !n; $("return-send").textContent = "Send " + plural(n) + " back…";
  };
  for (const b of boxes) b.onchange = update;
  const scan = $("return-scan"), scanError = $("return-scan-error");
  scan.onkeydown = (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const number = scan.value.trim(); if (!number) return;
    const box = boxes.find((b) => b.dataset.returnSelect === number);
    if (!box) {
      const k = inv.kits.find((x) => x.kit === number);
      scanError.textContent = k ? "Kit " + number + " is " + word(k.status).toLowerCase() + (k.status === "available" ? " and not expired" : "") + ": only returned, rejected, damaged or expired kits go back to a depot."
                                : "Kit " + number + " is not held at this site; check the number on the label.";
      scanError.classList.remove("hidden"); scan.setAttribute("aria-invalid", "true"); scan.select(); return;
    }
    scanError.classList.add("hidden"); scan.setAttribute("aria-invalid", "false");
    box.checked = true; update(); scan.value = ""; scan.focus();
  };
  scan.oninput = () => { scanError.classList.add("hidden"); scan.setAttribute("aria-invalid", "false"); };
  $("return-send").onclick = async () => {
    clearMessage();
    const list = chosen(), depot = $("return-depot").value;
    const courier = $("return-courier").value.trim(), tracking = $("return-tracking").value.trim(), reason = $("return-reason").value.trim();
    if (!list.length) { show("Choose the kits to send back first."); return; }
    if (!depot) { show("Choose the depot the kits go to."); return; }
    const s = await ask("Send kits back to " + depotName(depot), "<p>" + kitsText(list) + " leave this site's stock at once, in transit to depot " + esc(depotName(depot)) +
      (courier ? " with " + esc(courier) : "") + (tracking ? " (tracking " + esc(tracking) + ")" : "") + ". They are never dispensed here again.</p>", { password: true, confirm: "Sign and send " + plural(list.length) });
    if (!s) return;
    if (!s.password) { show("Enter your password: it signs the return."); return; }
    try {
      const r = await api("POST", "/shipments/returns", { depot, kits: list, courier, tracking, reason, signature_password: s.password });
      await open("inventory");
      show("Return shipment " + r.shipment + " sent: " + plural(list.length) + " in transit to depot " + depotName(depot) + ".", true);
    } catch (e) { show(e.message); }
  };
}

// The site's kits: totals by status (and by kit type for unblinded roles),
// filters, and per kit or in bulk what the role may do.
function renderKits(inv) {
  const unblinded = inv.kits.some((k) => k.kit_type);
  const statuses = Object.keys(inv.by_status);
  let h = '<h2>Kits on site</h2><div class="row" id="totals">' + statuses.map((s) => '<span class="badge">' + esc(word(s)) + ": " + inv.by_status[s] + "</span>").join("") + "</div>";
  if (unblinded) {
    const types = {};
    for (const k of inv.kits) { const t = (types[k.kit_type_name] = types[k.kit_type_name] || {}); t[k.status] = (t[k.status] || 0) + 1; }
    h += '<table id="totals-by-type"><tr><th scope="col">Kit type</th>' + statuses.map((s) => '<th scope="col">' + esc(word(s)) + "</th>").join("") + "</tr>" +
      Object.entries(types).map(([t, c]) => "<tr><td>" + esc(t) + "</td>" + statuses.map((s) => "<td>" + (c[s] || 0) + "</td>").join("") + "</tr>").join("") + "</table>";
  }
  if (can("return_kits")) h += '<div class="row" id="return-actions"><button id="return-open">Send kits back to a depot (' + returnable(inv).length + ")…</button></div>";
  h += '<div class="row" id="filters"><div><label for="filter-status">Status</label><select id="filter-status"><option value="">All</option>' + statuses.map((s) => '<option value="' + esc(s) + '">' + esc(word(s)) + "</option>").join("") + "</select></div>" +
    '<div><label for="filter-kit">Kit number</label><input id="filter-kit" autocomplete="off"></div><div><label for="filter-expiry">Expiring before</label><input id="filter-expiry" type="date"></div></div>';
  // Kits in stock selected in the table: an excursion, a storage location, a nurse's tablet.
  const locations = [...new Set(inv.kits.filter((k) => k.location && k.status === "available").map((k) => k.location))].sort();
  const bulkActions = [["report_excursion", "quarantine-selected", "Excursion: quarantine selected"], ["receive_shipment", "store-selected", "Store selected"], ["dispense", "handover-selected", "Hand over selected"]].filter(([p]) => can(p));
  const bulk = bulkActions.length > 0;
  if (bulk) h += '<div class="row" id="bulk-actions">' + bulkActions.map(([p, id, text]) => '<button id="' + id + '" data-label="' + esc(text) + '" disabled>' + esc(text) + " (0)…</button>").join("") +
    (can("report_excursion") && locations.length ? '<button id="excursion-location">Excursion at a storage location…</button>' : "") + "</div>";
  h += '<p class="muted">Today ' + esc(inv.today) + " · kits within " + inv.do_not_dispense_days + ' days of expiry are not dispensed</p><div class="table-wrap"><table id="inventory-table"><tr>' + (bulk ? '<th scope="col"><span class="sr-only">Select</span></th>' : "") + '<th scope="col">Kit</th>' + (unblinded ? '<th scope="col">Kit type</th><th scope="col">Arm</th><th scope="col">Lot</th>' : '<th scope="col">Label</th>') + '<th scope="col">Status</th><th scope="col">Expiry</th><th scope="col"><span class="sr-only">Action</span></th></tr>';
  for (const k of inv.kits) {
    const actions = (k.status === "dispensed" && can("return_kits") ? '<button data-return="' + esc(k.kit) + '">Return…</button>' : "") +
      (["returned", "damaged", "rejected", "available"].includes(k.status) && can("destroy_kits") ? '<button data-destroy="' + esc(k.kit) + '">Destroy…</button>' : "");
    h += '<tr data-kit-row="' + esc(k.kit) + '" data-status="' + esc(k.status) + '" data-expiry="' + esc(k.expiry) + '">' +
      (bulk ? "<td>" + (k.status === "available" ? '<input type="checkbox" class="select-kit" aria-label="Select kit ' + esc(k.kit) + '" data-select="' + esc(k.kit) + '">' : "") + "</td>" : "") +
      "<td>" + esc(k.kit) + "</td>" + (unblinded ? "<td>" + esc(k.kit_type_name) + '</td><td class="arm-cell">' + esc(k.arm ? k.arm.name : "") + "</td><td>" + esc(k.lot) + "</td>" : "<td>" + esc(k.label) + "</td>") +
      "<td>" + esc(k.status === "shipped" && k.note ? k.note.replace(/^./, (c) => c.toUpperCase()) : word(k.status)) + (k.participant ? " · " + esc(k.participant) : "") + (k.units_returned != null ? " · " + k.units_returned + " units back" : "") + (k.location ? " · " + esc(k.location) : "") + "</td><td>" + esc(k.expiry) + '</td><td><div class="row kit-actions">' + actions + "</div></td></tr>";
  }
  // Kits whose lot the hub relabelled: the new expiry to print, confirmed kit by kit.
  const relabel = can("receive_shipment") ? inv.kits.filter((k) => k.relabel_expiry) : [];
  const relabelCard = relabel.length ? '<div class="card" id="relabel"><h2>Kits to relabel (' + relabel.length + ")</h2><p>The hub changed the expiry of these kits' lot. Print the new expiry on each kit's label, then confirm it.</p>" +
    '<div class="table-wrap"><table><tr><th scope="col">Kit</th><th scope="col">Label</th><th scope="col">New expiry to print</th><th scope="col"><span class="sr-only">Action</span></th></tr>' +
    relabel.map((k) => '<tr data-relabel-row="' + esc(k.kit) + '"><td>' + esc(k.kit) + "</td><td>" + esc(k.label) + "</td><td><strong>" + esc(k.relabel_expiry) + '</strong></td><td><button data-relabel="' + esc(k.kit) + '" data-expiry="' + esc(k.relabel_expiry) + '">Relabelled…</button></td></tr>').join("") + "</table></div></div>" : "";
  $("inventory").innerHTML = relabelCard + h + "</table></div>";
  if ($("return-open")) $("return-open").onclick = () => { clearMessage(); open("return"); };
  for (const b of document.querySelectorAll("[data-relabel]")) b.onclick = async () => {
    const kit = b.dataset.relabel, expiry = b.dataset.expiry;
    const s = await ask("Kit " + kit + " relabelled", "<p>I confirm that kit " + esc(kit) + " now carries the new expiry <strong>" + esc(expiry) + "</strong> on its label.</p>", { confirm: "Confirm relabelled" }); if (!s) return;
    try { await api("POST", "/kits/" + encodeURIComponent(kit) + "/relabelled", {}); await renderInventory(); show("Kit " + kit + " relabelled: new expiry " + expiry + ".", true); } catch (e) { show(e.message); }
  };
  const filter = () => {
    const st = $("filter-status").value, kit = $("filter-kit").value.trim(), before = $("filter-expiry").value;
    for (const r of document.querySelectorAll("[data-kit-row]"))
      r.classList.toggle("hidden", (st && r.dataset.status !== st) || (kit && !r.dataset.kitRow.includes(kit)) || (before && !(r.dataset.expiry < before)));
  };
  for (const id of ["filter-status", "filter-kit", "filter-expiry"]) $(id).addEventListener("input", filter);
  const selected = () => [...document.querySelectorAll("[data-select]:checked")].map((c) => c.dataset.select);
  for (const c of document.querySelectorAll("[data-select]")) c.onchange = () => {
    const n = selected().length;
    for (const [, id] of bulkActions) { $(id).disabled = !n; $(id).textContent = $(id).dataset.label + " (" + n + ")…"; }
  };
  // One report quarantines every kit at once, offline: one kit.excursion event.
  const excursion = async (body, meaning) => {
    try { const r = await api("POST", "/excursions", body); await renderInventory(); show(plural(r.quarantined.length) + " quarantined: " + r.quarantined.join(", ") + ". They stay quarantined until the hub releases or rejects them.", true); }
    catch (e) { show(e.message); }
  };
  if ($("quarantine-selected")) $("quarantine-selected").onclick = async () => {
    const kits = selected();
    const r = await askExcursion("<p>" + kitsText(kits) + " are quarantined at once and stay quarantined until the hub releases or rejects them.</p>", null, kits.length); if (!r) return;
    await excursion({ kits, minimum_celsius: r.minimum_celsius, maximum_celsius: r.maximum_celsius, duration_minutes: r.duration_minutes, reason: r.reason });
  };
  if ($("excursion-location")) $("excursion-location").onclick = async () => {
    const r = await askExcursion("<p>Every kit in stock at the location is quarantined at once and stays quarantined until the hub releases or rejects it.</p>", locations); if (!r) return;
    await excursion({ location: r.location, minimum_celsius: r.minimum_celsius, maximum_celsius: r.maximum_celsius, duration_minutes: r.duration_minutes, reason: r.reason });
  };
  if ($("store-selected")) $("store-selected").onclick = async () => {
    const kits = selected();
    const s = await ask("Store kits", "<p>" + kitsText(kits) + " are put in a storage location (a fridge, a cupboard), so an excursion there finds them.</p>", { text: "Storage location (for example FRIDGE-1)", confirm: "Store " + plural(kits.length) }); if (!s) return;
    try { await api("POST", "/kits/location", { kits, location: s.text }); await renderInventory(); show(plural(kits.length) + " stored in " + s.text + ".", true); } catch (e) { show(e.message); }
  };
  // Custody to a nurse's tablet (or back to the site node): the kits are in transit at once and never dispensed here.
  // The receiving node is chosen from the site's nodes the hub listed at the last
  // sync; typed (its node id) only while there is no list (offline before the first sync).
  if ($("handover-selected")) $("handover-selected").onclick = async () => {
    const kits = selected();
    let nodes = [];
    try { nodes = (await api("GET", "/status")).site_nodes || []; } catch (e) { show(e.message); return; }
    const kind = (k) => (k === "nurse" ? "a nurse's tablet" : k === "site" ? "the site node" : k);
    const to = nodes.length
      ? { choices: nodes.map((n) => [n.node_id, n.node_id + " (" + kind(n.kind) + ")"]), choiceLabel: "Node that takes the kits" }
      : { text: "Node that takes the kits: a nurse's tablet, or the site node (its node id, for example 101-N2; this node has no list of the site's nodes before its first sync)" };
    const s = await ask("Hand over kits to another node of the site", "<p>" + kitsText(kits) + " leave this node's stock at once: in transit, never dispensed here. The node that takes them receives them after the hub moves their custody at the next sync.</p>",
      { ...to, reason: "What for (for example home visits this week)", confirm: "Hand over " + plural(kits.length) }); if (!s) return;
    const toNode = nodes.length ? s.choice : s.text;
    if (!toNode) { show("Name the node that takes the kits."); return; }
    try { await api("POST", "/kits/handover", { to_node: toNode, kits, reason: s.reason }); await renderInventory(); show(plural(kits.length) + " handed over to " + toNode + ": in transit until the hub moves their custody.", true); } catch (e) { show(e.message); }
  };
  for (const b of document.querySelectorAll("[data-return]")) b.onclick = async () => {
    const s = await ask("Return kit " + b.dataset.return, "<p>The participant brought kit " + esc(b.dataset.return) + " back.</p>", { text: "Units returned (count what is left)", textType: "number", confirm: "Record the return" }); if (!s) return;
    if (!/^\d+$/.test(s.text)) { show("Units returned: give a whole number, 0 if nothing is left."); return; }
    try { await api("POST", "/kits/" + encodeURIComponent(b.dataset.return) + "/return", { units_returned: Number(s.text) }); await renderInventory(); show("Kit " + b.dataset.return + " returned.", true); } catch (e) { show(e.message); }
  };
  for (const b of document.querySelectorAll("[data-destroy]")) b.onclick = async () => {
    const s = await ask("Destroy kit " + b.dataset.destroy, "<p>Kit " + esc(b.dataset.destroy) + " is destroyed at the site, before a witness who signs too. This cannot be undone.</p>", { reason: "Reason and method", password: true, witness: true, confirm: "Destroy", danger: true }); if (!s) return;
    try { await api("POST", "/kits/" + encodeURIComponent(b.dataset.destroy) + "/destroy", { reason: s.reason, signature_password: s.password, witness: s.witness, witness_password: s.witnessPassword }); await renderInventory(); show("Kit " + b.dataset.destroy + " destroyed.", true); } catch (e) { show(e.message); }
  };
}

async function renderStatus() {
  const st = await api("GET", "/status"); let h = "<p>Node <strong>" + esc(st.node_id) + "</strong>, site " + esc(st.site_id) + ", study " + esc(st.study_id) + "</p>";
  h += "<p>" + (st.sync_state === "refused" ? '<strong id="sync-refused">' + esc(st.sync_error) + "</strong>" : st.online ? "Online" : "Offline: everything is kept and sent at the next sync") + ". Last sync " + esc(ago(st.last_sync_ms)) + ". Events waiting: " + st.pending_events + ".</p>";
  h += '<h2>Randomization slots left</h2><ul id="slots">' + st.slots_left.map((s) => "<li>" + esc(stratumLabel(s.stratum)) + ": " + s.free + "</li>").join("") + "</ul>";
  h += "<p>Participant numbers left: " + st.numbers_left + '</p><h2>Kits by status</h2><ul id="kit-counts">' + Object.entries(st.kits).map(([k, v]) => "<li>" + esc(word(k)) + ": " + v + "</li>").join("") + "</ul>";
  h += '<div class="row"><button id="sync-now">Sync now</button><span id="sync-result" role="status"></span></div>';
  $("status-detail").innerHTML = h;
  $("sync-now").onclick = syncNow;
}

// Sync now: asks the node for a round, then watches the status until that round is over (at most 30 s).
async function syncNow() {
  const b = $("sync-now"), out = $("sync-result"); b.disabled = true; out.textContent = "Syncing…"; delete out.dataset.state;
  try {
    const asked = await api("POST", "/sync");
    let st = null;
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      st = await api("GET", "/status");
      if (st.sync_rounds > asked.rounds) break;
      st = null;
    }
    await renderStatus();
    const r = $("sync-result");
    if (!st) r.textContent = "The sync is still running (a slow link); its result will show here and in the header.";
    else if (st.sync_state === "online" && !st.sync_error) r.textContent = "Synced" + (st.pending_events ? "; " + st.pending_events + " events still wait for the hub." : ": nothing waits for the hub.");
    else r.textContent = (st.sync_state === "refused" ? "The hub refused the sync: " : "Not synced: ") + (st.sync_error || "the hub could not be reached; everything is kept and sent at the next sync");
    r.dataset.state = st ? st.sync_state : "running";
  } catch (e) { show(e.message); b.disabled = false; out.textContent = ""; }
}

async function start() {
  try { S.study = await api("GET", "/study"); } catch (e) { show(e.message); return; }
  $("nav").classList.remove("hidden"); $("logout").classList.remove("hidden");
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("hidden", !TABS[b.dataset.view]());
  $("who").textContent = S.me.user + " · " + S.me.role + (S.me.blinded ? "" : " (unblinded)");
  await poll();
  await open(Object.keys(TABS).find((t) => TABS[t]()));
}
setInterval(poll, 3000);
poll();
if (S.token) start(); else view("login");
