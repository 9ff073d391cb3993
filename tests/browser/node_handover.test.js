// Custody between two real nodes of a site, in the tablet UI of each, in
// Debian's headless Chromium driven by Playwright, at a 1280x900 laptop and an
// 800x1200 portrait tablet. All real processes: `irt-hub init` and `serve`,
// the site node and a nurse's tablet enrolled with one-time tokens (irt-node
// enroll), both served (irt-node serve). Per viewport, on a fresh hub:
// - the site node's pharmacist receives the initial shipment and syncs;
// - hands three kits over to the tablet, chosen from the list of the site's
//   nodes the hub sent (no node id typed); the kits are in transit at once
//   (or already moved: a node also syncs right after a local action);
// - the site node syncs (the hub moves custody: the kits leave its stock);
// - the tablet syncs, and its nurse (blinded) receives the kits as a handover
//   shipment by scanning their numbers; the page shows no arm or treatment;
// - the nurse hands one kit back the same way, choosing the site node; both
//   sync; the site node receives it and has it in stock again;
// - every screen with a screenshot passes axe-core with no critical violation,
//   nothing is wider than the screen, and the browser reports no
//   Content-Security-Policy violation and no page error.
// Screenshots and axe results go to OUT_DIR/handover/<width>x<height>/.
// Usage: node node_handover.test.js IRT_HUB_BIN IRT_NODE_BIN SOURCE_DIR OUT_DIR
"use strict";
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");
const { freePort, Server } = require("./processes.js");
const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [hubBin, nodeBin, sourceDir, outRoot] = process.argv.slice(2);
if (!hubBin || !nodeBin || !sourceDir || !outRoot) {
  console.error("usage: node node_handover.test.js IRT_HUB_BIN IRT_NODE_BIN SOURCE_DIR OUT_DIR");
  process.exit(2);
}
const outDir = path.join(outRoot, "handover");
const CHROMIUM = process.env.IRT_CHROMIUM || "/usr/bin/chromium";
// Site 402 of this study has a site node and nurses' tablets.
const STUDY = path.join(sourceDir, "packaging/examples/study-minimization.json");
const SITE = "402";
const VIEWPORTS = [{ width: 1280, height: 900 }, { width: 800, height: 1200 }];
const PASSPHRASE = "browser test passphrase for the site nodes";
const ADMIN = { name: "ada.admin", password: "admin-pass-1234" };
const PHARMACIST = { name: "phil.pharmacist", role: "pharmacist", password: "pharmacist-402-pass" };
const NURSE = { name: "nina.nurse", role: "nurse", password: "nurse-402-pass-word" };
const study = JSON.parse(fs.readFileSync(STUDY, "utf8"));
// What the blinded nurse must never have in the page.
const FORBIDDEN_FOR_BLINDED = [...study.arms.map((a) => a.name), ...study.kit_types.flatMap((k) => [k.name, k.id]), "Placebo"];

// The hub's keys are wrapped under their own passphrase (docs/hub.md).
const env = { ...process.env, IRT_PASSPHRASE: PASSPHRASE, IRT_HUB_PASSPHRASE: "test hub passphrase" };
const run = (bin, args, input) => execFileSync(bin, args, { env, input: input || "", stdio: ["pipe", "pipe", "pipe"] }).toString();

