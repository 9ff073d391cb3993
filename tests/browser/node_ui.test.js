// The node's web UI in Debian's headless Chromium, driven by Playwright:
// a coordinator logs in, screens (the answer lost once: the retry with the
// same Idempotency-Key creates one participant), randomizes and sees kit
// numbers but no arm; an investigator breaks the code and sees the arm; a
// pharmacist sees arms in the inventory. A real irt-node serves a data directory prepared by
// irt-test-node-fixture (no hub: the node is offline and must say so).
// Usage: node node_ui.test.js IRT_NODE_BIN FIXTURE_BIN OUT_DIR
"use strict";
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const [nodeBin, fixtureBin, outDir] = process.argv.slice(2);
if (!nodeBin || !fixtureBin || !outDir) {
  console.error("usage: node node_ui.test.js IRT_NODE_BIN FIXTURE_BIN OUT_DIR");
  process.exit(2);
}
const CHROMIUM = process.env.IRT_CHROMIUM || "/usr/bin/chromium";
const FORBIDDEN_FOR_BLINDED = ["Velcardin", "Placebo", "VLC25", "PBO"];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on("error", reject);
  });
}

async function waitForHttp(url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try { const r = await fetch(url); if (r.ok) return; } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("irt-node did not answer at " + url);
}

async function main() {
  process.exitCode = 1;  // until every check has passed, whatever ends the run
  fs.mkdirSync(outDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "irt-browser-"));
  const data = path.join(work, "node");
  const summary = JSON.parse(execFileSync(fixtureBin, ["--data", data]).toString());
  const port = await freePort();
  const base = "http://127.0.0.1:" + port + "/";
  const log = fs.openSync(path.join(outDir, "irt-node.log"), "w");
  const node = spawn(nodeBin, ["serve", "--data", data, "--listen", "127.0.0.1:" + port],
                     { env: { ...process.env, IRT_PASSPHRASE: summary.passphrase }, stdio: ["ignore", log, log] });
  let context;
  try {
    await waitForHttp(base, 15000);
    context = await chromium.launchPersistentContext(path.join(work, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 768, height: 1024 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(10000);
    const shot = (name) => page.screenshot({ path: path.join(outDir, name + ".png"), fullPage: true });

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

    // The coordinator: offline, screens, randomizes, sees kit numbers and no arm.
    await login("carla");
    await page.waitForFunction(() => document.querySelector("#conn-text").textContent === "Offline");
    assert.equal(await page.textContent("#last-sync"), "never");
    const participantCount = () => page.evaluate(async () => {
      const r = await fetch("/api/v1/participants", { headers: { Authorization: "Bearer " + sessionStorage.getItem("irt-token") } });
      return (await r.json()).participants.length;
    });
    const screenedBefore = await participantCount();
    await page.click("#nav-screen");
    await page.selectOption("#factor-diabetes", "no");
    for (let i = 0; i < 5; i++) await page.click("#elig-" + i + " button[data-v=yes]");
    // The screen request reaches the node but its answer is lost on the way
    // back: the UI retries with the same Idempotency-Key and the node applies it once.
    const keys = [];
    let lost = false;
    await page.route("**/api/v1/participants", async (route) => {
      const req = route.request();
      if (req.method() !== "POST") return route.continue();
      keys.push(req.headers()["idempotency-key"]);
      if (lost) return route.continue();
      lost = true;
      await route.fetch();
      return route.abort("connectionreset");
    });
    await page.click("#screen-submit");
    await page.waitForSelector("#p-number");
    await page.unroute("**/api/v1/participants");
    const number = await page.textContent("#p-number");
    assert.match(number, /^101-\d{3}$/);
    assert.equal(keys.length, 2, "one retry after the lost answer");
    assert.match(keys[0], /^[0-9a-f]{32}$/);
    assert.equal(keys[1], keys[0], "the retry carries the same Idempotency-Key");
    assert.equal(await participantCount(), screenedBefore + 1, "the retried screening created one participant");
    const randomizeKeys = [];
    page.on("request", (r) => { if (r.url().endsWith("/randomize")) randomizeKeys.push(r.headers()["idempotency-key"]); });
    await page.click("#action-randomize");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForSelector("#randomize-result");
    const result = await page.textContent("#randomize-result");
    assert.equal(randomizeKeys.length, 1);
    assert.match(randomizeKeys[0], /^[0-9a-f]{32}$/);
    assert.notEqual(randomizeKeys[0], keys[0], "each action has its own key");
    assert.match(result, /Randomized: R\d\d-\d{4}/);
    const kit = summary.first_shipment.kits.find((k) => result.includes(k));
    assert.ok(kit, "the randomization shows a kit number of the site's stock: " + result);
    assert.equal(await page.$("#p-arm"), null);
    const coordinatorPage = await page.content();
    for (const w of FORBIDDEN_FOR_BLINDED) assert.ok(!coordinatorPage.includes(w), "coordinator sees " + w);
    // Tablet layout: nothing wider than the screen, touch targets at least 44 px high.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 768), "page wider than 768 px");
    const small = await page.evaluate(() => [...document.querySelectorAll("button")]
      .filter((b) => b.offsetParent !== null && b.getBoundingClientRect().height < 44).map((b) => b.textContent));
    assert.deepEqual(small, []);
    await shot("1-coordinator-randomized");
    await page.click("#nav-inventory");
    await page.waitForSelector("#inventory-table");
    const blindInventory = await page.content();
    for (const w of FORBIDDEN_FOR_BLINDED) assert.ok(!blindInventory.includes(w), "coordinator inventory shows " + w);
    await shot("2-coordinator-inventory");
    await logout();

    // The investigator breaks the code and sees the arm.
    await login("ines");
    await page.click(`[data-participant="${number}"]`);
    await page.click("#action-unblind");
    await page.fill("#sign-reason", "anaphylaxis, treating physician needs the allocation");
    await page.fill("#sign-password", summary.password);
    await page.click("#sign-confirm");
    await page.waitForSelector("#unblind-result");
    const broken = await page.textContent("#unblind-result");
    assert.match(broken, /Code broken: (Velcardin 25 mg once daily|Placebo once daily)/);
    await shot("3-investigator-code-break");
    await logout();

    // The pharmacist is unblinded: arms in the inventory and on the participant.
    await login("paul");
    await page.click("#nav-inventory");
    await page.waitForSelector("#inventory-table");
    const cells = await page.$$eval("#inventory-table .arm-cell", (tds) => tds.map((t) => t.textContent));
    assert.ok(cells.some((c) => /Velcardin|Placebo/.test(c)), "pharmacist sees arms: " + cells.join(","));
    await page.click("#nav-participants");
    await page.waitForSelector(`[data-participant="${number}"] .arm`);
    await shot("4-pharmacist-participants");
    console.log("browser: node web UI passed; screenshots in " + outDir);
    process.exitCode = 0;
  } finally {
    if (context) await context.close().catch(() => {});
    // A node that already exited (it failed to start) sends no second "exit":
    // waiting for one would drain the event loop and end the run with status 0.
    if (node.exitCode === null && node.signalCode === null) {
      const exited = new Promise((r) => node.once("exit", r));
      node.kill("SIGTERM");
      await exited;
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error("browser: node web UI FAILED:", e && e.stack ? e.stack : e); process.exit(1); });
