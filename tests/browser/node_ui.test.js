// The node's web UI in Debian's headless Chromium, driven by Playwright, at a
// 1280x900 laptop and an 800x1200 portrait tablet. Each viewport gets its own
// real irt-node serving a data directory prepared by irt-test-node-fixture (no
// hub: the node is offline and must say so, before login too). Per flow:
// - tabs only for what each role may do;
// - screening: messages for people next to their fields that clear when fixed;
//   a failure reason typed and then every answer set to yes screens the
//   participant (no screen failure); a participant number is used only after
//   a confirmation; the answer lost once (the retry with the same
//   Idempotency-Key creates one participant);
// - randomization: the kit first and largest; withdrawal and the code break
//   spaced from routine actions and confirmed;
// - code break: the investigator sees the arm again from the record and the
//   button reads "Code broken on DATE by NAME"; the coordinator still sees no arm;
// - stratum labels and status words as people read them;
// - blinded roles (coordinator, nurse, investigator before the break) never
//   have an arm or a treatment in the page;
// - withdrawal signed: a wrong password refused with a clear message, nothing recorded;
// - excursion: for selected kits and for every kit of a storage location, the
//   logger's readings checked with messages for people, the kits quarantined at once;
// - relabel: the kits the hub asked to relabel with the new expiry, confirmed kit by kit;
// - return shipment to a depot: the blinded coordinator's list of kits that may go
//   back holds no kit type; the pharmacist scans one kit, ticks another, signs, and
//   sees RET-... in the shipment history as in transit to the depot, the two kits
//   no longer in the list;
// - handover to a nurse's tablet: the kit in transit at once and refused for another
//   handover; the portrait tablet receives its pending kits as a handover shipment
//   (one node per viewport: the other node of the site is not started);
// - the node stopped: the page says so and shows no live "last sync";
// - with a short idle time (irt-node serve --session-idle): the status poll
//   keeps no session alive and an idle tablet logs out and clears the screen.
// Every screen with a screenshot passes axe-core with no critical violation.
// The page's files come with a Content-Security-Policy without 'unsafe-inline'
// or 'unsafe-eval', and the browser reports no violation of it (neither a
// securitypolicyviolation event nor a "Refused to ..." console message) on any screen.
// Screenshots and axe results (accessibility.json) go to OUT_DIR/<width>x<height>/.
// Usage: node node_ui.test.js IRT_NODE_BIN FIXTURE_BIN OUT_DIR
"use strict";
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");
const { freePort, sleep } = require("./processes.js");
// axe-core, the accessibility checker, from tests/browser's package-lock.json.
const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [nodeBin, fixtureBin, outDir] = process.argv.slice(2);
if (!nodeBin || !fixtureBin || !outDir) {
  console.error("usage: node node_ui.test.js IRT_NODE_BIN FIXTURE_BIN OUT_DIR");
  process.exit(2);
}
const CHROMIUM = process.env.IRT_CHROMIUM || "/usr/bin/chromium";
const FORBIDDEN_FOR_BLINDED = ["Velcardin", "Placebo", "VLC25", "PBO"];
// The portrait tablet is a nurse's: its pending shipment is kits the site node
// handed over to it (a "handover" shipment, as the hub sends it).
const VIEWPORTS = [{ width: 1280, height: 900, pendingKind: "initial" }, { width: 800, height: 1200, pendingKind: "handover" }];
const IDLE_SECONDS = 5;

async function waitForHttp(url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try { const r = await fetch(url); if (r.ok) return; } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("irt-node did not answer at " + url);
}

// One real irt-node on `data`, stopped with SIGTERM.
class Node {
  constructor(data, passphrase, port, logPath, extra) {
    this.base = "http://127.0.0.1:" + port + "/";
    const log = fs.openSync(logPath, "a");
    this.proc = spawn(nodeBin, ["serve", "--data", data, "--listen", "127.0.0.1:" + port, ...extra],
                      { env: { ...process.env, IRT_PASSPHRASE: passphrase }, stdio: ["ignore", log, log] });
  }
  async stop() {
    // A node that already exited (it failed to start) sends no second "exit":
    // waiting for one would drain the event loop and end the run with status 0.
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await exited;
  }
}