// A hub with the site's users, and the site node and a nurse's tablet
// enrolled (in that order) and synced once: each holds the roster, which
// lists the other.
async function seed(work, dir) {
  const hubData = path.join(work, "hub");
  run(hubBin, ["init", "--data", hubData, "--study", STUDY, "--kdf-cost", "min"]);
  run(hubBin, ["user", "add", "--data", hubData, "--name", ADMIN.name, "--role", "admin"], ADMIN.password + "\n");
  for (const u of [PHARMACIST, NURSE])
    run(hubBin, ["user", "add", "--data", hubData, "--user", ADMIN.name, "--name", u.name, "--role", u.role, "--sites", SITE],
        ADMIN.password + "\n" + u.password + "\n");
  const fingerprint = run(hubBin, ["fingerprint", "--data", hubData]).trim();
  const hubPort = await freePort();
  const hubUrl = "http://127.0.0.1:" + hubPort;
  const servers = [new Server(hubBin, ["serve", "--data", hubData, "--listen", "127.0.0.1:" + hubPort, "--http"], path.join(dir, "irt-hub.log"), env)];
  await servers[0].waitFor(hubUrl + "/healthz");
  const nodes = {};
  for (const kind of ["site", "nurse"]) {
    const data = path.join(work, "node-" + kind);
    const token = run(hubBin, ["invite", "--data", hubData, "--site", SITE, "--kind", kind, "--user", ADMIN.name], ADMIN.password + "\n").trim();
    run(nodeBin, ["enroll", "--data", data, "--hub", hubUrl, "--hub-fingerprint", fingerprint, "--kdf-cost", "interactive"], token + "\n");
    nodes[kind] = { data };
  }
  for (const kind of ["site", "nurse"]) {
    const n = nodes[kind];
    run(nodeBin, ["sync", "--data", n.data]);
    n.id = JSON.parse(run(nodeBin, ["status", "--data", n.data])).node_id;
    const port = await freePort();
    n.base = "http://127.0.0.1:" + port + "/";
    servers.push(new Server(nodeBin, ["serve", "--data", n.data, "--listen", "127.0.0.1:" + port, "--sync-interval", "3600"],
                            path.join(dir, "irt-node-" + kind + ".log"), env));
    await servers[servers.length - 1].waitFor(n.base);
  }
  return { servers, site: nodes.site, tablet: nodes.nurse };
}

async function scenario(browserArgs, viewport) {
  const started = Date.now();
  const dir = path.join(outDir, viewport.width + "x" + viewport.height);
  fs.mkdirSync(dir, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "irt-handover-"));
  let servers = [];
  let context;
  try {
    const seeded = await seed(work, dir);
    servers = seeded.servers;
    const { site, tablet } = seeded;
    context = await chromium.launchPersistentContext(path.join(work, "chromium-profile"), { ...browserArgs, viewport });
    const problems = [];
    await context.exposeFunction("irtCspViolation", (v) => problems.push("CSP: " + v));
    await context.addInitScript(() => document.addEventListener("securitypolicyviolation",
      (e) => window.irtCspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber)));
    const sitePage = context.pages()[0] || (await context.newPage());
    const tabletPage = await context.newPage();
    for (const page of [sitePage, tabletPage]) {
      page.setDefaultTimeout(15000);
      page.on("console", (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push("console: " + m.text()); });
      page.on("pageerror", (e) => problems.push("page error: " + e.message));
    }
    const accessibility = {};
    async function shot(page, name) {
      await page.bringToFront();
      await page.screenshot({ path: path.join(dir, name + ".png"), fullPage: true });
      if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(AXE_SOURCE);
      const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })));
      accessibility[name] = violations;
      assert.deepEqual(violations.filter((v) => v.impact === "critical"), [], name + ": critical accessibility violations");
      assert.ok(await page.evaluate((w) => document.documentElement.scrollWidth <= w, viewport.width), name + ": page wider than " + viewport.width + " px");
    }
    async function login(page, base, user) {
      await page.goto(base);
      await page.fill("#login-user", user.name);
      await page.fill("#login-password", user.password);
      await page.click("#login-button");
      await page.waitForSelector("#nav:not(.hidden)");
    }
    // Sync now, on the status screen: the round's result is shown, and it reached the hub.
    async function syncNow(page) {
      await page.click("#nav-status");
      await page.click("#sync-now");
      await page.waitForSelector("#sync-result[data-state]", { timeout: 35000 });
      assert.equal(await page.getAttribute("#sync-result", "data-state"), "online", await page.textContent("#sync-result"));
      assert.match(await page.textContent("#sync-result"), /^Synced/);
    }
    async function inventory(page) {
      await page.click("#nav-inventory");
      await page.waitForSelector("#view-inventory:not([aria-busy]) #inventory-table");
    }
    // The inventory is drawn again after each answer: wait (up to 10 s) until none of `kits` is listed.
    async function gone(page, kits, what) {
      await page.waitForFunction((ks) => document.querySelector("#inventory-table") &&
        ks.every((k) => !document.querySelector(`[data-kit-row="${k}"]`)), kits, { timeout: 10000 })
        .catch(() => assert.fail(what + ": still listed"));
    }
    const rowStatus = (page, kit) => page.$eval(`[data-kit-row="${kit}"]`, (r) => r.dataset.status).catch(() => null);
    // Hands `kits` over from the page's inventory, choosing `to` from the list; returns the options offered.
    async function handOver(page, kits, to, reason) {
      for (const k of kits) await page.check(`[data-select="${k}"]`);
      await page.click("#handover-selected");
      await page.waitForSelector("#sign-dialog[open] #sign-choice");
      assert.ok(!(await page.isVisible("#sign-text")), "the node is chosen from the list, not typed");
      const options = await page.$$eval("#sign-choice option", (os) => os.map((o) => [o.value, o.textContent]));
      await page.selectOption("#sign-choice", to);
      await page.fill("#sign-reason", reason);
      return options;
    }
    async function assertBlind(page, who) {
      const html = await page.content();
      const text = await page.evaluate(() => document.body.innerText);
      for (const w of FORBIDDEN_FOR_BLINDED) assert.ok(!html.includes(w) && !text.includes(w), who + " sees " + w);
      assert.equal(await page.$(".arm, #p-arm, .arm-cell"), null, who + " sees an arm element");
    }

    // ---- The site node: the pharmacist receives the initial shipment, then syncs.
    await login(sitePage, site.base, PHARMACIST);
    await inventory(sitePage);
    await sitePage.click("[data-kind=initial] [data-receive-all]");
    await sitePage.waitForFunction(() => /^Receipt of shipment .* recorded: \d+ received/.test(document.querySelector("#message").textContent));
    await syncNow(sitePage);

    // ---- Three kits to the tablet, the tablet chosen from the site's nodes.
    await inventory(sitePage);
    const taken = (await sitePage.$$eval("[data-select]", (cs) => cs.map((c) => c.dataset.select))).slice(0, 3);
    assert.equal(taken.length, 3);
    const offered = await handOver(sitePage, taken, tablet.id, "home visits this week");
    assert.deepEqual(offered, [[tablet.id, tablet.id + " (a nurse's tablet)"]], "the site's other nodes, from the hub's roster");
    await shot(sitePage, "1-site-hand-over-choose-tablet");
    await sitePage.click("#sign-confirm");
    await sitePage.waitForFunction((t) => document.querySelector("#message").textContent.startsWith("3 kits handed over to " + t + ": in transit"), tablet.id);
    // In transit at once; the node also syncs right after a local action, so the
    // hub may already have moved them (then they are no longer listed here).
    for (const k of taken) assert.ok(["shipped", null].includes(await rowStatus(sitePage, k)), "kit " + k + " in transit or moved");
    if (await rowStatus(sitePage, taken[0]))
      assert.match(await sitePage.textContent(`[data-kit-row="${taken[0]}"]`), new RegExp("In transit to node " + tablet.id));
    await shot(sitePage, "2-site-kits-in-transit");
    // The site node syncs: the hub moves custody, the kits leave its stock.
    await syncNow(sitePage);
    await inventory(sitePage);
    await gone(sitePage, taken, "the kits handed over left the site node");

    // ---- The tablet syncs; the nurse receives the kits by scanning them.
    await login(tabletPage, tablet.base, NURSE);
    await syncNow(tabletPage);
    await inventory(tabletPage);
    const card = "[data-kind=handover]";
    await tabletPage.waitForSelector(card);
    const shipment = await tabletPage.getAttribute(card, "data-shipment");
    assert.match(shipment, new RegExp("^HND-" + site.id + "-\\d+$"));
    assert.equal(await tabletPage.textContent(card + " h2"), "Kits handed over to this node (" + shipment + ") to receive");
    assert.deepEqual((await tabletPage.$$eval(card + " [data-row]", (rs) => rs.map((r) => r.dataset.row))).sort(), [...taken].sort());
    for (const k of taken) {
      await tabletPage.fill(card + " [data-scan]", k);
      await tabletPage.press(card + " [data-scan]", "Enter");
    }
    assert.equal(await tabletPage.textContent(card + " [data-checked]"), "3");
    await assertBlind(tabletPage, "nurse (handover to receive)");
    await shot(tabletPage, "3-tablet-handover-scanned");
    await tabletPage.click(card + " [data-receive]");
    await tabletPage.waitForFunction((s) => document.querySelector("#message").textContent === "Receipt of shipment " + s + " recorded: 3 received, 0 damaged, 0 missing.", shipment);
    for (const k of taken) assert.equal(await rowStatus(tabletPage, k), "available");
    await assertBlind(tabletPage, "nurse (kits received)");
    await shot(tabletPage, "4-tablet-kits-received");

    // ---- The nurse hands one kit back to the site node the same way; both sync.
    const back = taken[0];
    const offeredBack = await handOver(tabletPage, [back], site.id, "not needed this week");
    assert.deepEqual(offeredBack, [[site.id, site.id + " (the site node)"]]);
    await shot(tabletPage, "5-tablet-hand-back-choose-site-node");
    await tabletPage.click("#sign-confirm");
    await tabletPage.waitForFunction((t) => document.querySelector("#message").textContent.startsWith("1 kit handed over to " + t + ": in transit"), site.id);
    assert.ok(["shipped", null].includes(await rowStatus(tabletPage, back)), "in transit or already moved");
    await syncNow(tabletPage);
    await inventory(tabletPage);
    await gone(tabletPage, [back], "the kit handed back left the tablet");
    await assertBlind(tabletPage, "nurse (kit handed back)");

    await sitePage.bringToFront();
    await syncNow(sitePage);
    await inventory(sitePage);
    await sitePage.waitForSelector(card);
    assert.match(await sitePage.getAttribute(card, "data-shipment"), new RegExp("^HND-" + tablet.id + "-\\d+$"));
    await sitePage.click(card + " [data-receive-all]");
    await sitePage.waitForFunction(() => /^Receipt of shipment HND-.* recorded: 1 received/.test(document.querySelector("#message").textContent));
    assert.equal(await rowStatus(sitePage, back), "available", "the kit is in the site node's stock again");
    await shot(sitePage, "6-site-kit-back");

    assert.deepEqual(problems, [], "the browser reported Content-Security-Policy violations or page errors");
    fs.writeFileSync(path.join(dir, "accessibility.json"), JSON.stringify(accessibility, null, 1));
    const others = Object.entries(accessibility).flatMap(([screen, vs]) => vs.map((v) => screen + ": " + v.impact + " " + v.id));
    console.log("browser: axe-core checked " + Object.keys(accessibility).length + " screens: no critical violation" +
                (others.length ? "; others: " + others.join(", ") : "; no other violation"));
    console.log("browser: handover " + viewport.width + "x" + viewport.height + " passed in " + ((Date.now() - started) / 1000).toFixed(1) +
                " s; screenshots in " + dir);
  } finally {
    if (context) await context.close().catch(() => {});
    for (const s of servers.reverse()) await s.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  process.exitCode = 1;  // until every check has passed, whatever ends the run
  fs.mkdirSync(outDir, { recursive: true });
  const browserArgs = {
    executablePath: CHROMIUM, headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  };
  for (const viewport of VIEWPORTS) await scenario(browserArgs, viewport);
  console.log("browser: handover between two nodes passed at " + VIEWPORTS.map((v) => v.width + "x" + v.height).join(" and "));
  process.exitCode = 0;
}

main().catch((e) => { console.error("browser: handover between two nodes FAILED:", e && e.stack ? e.stack : e); process.exit(1); });