async function scenario(viewport) {
  const started = Date.now();
  let flowsMs = 0;  // the steps of the withdrawal, excursion, storage, relabel, handover and return flows
  const dir = path.join(outDir, viewport.width + "x" + viewport.height);
  fs.mkdirSync(dir, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "irt-browser-"));
  const data = path.join(work, "node");
  // Three participants randomized 30, 40 and 23 days ago: Week 4 (days 25 to 31)
  // is due for the first, overdue for the second, opening this week for the third.
  const summary = JSON.parse(execFileSync(fixtureBin, ["--data", data, "--kits-per-type", "12", "--randomized-days-ago", "30",
                                                       "--randomized-days-ago", "40", "--randomized-days-ago", "23",
                                                       "--relabel-kits", "2", "--pending-kind", viewport.pendingKind]).toString());
  const port = await freePort();
  const logPath = path.join(dir, "irt-node.log");
  fs.writeFileSync(logPath, "");
  let node = new Node(data, summary.passphrase, port, logPath, []);
  const base = node.base;
  let context;
  try {
    await waitForHttp(base, 15000);
    context = await chromium.launchPersistentContext(path.join(work, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: viewport.width, height: viewport.height },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    // Every CSP violation the browser reports, by event and on the console.
    const cspViolations = [];
    await context.exposeFunction("irtCspViolation", (v) => cspViolations.push(v));
    await context.addInitScript(() => document.addEventListener("securitypolicyviolation",
      (e) => window.irtCspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber)));
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(10000);
    page.on("console", (m) => { if (/Content Security Policy|Refused to (execute|apply|load|connect)/i.test(m.text())) cspViolations.push("console: " + m.text()); });
    page.on("pageerror", (e) => cspViolations.push("page error: " + e.message));
    for (const file of ["", "web/app.js", "web/app.css"]) {
      const r = await fetch(base + file);
      assert.equal(r.status, 200, file);
      const csp = r.headers.get("content-security-policy") || "";
      assert.ok(!/unsafe-inline|unsafe-eval/.test(csp) && /script-src 'self'/.test(csp) && /style-src 'self'/.test(csp) &&
                /frame-ancestors 'none'/.test(csp), "CSP of /" + file + ": " + csp);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    }
    // Every screen with a screenshot is also checked by axe-core: no critical
    // violation; the others are written next to the screenshot.
    const accessibility = {};
    async function shot(name) {
      await page.screenshot({ path: path.join(dir, name + ".png"), fullPage: true });
      if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(AXE_SOURCE);
      const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })));
      accessibility[name] = violations;
      const critical = violations.filter((v) => v.impact === "critical");
      assert.deepEqual(critical, [], name + ": critical accessibility violations");
    }
    const visible = (sel) => page.isVisible(sel);

    // Nothing wider than the screen, touch targets at least 44 px high.
    async function checkLayout(where) {
      assert.ok(await page.evaluate((w) => document.documentElement.scrollWidth <= w, viewport.width),
                where + ": page wider than " + viewport.width + " px");
      const small = await page.evaluate(() => [...document.querySelectorAll("button")]
        .filter((b) => b.offsetParent !== null && b.getBoundingClientRect().height < 44).map((b) => b.textContent));
      assert.deepEqual(small, [], where + ": buttons under 44 px");
    }
    // What a blinded role has in the page: no arm, kit type or treatment, in the markup or the text.
    async function assertBlind(who) {
      const html = await page.content();
      const text = await page.evaluate(() => document.body.innerText);
      for (const w of FORBIDDEN_FOR_BLINDED) {
        assert.ok(!html.includes(w) && !text.includes(w), who + " sees " + w);
      }
      assert.equal(await page.$(".arm, #p-arm, .arm-cell"), null, who + " sees an arm element");
    }
    async function tabs() {
      return page.$$eval("nav button", (bs) => bs.filter((b) => b.offsetParent !== null).map((b) => b.dataset.view));
    }
    async function login(user) {
      await page.goto(base);
      await page.fill("#login-user", user);
      await page.fill("#login-password", summary.password);
      await page.click("#login-button");
      await page.waitForSelector("#nav:not(.hidden)");
    }
    async function logout() {
      await page.click("#logout");
      await page.waitForSelector("#view-login:not(.hidden)");
    }
    async function openParticipant(number) {
      await page.click("#nav-participants");
      await page.click(`[data-participant="${number}"]`);
      await page.waitForFunction((n) => document.querySelector("#p-number") && document.querySelector("#p-number").textContent === n, number);
    }
    const returnList = () => page.$$eval("[data-return-row]", (rs) => rs.map((r) => r.dataset.returnRow));
    async function openReturn() {
      await page.click("#return-open");
      await page.waitForSelector("#return-table");
    }
    const participantCount = () => page.evaluate(async () => {
      const r = await fetch("/api/v1/participants", { headers: { Authorization: "Bearer " + sessionStorage.getItem("irt-token") } });
      return (await r.json()).participants.length;
    });

    // ---- The login page: the pill says what the node answers, before anyone logs in.
    await page.goto(base);
    await page.waitForSelector("#conn[data-state]");
    const connection = await (await fetch(base + "api/v1/connection")).json();
    assert.equal(connection.sync_state, "offline", "no hub: the node is offline");
    assert.equal(await page.textContent("#conn-text"), "Offline");
    assert.equal(await page.textContent("#last-sync"), "never");
    assert.ok(await visible("#last-sync-box"));
    await shot("0-login");

    // ---- Tabs only for what the role may do.
    const tabsOf = {};
    for (const user of ["carla", "paul", "mona"]) { await login(user); tabsOf[user] = await tabs(); await logout(); }
    assert.deepEqual(tabsOf.carla, ["participants", "visits", "screen", "inventory", "status"]);
    assert.deepEqual(tabsOf.paul, ["participants", "visits", "inventory", "status"], "the pharmacist does not screen");
    assert.deepEqual(tabsOf.mona, ["participants", "visits", "inventory", "status"], "the monitor only reads");

    // ---- Screening: messages for people, cleared when fixed.
    await login("carla");
    assert.equal(await page.textContent("#conn-text"), "Offline");
    await page.click("#nav-screen");
    await page.click("#screen-submit");
    assert.ok(await visible("#err-factor-diabetes"), "a missing required factor is shown at its field");
    assert.match(await page.textContent("#err-factor-diabetes"), /^Choose type 2 diabetes at screening/);
    for (let i = 0; i < 5; i++) assert.equal(await page.textContent("#err-elig-" + i), "Answer yes or no.");
    const formText = await page.evaluate(() => document.body.innerText);
    assert.ok(!/factors\.|eligibility\[|screen_failure_reason/.test(formText), "API field names on screen: " + formText);
    assert.equal(await page.getAttribute("#factor-diabetes", "aria-invalid"), "true");
    await checkLayout("screening form");
    await shot("1-screen-validation");
    await page.selectOption("#factor-diabetes", "no");
    assert.ok(!(await visible("#err-factor-diabetes")), "the message clears once the factor is chosen");
    for (let i = 0; i < 5; i++) await page.click("#elig-" + i + " button[data-v=yes]");
    for (let i = 0; i < 5; i++) assert.ok(!(await visible("#err-elig-" + i)), "answered question " + i + " keeps its message");
    // A no shows the reason field; typing a reason and then answering yes
    // must not turn the participant into a screen failure.
    assert.ok(!(await visible("#screen-failure")), "no reason field while every answer is yes");
    await page.click("#elig-2 button[data-v=no]");
    await page.fill("#screen-failure", "LVEF 45%");
    await page.click("#elig-2 button[data-v=yes]");
    assert.ok(!(await visible("#screen-failure")));
    // The confirmation comes before a number is used; cancelling uses none.
    const screenedBefore = await participantCount();
    await page.click("#screen-submit");
    await page.waitForSelector("#sign-dialog[open]");
    assert.match(await page.textContent("#sign-meaning"), /uses the next participant number/);
    assert.match(await page.textContent("#sign-meaning"), /Type 2 diabetes at screening: no/);
    await shot("2-screen-confirm");
    await page.click("#sign-cancel");
    assert.equal(await participantCount(), screenedBefore, "cancelled: no participant number used");
    // The screen request reaches the node but its answer is lost on the way
    // back: the UI retries with the same Idempotency-Key and the node applies it once.
    const keys = [];
    let lost = false;
    await page.route("**/api/v1/participants", async (route) => {
      const req = route.request();
      if (req.method() !== "POST") return route.continue();
      keys.push(req.headers()["idempotency-key"]);
      assert.equal(JSON.parse(req.postData()).screen_failure_reason, undefined, "the stale reason is not sent");
      if (lost) return route.continue();
      lost = true;
      await route.fetch();
      return route.abort("connectionreset");
    });
    await page.click("#screen-submit");
    await page.click("#sign-confirm");
    await page.waitForSelector("#p-number");
    await page.unroute("**/api/v1/participants");
    const number = await page.textContent("#p-number");
    assert.match(number, /^101-\d{3}$/);
    assert.equal(await page.textContent("#p-status"), "Screened", "every answer yes: screened, not a screen failure");
    assert.equal(keys.length, 2, "one retry after the lost answer");
    assert.match(keys[0], /^[0-9a-f]{32}$/);
    assert.equal(keys[1], keys[0], "the retry carries the same Idempotency-Key");
    assert.equal(await participantCount(), screenedBefore + 1, "the retried screening created one participant");
    assert.equal(await page.textContent("#p-factors"), "Type 2 diabetes at screening: no");

    // A real screen failure: a no and its reason; the status reads as people say it.
    await page.click("#nav-screen");
    await page.selectOption("#factor-diabetes", "yes");
    for (let i = 0; i < 5; i++) await page.click("#elig-" + i + " button[data-v=" + (i === 2 ? "no" : "yes") + "]");
    await page.click("#screen-submit");
    assert.match(await page.textContent("#err-screen-failure"), /give the reason/);
    await page.fill("#screen-failure", "LVEF 45% on the screening echo");
    assert.ok(!(await visible("#err-screen-failure")), "the reason's message clears once typed");
    await page.click("#screen-submit");
    assert.equal(await page.textContent("#sign-title"), "Record a screen failure?");
    await page.click("#sign-confirm");
    await page.waitForFunction(() => document.querySelector("#p-status") && document.querySelector("#p-status").textContent === "Screen failure");
    assert.match(await page.textContent("#p-failure"), /LVEF 45%/);

    // ---- Randomization: the kit to hand out first and largest.
    await openParticipant(number);
    const randomizeKeys = [];
    page.on("request", (r) => { if (r.url().endsWith("/randomize")) randomizeKeys.push(r.headers()["idempotency-key"]); });
    await page.click("#action-randomize");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForSelector("#randomize-result");
    assert.equal(randomizeKeys.length, 1);
    assert.notEqual(randomizeKeys[0], keys[0], "each action has its own key");
    assert.match(await page.textContent("#randomize-number"), /^R\d\d-\d{4}$/);
    const kit = (await page.textContent("#randomize-result .kit-big")).trim();
    assert.ok(summary.first_shipment.kits.includes(kit), "the kit to hand out is of the site's stock: " + kit);
    const layout = await page.evaluate(() => {
      const detail = document.querySelector("#participant-detail");
      const kitSize = parseFloat(getComputedStyle(document.querySelector(".kit-big")).fontSize);
      const larger = [...document.querySelectorAll("body *")].filter((e) => e.offsetParent !== null && e.childElementCount === 0 &&
        e.textContent.trim() && !e.closest(".kit-big") && parseFloat(getComputedStyle(e).fontSize) >= kitSize).map((e) => e.textContent);
      const actions = document.querySelector("#actions").getBoundingClientRect();
      const rare = document.querySelector("#rare-actions").getBoundingClientRect();
      return { firstShown: detail.firstElementChild.firstElementChild.className, larger, gap: rare.top - actions.bottom,
               kitTop: document.querySelector(".kit-big").getBoundingClientRect().top };
    });
    assert.equal(layout.firstShown, "handout", "the kit comes first on the participant's screen");
    assert.deepEqual(layout.larger, [], "nothing else is as large as the kit number");
    assert.ok(layout.kitTop < viewport.height / 2, "the kit is in the top half of the screen");
    assert.ok(layout.gap >= 64, "withdrawal is spaced from routine actions: " + layout.gap + " px");
    assert.equal(await page.$("#p-arm"), null);
    await assertBlind("coordinator (randomized)");
    await checkLayout("randomization result");
    await shot("3-coordinator-randomized");
    // Withdrawal asks first; cancelling changes nothing.
    await page.click("#action-withdraw");
    await page.waitForSelector("#sign-dialog[open]");
    assert.equal(await page.textContent("#sign-confirm"), "Withdraw");
    await page.click("#sign-confirm");
    assert.ok(await visible("#sign-reason-error"), "withdrawal needs a reason");
    await page.click("#sign-cancel");
    assert.equal(await page.textContent("#p-status"), "Randomized");

    // ---- Status: stratum labels and kit status words as people read them.
    await page.click("#nav-status");
    await page.waitForSelector("#slots li");
    const slots = await page.$$eval("#slots li", (lis) => lis.map((l) => l.textContent));
    assert.ok(slots.some((s) => /^Site 101 · Type 2 diabetes at screening: (yes|no): \d+$/.test(s)), "stratum labels: " + slots.join(" | "));
    assert.ok(slots.every((s) => !/[=;]/.test(s)), "raw stratum label: " + slots.join(" | "));
    const counts = await page.$$eval("#kit-counts li", (lis) => lis.map((l) => l.textContent));
    assert.ok(counts.some((c) => /^Available: \d+$/.test(c)) && counts.every((c) => !c.includes("_")), "kit statuses: " + counts.join(" | "));
    // Sync now: with no hub the round runs at once and says the hub could not be reached.
    await page.click("#sync-now");
    await page.waitForFunction(() => (document.querySelector("#sync-result") || {}).dataset?.state === "offline", null, { timeout: 40000 });
    assert.match(await page.textContent("#sync-result"), /^Not synced: cannot reach the hub .*everything is kept/);
    await assertBlind("coordinator (status)");
    await shot("4-coordinator-status");
    // ---- Inventory as the coordinator: the pending shipment scanned in, the
    // rest received in one action, kept in the history; totals, filters, bulk quarantine, a return.
    await page.click("#nav-inventory");
    await page.waitForSelector("#inventory-table");
    const pending = summary.pending_shipment;
    const card = `[data-shipment="${pending.id}"]`;
    assert.equal(await page.textContent(card + " h2"), viewport.pendingKind === "handover"
      ? "Kits handed over to this node (" + pending.id + ") to receive" : "Shipment " + pending.id + " to receive");
    await page.fill(card + " [data-scan]", "999999");
    await page.press(card + " [data-scan]", "Enter");
    assert.match(await page.textContent(card + " [data-scan-error]"), /Kit 999999 is not expected in shipment/);
    await page.fill(card + " [data-scan]", pending.kits[0]);
    await page.press(card + " [data-scan]", "Enter");
    assert.ok(!(await visible(card + " [data-scan-error]")), "the scan message clears");
    assert.equal(await page.inputValue(`${card} select[data-kit="${pending.kits[0]}"]`), "received");
    assert.ok(await page.$(`${card} tr.scanned[data-row="${pending.kits[0]}"]`), "the scanned kit shows as received");
    assert.equal(await page.textContent(card + " [data-checked]"), "1");
    assert.equal(await page.inputValue(`${card} [data-scan]`), "", "the field is ready for the next scan");
    await shot("5-coordinator-receipt-scanning");
    await page.click(card + " [data-receive-all]");
    await page.waitForFunction((n) => /Receipt of shipment .* recorded/.test(document.querySelector("#message").textContent), pending.id);
    assert.equal(await page.textContent("#message"), "Receipt of shipment " + pending.id + " recorded: " + pending.kits.length + " received, 0 damaged, 0 missing.");
    assert.equal(await page.$(card), null);
    assert.match(await page.textContent("#shipment-history"), new RegExp(pending.id + ".*Available " + pending.kits.length));
    const totals = await page.$$eval("#totals .badge", (bs) => bs.map((b) => b.textContent));
    assert.ok(totals.some((t) => /^Available: \d+$/.test(t)) && totals.some((t) => /^Dispensed: \d+$/.test(t)), "totals: " + totals.join(" | "));
    assert.equal(await page.$("#totals-by-type"), null, "no totals by kit type for a blinded role");
    await page.selectOption("#filter-status", "dispensed");
    const shownStatuses = await page.$$eval("[data-kit-row]:not(.hidden)", (rs) => rs.map((r) => r.dataset.status));
    assert.ok(shownStatuses.length > 0 && shownStatuses.every((x) => x === "dispensed"), "status filter: " + shownStatuses.join(","));
    await page.selectOption("#filter-status", "");
    await page.fill("#filter-kit", pending.kits[1]);
    assert.deepEqual(await page.$$eval("[data-kit-row]:not(.hidden)", (rs) => rs.map((r) => r.dataset.kitRow)), [pending.kits[1]]);
    await page.fill("#filter-kit", "");
    assert.ok(pending.kits.length >= 4);
    await page.check(`[data-select="${pending.kits[0]}"]`);
    await page.check(`[data-select="${pending.kits[1]}"]`);
    assert.equal(await page.textContent("#quarantine-selected"), "Excursion: quarantine selected (2)…");
    await checkLayout("inventory");
    await assertBlind("coordinator (inventory)");
    await shot("5-coordinator-inventory");
    // An excursion for the selected kits: the logger's readings, checked with messages for people.
    let flowStart = Date.now();
    const excErrors = () => page.$$eval("#exc-form .field-error:not(.hidden)", (es) => Object.fromEntries(es.map((e) => [e.id, e.textContent])));
    await page.click("#quarantine-selected");
    await page.waitForSelector("#excursion-dialog[open]");
    assert.equal(await page.textContent("#exc-confirm"), "Quarantine 2 kits");
    await page.click("#exc-confirm");
    assert.deepEqual(Object.keys(await excErrors()), ["exc-err-min", "exc-err-max", "exc-err-duration", "exc-err-reason"]);
    assert.match((await excErrors())["exc-err-min"], /^Lowest temperature: give the logger's lowest reading in °C/);
    await page.fill("#exc-min", "8");
    await page.fill("#exc-max", "2,5");
    await page.fill("#exc-duration", "5 hours");
    await page.fill("#exc-reason", "fridge door left open overnight");
    await page.click("#exc-confirm");
    assert.deepEqual(await excErrors(), { "exc-err-max": "The highest temperature is below the lowest: check the logger's readings.",
                                          "exc-err-duration": "Give how long the kits were outside the range, in whole minutes (1 or more)." });
    assert.equal(await page.getAttribute("#exc-duration", "aria-invalid"), "true");
    await checkLayout("excursion dialog");
    await shot("5b-excursion-validation");
    await page.fill("#exc-max", "12.5");
    await page.fill("#exc-duration", "300");
    assert.deepEqual(await excErrors(), {}, "the messages clear once the fields are fixed");
    await page.click("#exc-confirm");
    await page.waitForFunction(() => /^2 kits quarantined: /.test(document.querySelector("#message").textContent));
    for (const k of pending.kits.slice(0, 2)) assert.equal(await page.getAttribute(`[data-kit-row="${k}"]`, "data-status"), "quarantined");
    // Two kits put in a fridge, then an excursion of that fridge quarantines every kit in stock there.
    await page.check(`[data-select="${pending.kits[2]}"]`);
    await page.check(`[data-select="${pending.kits[3]}"]`);
    await page.click("#store-selected");
    await page.fill("#sign-text", "FRIDGE-1");
    await page.click("#sign-confirm");
    await page.waitForFunction(() => document.querySelector("#message").textContent === "2 kits stored in FRIDGE-1.");
    assert.match(await page.textContent(`[data-kit-row="${pending.kits[2]}"]`), /Available · FRIDGE-1/);
    await page.click("#excursion-location");
    await page.waitForSelector("#excursion-dialog[open]");
    await page.fill("#exc-min", "-3");
    await page.fill("#exc-max", "4");
    await page.fill("#exc-duration", "45");
    await page.fill("#exc-reason", "fridge froze");
    await page.click("#exc-confirm");
    assert.equal(await page.textContent("#exc-err-location"), "Choose the storage location whose kits were exposed.");
    await page.selectOption("#exc-location", "FRIDGE-1");
    await shot("5c-excursion-location");
    await page.click("#exc-confirm");
    await page.waitForFunction(() => /^2 kits quarantined: /.test(document.querySelector("#message").textContent));
    for (const k of pending.kits.slice(2, 4)) assert.equal(await page.getAttribute(`[data-kit-row="${k}"]`, "data-status"), "quarantined");
    flowsMs += Date.now() - flowStart;
    // The randomized participant's kit comes back with 25 units.
    await page.click(`[data-return="${kit}"]`);
    await page.fill("#sign-text", "25");
    await page.click("#sign-confirm");
    await page.waitForFunction((k) => document.querySelector(`[data-kit-row="${k}"]`).dataset.status === "returned", kit);
    assert.match(await page.textContent(`[data-kit-row="${kit}"]`), /Returned · 101-\d{3} · 25 units back/);
    await assertBlind("coordinator (inventory after the return)");
    // What may go back to a depot, as the blinded coordinator sees it: numbers and labels, no kit type.
    await openReturn();
    const blindList = await returnList();
    assert.ok(blindList.includes(kit) && blindList.includes(summary.expired_kit), "returnable: " + blindList.join(","));
    assert.ok(!blindList.includes(summary.near_expiry_kit), "a kit in stock, not expired, may not go back");
    await assertBlind("coordinator (return shipment)");
    await checkLayout("return shipment (coordinator)");
    await shot("5d-coordinator-return-kits");
    await logout();

    // ---- The nurse is blinded too.
    await login("nadia");
    await openParticipant(number);
    await assertBlind("nurse (participant)");
    assert.equal(await page.$("#action-unblind"), null, "the nurse may not break the code");
    await page.click("#nav-inventory");
    await page.waitForSelector("#inventory-table");
    await assertBlind("nurse (inventory)");
    await logout();

    // ---- Visits, as the nurse: the site's list, the timeline, the due visit first,
    // confirmation with the kits, out of order with a reason, missed, done without kits.
    await login("nadia");
    assert.deepEqual(await tabs(), ["participants", "visits", "screen", "inventory", "status"]);
    await page.click("#nav-visits");
    await page.waitForSelector("#due-overdue");
    const dueIn = (id) => page.$$eval("#due-" + id + " [data-due-participant]", (bs) => bs.map((b) => b.textContent));
    assert.match((await dueIn("overdue"))[0], /^101-002 Week 4window closed \d{4}-\d\d-\d\d$/);
    assert.match((await dueIn("today")).join("|"), /^101-001 Week 4until \d{4}-\d\d-\d\d$/);
    assert.match((await dueIn("week")).join("|"), /^101-003 Week 4from \d{4}-\d\d-\d\d$/);
    await assertBlind("nurse (visits to plan)");
    await checkLayout("visits to plan");
    await shot("6-nurse-visits-due");
    await page.click("#due-today [data-due-participant='101-001']");
    await page.waitForFunction((n) => document.querySelector("#p-number") && document.querySelector("#p-number").textContent === n, "101-001");
    await page.waitForSelector("#schedule");
    const stateOf = async () => Object.fromEntries(await page.$$eval("#schedule li", (lis) => lis.map((l) => [l.dataset.visit, l.querySelector(".state").textContent])));
    assert.deepEqual(await stateOf(), { V1: "Done", V2: "Due", V3: "Upcoming", V4: "Upcoming", V5: "Upcoming" });
    assert.deepEqual(await page.$$eval("#schedule .tl-name", (n) => n.map((x) => x.textContent)),
                     ["Randomization", "Week 4", "Week 8", "Week 16", "Week 24, end of treatment"]);
    assert.equal(await page.textContent("#action-dispense"), "Dispense Week 4", "the due visit is offered");
    await shot("7-nurse-timeline");
    await page.click("#action-dispense");
    await page.waitForSelector("#sign-dialog[open] #confirm-kits .kit-big");
    const offered = await page.$$eval("#confirm-kits .kit-big", (ks) => ks.map((k) => k.textContent));
    assert.equal(offered.length, 1);
    await shot("8-nurse-dispense-confirm");
    await page.click("#sign-cancel");
    assert.deepEqual((await stateOf()).V2, "Due", "cancelled: nothing dispensed");
    await page.click("#action-dispense");
    await page.waitForSelector("#sign-dialog[open] #confirm-kits .kit-big");
    await page.click("#sign-confirm");
    await page.waitForSelector("#dispense-result");
    assert.deepEqual(await page.$$eval("#dispense-result .kit-big", (ks) => ks.map((k) => k.textContent)), offered, "the kits confirmed are the kits handed out");
    assert.equal((await stateOf()).V2, "Done");
    assert.match(await page.textContent("#schedule li[data-visit=V2]"), new RegExp("kits " + offered[0]));
    await assertBlind("nurse (dispensed)");
    // Week 16 before Week 8: only through the out-of-order path, with a reason and a signature.
    assert.equal(await page.textContent("#action-dispense"), "Dispense Week 8");
    await page.click("#action-out-of-order");
    await page.selectOption("#sign-choice", "V4");
    await page.click("#sign-confirm");
    assert.ok(await visible("#sign-reason-error"), "out of order needs a reason");
    await page.fill("#sign-reason", "travels abroad for four months");
    await page.click("#sign-confirm");
    await page.waitForSelector("#sign-dialog[open] #confirm-kits .kit-big");
    assert.equal((await page.$$eval("#confirm-kits .kit-big", (ks) => ks.length)), 2);
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForFunction(() => document.querySelector("#schedule li[data-visit=V4] .state").textContent === "Done");
    assert.equal(await page.$$eval("#dispense-result .kit-big", (ks) => ks.length), 2);
    assert.match(await page.textContent("#schedule li[data-visit=V4]"), /out of order: travels abroad for four months · deviation: outside the window$/);
    await shot("8b-out-of-order-dispensed");
    // The Week 4 kit broke: replaced with a reason and a signature, the new kit first and largest.
    await page.click("#action-replace");
    await page.selectOption("#sign-choice", "V2|" + offered[0] + "|damaged");
    await page.fill("#sign-reason", "bottle dropped and cracked");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForSelector("#replace-result");
    const replacement = await page.textContent("#replace-result .kit-big");
    assert.notEqual(replacement, offered[0]);
    assert.match(await page.textContent("#schedule li[data-visit=V2]"), new RegExp("kits " + replacement));
    await assertBlind("nurse (kit replaced)");
    // The overdue participant: each visit missed with its reason, then the last one (no kits) done.
    await page.click("#nav-visits");
    await page.click("#due-overdue [data-due-participant='101-002']");
    await page.waitForFunction((n) => document.querySelector("#p-number") && document.querySelector("#p-number").textContent === n, "101-002");
    await page.waitForSelector("#schedule");
    assert.equal((await stateOf()).V2, "Overdue");
    for (const [visit, name] of [["V2", "Week 4"], ["V3", "Week 8"], ["V4", "Week 16"]]) {
      assert.equal(await page.textContent("#action-visit-missed"), name + " missed…");
      await page.click("#action-visit-missed");
      await page.fill("#sign-reason", "in hospital");
      await page.click("#sign-confirm");
      await page.waitForFunction((v) => document.querySelector("#schedule li[data-visit=" + v + "] .state").textContent === "Missed", visit);
    }
    assert.equal(await page.textContent("#action-visit-done"), "Record Week 24, end of treatment as done");
    await page.click("#action-visit-done");
    await page.click("#sign-confirm");
    await page.waitForFunction(() => document.querySelector("#schedule li[data-visit=V5] .state").textContent === "Done");
    assert.deepEqual(await stateOf(), { V1: "Done", V2: "Missed", V3: "Missed", V4: "Missed", V5: "Done" });
    assert.match(await page.textContent("#schedule li[data-visit=V2]"), /in hospital/);
    await assertBlind("nurse (visits recorded)");
    await checkLayout("timeline");
    await shot("9-nurse-visits-recorded");
    await page.click("#nav-visits");
    await page.waitForSelector("#due-overdue");
    // The view keeps its last list until the new answer is drawn: wait for it, then check.
    await page.waitForFunction(() => document.querySelectorAll("#due-overdue [data-due-participant]").length === 0, null, { timeout: 10000 }).catch(() => {});
    assert.deepEqual(await dueIn("overdue"), [], "recorded visits leave the list");
    await logout();

    // ---- The investigator breaks the code, then sees the arm again from the record.
    await login("ines");
    await openParticipant(number);
    await assertBlind("investigator before the code break");
    await page.click("#action-unblind");
    assert.equal(await page.textContent("#sign-confirm"), "Break the code");
    await page.fill("#sign-reason", "anaphylaxis, treating physician needs the allocation");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForSelector("#unblind-result");
    const broken = await page.textContent("#unblind-result");
    assert.match(broken, /Code broken: (Velcardin 25 mg once daily|Placebo once daily)/);
    await openParticipant(number);  // later, from the record: no second break
    assert.equal(await page.$("#unblind-result"), null);
    assert.match(await page.textContent("#p-arm"), /Velcardin 25 mg once daily|Placebo once daily/);
    assert.equal(await page.$("#action-unblind"), null, "no button to break the code again");
    assert.match(await page.textContent("#action-unblind-done"), /^Code broken on \d{4}-\d\d-\d\d by ines$/);
    assert.ok(await page.isDisabled("#action-unblind-done"));
    await shot("10-investigator-code-broken");
    await logout();
    // The coordinator sees that the code was broken, never the arm.
    await login("carla");
    await openParticipant(number);
    assert.match(await page.textContent("#p-code-broken"), /^Code broken on \d{4}-\d\d-\d\d by ines$/);
    await assertBlind("coordinator after the code break");
    // A transfer request, then study completion of another participant.
    await page.click("#action-transfer");
    await page.fill("#sign-text", "102");
    await page.fill("#sign-reason", "moves to Paris");
    await page.click("#sign-confirm");
    await page.waitForSelector("#p-transfer");
    assert.equal(await page.textContent("#p-transfer"), "Transfer to site 102 requested: moves to Paris");
    assert.equal(await page.$("#action-transfer"), null, "one transfer request at a time");
    // Withdrawal is signed: a wrong password is refused with a clear message and records nothing.
    flowStart = Date.now();
    await page.click("#action-withdraw");
    await page.fill("#sign-reason", "moves abroad, stops treatment");
    await page.fill("#sign-password", "not my password");
    await page.click("#sign-confirm");
    await page.waitForFunction(() => /^The electronic signature did not verify/.test(document.querySelector("#message").textContent));
    assert.match(await page.textContent("#message"), /re-enter your own password to sign; nothing was changed/);
    assert.equal(await page.textContent("#p-status"), "Randomized");
    assert.ok(await visible("#logout"), "a refused signature does not end the session");
    await shot("10b-withdraw-signature-refused");
    await page.click("#action-withdraw");
    await page.fill("#sign-reason", "moves abroad, stops treatment");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForFunction(() => document.querySelector("#p-status").textContent === "Withdrawn");
    assert.equal(await page.$("#action-withdraw"), null);
    // The record says who signed the withdrawal, when, and why.
    assert.match(await page.textContent("#p-withdrawn"), /^Withdrawn on \d{4}-\d\d-\d\d by carla: moves abroad, stops treatment$/);
    await shot("10c-withdrawn-signed");
    flowsMs += Date.now() - flowStart;
    await openParticipant("101-003");
    await page.click("#action-complete");
    await page.click("#sign-confirm");
    await page.waitForFunction(() => document.querySelector("#p-status").textContent === "Completed");
    assert.equal(await page.$("#action-dispense"), null, "no dispensing after completion");
    assert.ok((await page.$$eval("#schedule .state", (ss) => ss.map((x) => x.textContent))).includes("Not planned"));
    await assertBlind("coordinator (completion)");
    await logout();

    // ---- The pharmacist is unblinded: arms in the inventory and on the participant.
    await login("paul");
    await page.click("#nav-inventory");
    await page.waitForSelector("#inventory-table");
    const cells = await page.$$eval("#inventory-table .arm-cell", (tds) => tds.map((t) => t.textContent));
    assert.ok(cells.some((c) => /Velcardin|Placebo/.test(c)), "pharmacist sees arms: " + cells.join(","));
    assert.ok(await page.$("#totals-by-type"), "the unblinded pharmacist sees totals by kit type");
    assert.match(await page.textContent("#totals-by-type"), /Velcardin|Placebo/);
    await checkLayout("pharmacist inventory");
    await shot("11-pharmacist-inventory");
    // Kits the hub asked to relabel: the new expiry shown, each confirmed as relabelled.
    flowStart = Date.now();
    assert.deepEqual(await page.$$eval("[data-relabel-row]", (rs) => rs.map((r) => r.dataset.relabelRow)), summary.relabel_kits);
    assert.match(await page.textContent(`[data-relabel-row="${summary.relabel_kits[0]}"]`), new RegExp(summary.relabel_expiry));
    await page.click(`[data-relabel="${summary.relabel_kits[0]}"]`);
    assert.match(await page.textContent("#sign-meaning"), new RegExp("kit " + summary.relabel_kits[0] + " now carries the new expiry " + summary.relabel_expiry));
    await page.click("#sign-confirm");
    await page.waitForFunction((t) => document.querySelector("#message").textContent === t,
                               "Kit " + summary.relabel_kits[0] + " relabelled: new expiry " + summary.relabel_expiry + ".");
    assert.deepEqual(await page.$$eval("[data-relabel-row]", (rs) => rs.map((r) => r.dataset.relabelRow)), summary.relabel_kits.slice(1));
    assert.equal(await page.textContent(`[data-kit-row="${summary.relabel_kits[0]}"] td:nth-child(7)`), summary.relabel_expiry);
    await shot("11c-relabel");
    // Custody to a nurse's tablet: the kit is in transit at once, never dispensed or handed over again here.
    const handed = await page.$eval("[data-select]", (c) => c.dataset.select);
    await page.check(`[data-select="${handed}"]`);
    await page.click("#handover-selected");
    // Offline before its first sync the node has no list of the site's nodes: the node id is typed.
    await page.waitForSelector("#sign-dialog[open]");
    assert.ok(!(await visible("#sign-choice")), "no list of the site's nodes before the first sync");
    await page.fill("#sign-text", "101-N2");
    await page.fill("#sign-reason", "home visits this week");
    await page.click("#sign-confirm");
    await page.waitForFunction(() => /^1 kit handed over to 101-N2: in transit/.test(document.querySelector("#message").textContent));
    assert.equal(await page.getAttribute(`[data-kit-row="${handed}"]`, "data-status"), "shipped");
    assert.match(await page.textContent(`[data-kit-row="${handed}"]`), /In transit to node 101-N2/);
    assert.equal(await page.$(`[data-select="${handed}"]`), null, "a kit in transit cannot be selected again");
    const again = await page.evaluate(async (k) => {
      const r = await fetch("/api/v1/kits/handover", { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + sessionStorage.getItem("irt-token") },
                                                        body: JSON.stringify({ to_node: "101-N2", kits: [k] }) });
      return { status: r.status, message: (await r.json()).error.message };
    }, handed);
    assert.equal(again.status, 409);
    assert.match(again.message, new RegExp("kit " + handed + " is in transit to node 101-N2 \\(handed over: the hub moves its custody at the next sync\\)"));
    await checkLayout("handover");
    await shot("11d-handover-in-transit");
    flowsMs += Date.now() - flowStart;
    // A return shipment to the depot: one kit scanned, one ticked, signed; then in the history, in transit.
    flowStart = Date.now();
    await openReturn();
    assert.match(await page.textContent("#return-table"), /Velcardin|Placebo/, "the unblinded pharmacist sees kit types");
    await page.fill("#return-scan", pending.kits[0]);
    await page.press("#return-scan", "Enter");
    assert.equal(await page.textContent("#return-scan-error"), "Kit " + pending.kits[0] + " is quarantined: only returned, rejected, damaged or expired kits go back to a depot.");
    await page.fill("#return-scan", summary.expired_kit);
    assert.ok(!(await visible("#return-scan-error")), "the scan message clears");
    await page.press("#return-scan", "Enter");
    assert.ok(await page.isChecked(`[data-return-select="${summary.expired_kit}"]`), "the scanned kit is ticked");
    await page.check(`[data-return-select="${offered[0]}"]`);
    assert.equal(await page.textContent("#return-send"), "Send 2 kits back…");
    assert.equal(await page.inputValue("#return-depot"), "EU-01");
    await page.fill("#return-courier", "DHL");
    await page.fill("#return-tracking", "JD0146");
    await checkLayout("return shipment");
    await shot("11e-pharmacist-return-kits");
    await page.click("#return-send");
    await page.waitForSelector("#sign-dialog[open]");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForFunction(() => /^Return shipment RET-/.test(document.querySelector("#message").textContent));
    const sent = await page.textContent("#message");
    assert.match(sent, /^Return shipment RET-\S+ sent: 2 kits in transit to depot Central depot Eindhoven \(EU-01\)\.$/);
    const ret = sent.split(" ")[2];
    assert.equal(await page.textContent(`[data-history="${ret}"] td:nth-child(3)`), "In transit to depot Central depot Eindhoven (EU-01) · 2 kits · DHL · tracking JD0146");
    for (const k of [summary.expired_kit, offered[0]]) assert.equal(await page.getAttribute(`[data-kit-row="${k}"]`, "data-status"), "shipped");
    await shot("11f-return-in-transit");
    await openReturn();
    const left = await returnList();
    assert.ok(!left.includes(summary.expired_kit) && !left.includes(offered[0]) && left.includes(kit), "returnable after the return: " + left.join(","));
    await page.click("#return-back");
    await page.waitForSelector("#inventory-table");
    flowsMs += Date.now() - flowStart;
    // The returned kit is destroyed, with the pharmacist's signature and a witness's.
    await page.click(`[data-destroy="${kit}"]`);
    await page.fill("#sign-reason", "incinerated with the site's returns");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForSelector("#sign-witness-error:not(.hidden)");  // no witness named: the dialog stays open
    await page.fill("#sign-witness", "carla");
    await page.fill("#sign-witness-password", summary.password);
    await shot("11b-destroy-with-witness");
    await page.click("#sign-confirm");
    await page.waitForFunction((k) => document.querySelector(`[data-kit-row="${k}"]`).dataset.status === "destroyed", kit);
    await page.click("#nav-participants");
    await page.waitForSelector(`[data-participant="${number}"] .arm`);

    // ---- The node stops: the page says so and shows no live "last sync".
    await node.stop();
    await page.waitForSelector("#node-down:not(.hidden)", { timeout: 10000 });
    assert.equal(await page.textContent("#conn-text"), "Node not running");
    assert.ok(!(await visible("#last-sync-box")), "no last sync while the node is stopped");
    await shot("12-node-stopped");

    // ---- Restarted with a short idle time: an idle tablet logs out and clears the screen.
    node = new Node(data, summary.passphrase, port, logPath, ["--session-idle", String(IDLE_SECONDS)]);
    await waitForHttp(base, 15000);
    await page.waitForSelector("#node-down", { state: "hidden", timeout: 10000 });
    // The node: the status poll alone does not keep a session alive, a person's request does.
    const apiLogin = async () => (await (await fetch(base + "api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: "mona", password: summary.password }) })).json()).token;
    const get = (p, token) => fetch(base + "api/v1" + p, { headers: { Authorization: "Bearer " + token } }).then((r) => r.status);
    const polled = await apiLogin(), used = await apiLogin();
    const polls = [];
    for (let i = 0; i < IDLE_SECONDS + 3; i++) {
      polls.push(await get("/status", polled));
      assert.equal(await get("/participants", used), 200, "a person's requests keep the session");
      await sleep(1000);
    }
    assert.equal(polls[0], 200);
    assert.equal(polls[polls.length - 1], 401, "the status poll kept the session alive: " + polls.join(","));
    assert.equal(await get("/participants", polled), 401);
    // The page: the pharmacist's arms are on screen, then nobody touches the tablet.
    await login("paul");
    const token = await page.evaluate(() => sessionStorage.getItem("irt-token"));
    await page.click("#nav-inventory");
    await page.waitForSelector("#inventory-table .arm-cell");
    await page.waitForSelector("#view-login:not(.hidden)", { timeout: (IDLE_SECONDS + 6) * 1000 });
    assert.match(await page.textContent("#message"), new RegExp("Logged out after " + IDLE_SECONDS + " seconds without use"));
    for (const w of FORBIDDEN_FOR_BLINDED) assert.ok(!(await page.content()).includes(w), "still on screen after the idle logout: " + w);
    assert.equal(await page.$("#inventory-table"), null);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("irt-token")), null);
    assert.equal(await get("/inventory", token), 401, "the idle session is closed at the node too");
    await shot("13-idle-logged-out");
    assert.deepEqual(cspViolations, [], "the browser reported Content-Security-Policy violations or page errors");
    fs.writeFileSync(path.join(dir, "accessibility.json"), JSON.stringify(accessibility, null, 1));
    const others = Object.entries(accessibility).flatMap(([screen, vs]) => vs.map((v) => screen + ": " + v.impact + " " + v.id));
    console.log("browser: axe-core checked " + Object.keys(accessibility).length + " screens: no critical violation" +
                (others.length ? "; others: " + others.join(", ") : "; no other violation"));
    console.log("browser: " + viewport.width + "x" + viewport.height + " passed in " + ((Date.now() - started) / 1000).toFixed(1) +
                " s (withdrawal, excursion, storage, relabel, handover and return steps " + (flowsMs / 1000).toFixed(1) + " s); screenshots in " + dir);
  } finally {
    if (context) await context.close().catch(() => {});
    await node.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  process.exitCode = 1;  // until every check has passed, whatever ends the run
  fs.mkdirSync(outDir, { recursive: true });
  for (const viewport of VIEWPORTS) await scenario(viewport);
  console.log("browser: node web UI passed at " + VIEWPORTS.map((v) => v.width + "x" + v.height).join(" and "));
  process.exitCode = 0;
}

main().catch((e) => { console.error("browser: node web UI FAILED:", e && e.stack ? e.stack : e); process.exit(1); });
