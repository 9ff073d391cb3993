// The hub's dashboard (hub/web_ui.h) in Debian's headless Chromium, driven by
// Playwright, at a 1280x900 laptop and an 800x1200 portrait tablet.
// A seeded study, all real processes: `irt-hub init` and `serve`, two site
// nodes enrolled with one-time tokens (irt-node enroll), where coordinators
// receive their shipments, screen and randomize through the node's API
// (irt-node serve), record an early visit (a deviation), and push it all to
// the hub (irt-node sync). Then, per viewport:
// - the page's headers: a Content-Security-Policy without 'unsafe-inline',
//   frame-ancestors 'none', nosniff, no referrer; API answers not cached;
//   no console error (a blocked inline script or style would show there);
// - the blinded study manager: pages for enrollment, inventory, nodes,
//   deviations, audit and users, but none for allocation; the enrollment and
//   inventory plots drawn from the API's numbers; every JSON answer the pages
//   fetched, the markup and the text hold no arm, arm name or kit type; the
//   allocation route refuses the manager's session; a deviation acknowledged
//   with a comment and an e-signature;
// - the unblinded statistician: the allocation page, its plot per arm and
//   stratum from the API's numbers, arm names on screen;
// - exports: the manager downloads a blinded export from the Exports page
//   (fetch + Blob, the file named after the study, what and format) and the
//   file holds no arm; the statistician downloads the unblinded
//   randomizations after a reason and an e-signature, and that file does;
// - webhooks: the manager's Webhooks page lists the EDC subscription added
//   at seeding (to a receiver that is down) and its pending deliveries;
// - nothing wider than the screen; every screen with a screenshot passes
//   axe-core with no critical violation.
// Screenshots and axe results (accessibility.json) go to OUT_DIR/hub/<width>x<height>/.
// Usage: node hub_ui.test.js IRT_HUB_BIN IRT_NODE_BIN SOURCE_DIR OUT_DIR
"use strict";
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");
const { freePort, Server, call, ok } = require("./processes.js");
const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [hubBin, nodeBin, sourceDir, outRoot] = process.argv.slice(2);
if (!hubBin || !nodeBin || !sourceDir || !outRoot) {
  console.error("usage: node hub_ui.test.js IRT_HUB_BIN IRT_NODE_BIN SOURCE_DIR OUT_DIR");
  process.exit(2);
}
const outDir = path.join(outRoot, "hub");
const CHROMIUM = process.env.IRT_CHROMIUM || "/usr/bin/chromium";
const STUDY = path.join(sourceDir, "packaging/examples/study-blocks.json");
const VIEWPORTS = [{ width: 1280, height: 900 }, { width: 800, height: 1200 }];
const PASSPHRASE = "browser test passphrase for the site nodes";
const ADMIN = { name: "ada.admin", password: "admin-pass-1234" };
const USERS = [
  { name: "ines.manager", role: "study-manager", sites: "", password: "manager-pass-123" },
  { name: "uma.statistician", role: "unblinded-statistician", sites: "", password: "statistician-pass-123" },
  { name: "ana.coordinator", role: "coordinator", sites: "101", password: "coordinator-101-pass" },
  { name: "ben.coordinator", role: "coordinator", sites: "102", password: "coordinator-102-pass" },
];
const password = (name) => USERS.find((u) => u.name === name).password;

const study = JSON.parse(fs.readFileSync(STUDY, "utf8"));
// What a blinded reader must never receive: arm names, kit type names and ids,
// and the fields that carry an allocation.
const FORBIDDEN_WORDS = [...study.arms.map((a) => a.name), ...study.kit_types.flatMap((k) => [k.name, k.id]), "Placebo"];
const FORBIDDEN_KEYS = ["arm", "arms", "kit_type", "kit_types", "allocation"];

// The hub's keys are wrapped under their own passphrase (docs/hub.md).
const env = { ...process.env, IRT_PASSPHRASE: PASSPHRASE, IRT_HUB_PASSPHRASE: "test hub passphrase" };
const run = (bin, args, input) => execFileSync(bin, args, { env, input: input || "", stdio: ["pipe", "pipe", "pipe"] }).toString();

// The hub with two nodes that pushed: 101 randomizes 4 (one of them back
// early for V2, a deviation), 102 randomizes 2.
async function seed(work) {
  const hubData = path.join(work, "hub");
  run(hubBin, ["init", "--data", hubData, "--study", STUDY, "--kdf-cost", "min"]);
  run(hubBin, ["user", "add", "--data", hubData, "--name", ADMIN.name, "--role", "admin"], ADMIN.password + "\n");
  for (const u of USERS)
    run(hubBin, ["user", "add", "--data", hubData, "--user", ADMIN.name, "--name", u.name, "--role", u.role, "--sites", u.sites],
        ADMIN.password + "\n" + u.password + "\n");
  const fingerprint = run(hubBin, ["fingerprint", "--data", hubData]).trim();
  const hubPort = await freePort();
  const hubUrl = "http://127.0.0.1:" + hubPort;
  const hub = new Server(hubBin, ["serve", "--data", hubData, "--listen", "127.0.0.1:" + hubPort, "--http"], path.join(outDir, "irt-hub.log"), env);
  await hub.waitFor(hubUrl + "/healthz");
  // An EDC webhook to a receiver that is down: its deliveries stay pending, with their attempts.
  const secretFile = path.join(work, "edc.secret");
  fs.writeFileSync(secretFile, "browser test shared secret\n");
  run(hubBin, ["webhook", "add", "--data", hubData, "--url", "http://127.0.0.1:" + (await freePort()) + "/edc", "--events",
               "participant.randomized,kit.dispensed", "--secret-file", secretFile, "--name", "edc", "--user", ADMIN.name],
      ADMIN.password + "\n");
  for (const [site, coordinator, participants] of [["101", "ana.coordinator", ["no", "yes", "no", "yes"]], ["102", "ben.coordinator", ["yes", "no"]]]) {
    const nodeData = path.join(work, "node-" + site);
    const token = run(hubBin, ["invite", "--data", hubData, "--site", site, "--user", ADMIN.name], ADMIN.password + "\n").trim();
    run(nodeBin, ["enroll", "--data", nodeData, "--hub", hubUrl, "--hub-fingerprint", fingerprint, "--kdf-cost", "interactive"],
        token + "\n");
    const port = await freePort();
    const base = "http://127.0.0.1:" + port;
    const node = new Server(nodeBin, ["serve", "--data", nodeData, "--listen", "127.0.0.1:" + port, "--sync-interval", "3600"],
                            path.join(outDir, "irt-node-" + site + ".log"), env);
    try {
      await node.waitFor(base + "/");
      const t = (await ok(base, "POST", "/login", "", { user: coordinator, password: password(coordinator) })).token;
      const shipments = await ok(base, "GET", "/shipments", t);
      const shipment = shipments.shipments[0];
      await ok(base, "POST", "/shipments/" + shipment.shipment + "/receive", t,
               { kits: shipment.kits.map((k) => ({ kit: k.kit, condition: "received" })) });
      let first = null;
      for (const diabetes of participants) {
        const p = (await ok(base, "POST", "/participants", t, { factors: { diabetes }, eligibility: ["yes", "yes", "yes", "yes", "yes"] })).participant.participant;
        await ok(base, "POST", "/participants/" + p + "/randomize", t, { signature_password: password(coordinator) });
        first = first || p;
      }
      if (site === "101")
        await ok(base, "POST", "/participants/" + first + "/dispense", t,
                 { visit: "V2", override_reason: "participant travels during the Week 4 window", signature_password: password(coordinator) });
    } finally {
      await node.stop();
    }
    run(nodeBin, ["sync", "--data", nodeData]);
  }
  return { hub, hubUrl };
}

// Every key and string of a JSON answer: none may carry an allocation.
function leaks(value, where, out) {
  if (Array.isArray(value)) value.forEach((v, i) => leaks(v, where + "[" + i + "]", out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.includes(k)) out.push(where + "." + k);
      leaks(v, where + "." + k, out);
    }
  } else if (typeof value === "string") {
    for (const w of FORBIDDEN_WORDS) if (value.includes(w)) out.push(where + ": " + w);
    for (const a of study.arms) if (value === a.id) out.push(where + ": arm id " + a.id);
  }
  return out;
}

async function scenario(viewport, hubUrl, profile) {
  const dir = path.join(outDir, viewport.width + "x" + viewport.height);
  fs.mkdirSync(dir, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport, acceptDownloads: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    const problems = [];
    // (The browser logs the 401 of the deliberately wrong signature below; nothing else may fail.)
    page.on("console", (m) => {
      if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push("console: " + m.text());
    });
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    // Every JSON answer of the API the page fetched, by the user logged in.
    let fetched = [];
    page.on("response", async (r) => {
      if (!r.url().includes("/api/v1/")) return;
      try { fetched.push({ url: r.url(), status: r.status(), body: await r.json() }); } catch (e) { /* not JSON */ }
    });
    const accessibility = {};
    async function shot(name) {
      await page.screenshot({ path: path.join(dir, name + ".png"), fullPage: true });
      if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(AXE_SOURCE);
      const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })));
      accessibility[name] = violations;
      assert.deepEqual(violations.filter((v) => v.impact === "critical"), [], name + ": critical accessibility violations");
      assert.ok(await page.evaluate((w) => document.documentElement.scrollWidth <= w, viewport.width), name + ": page wider than " + viewport.width + " px");
    }
    const pagesOf = () => page.$$eval("#nav button", (bs) => bs.map((b) => b.dataset.view));
    async function login(user) {
      fetched = [];
      await page.goto(hubUrl + "/");
      await page.fill("#login-user", user);
      await page.fill("#login-password", password(user));
      await page.click("#login-button");
      await page.waitForSelector("#nav:not(.hidden)");
    }
    async function visit(view) {
      await page.click("#nav-" + view);
      await page.waitForSelector("#view-" + view + ":not(.hidden)");
    }
    // The numbers a Chart.js chart drew, per dataset label.
    const drawn = (canvas) => page.evaluate((id) => {
      const c = window.Chart.getChart(document.getElementById(id));
      return c ? { labels: c.data.labels, datasets: c.data.datasets.map((d) => ({ label: d.label, data: d.data })) } : null;
    }, canvas);
    async function waitForChart(canvas) {
      await page.waitForFunction((id) => window.Chart && window.Chart.getChart(document.getElementById(id)), canvas);
      return drawn(canvas);
    }

    // ---- The page and its headers.
    const index = await fetch(hubUrl + "/");
    const csp = index.headers.get("content-security-policy");
    assert.ok(csp && !csp.includes("unsafe-inline") && csp.includes("frame-ancestors 'none'") && csp.includes("script-src 'self'"), "CSP: " + csp);
    assert.equal(index.headers.get("x-content-type-options"), "nosniff");
    assert.equal(index.headers.get("referrer-policy"), "no-referrer");
    await page.goto(hubUrl + "/");
    await page.waitForSelector("#view-login:not(.hidden)");
    await shot("0-login");

    // ---- The blinded study manager.
    await login("ines.manager");
    assert.deepEqual(await pagesOf(), ["enrollment", "inventory", "nodes", "deviations", "audit", "users", "exports", "webhooks"],
                     "the manager's pages");
    const enrollment = await waitForChart("chart-enrollment");
    const api = fetched.find((f) => f.url.endsWith("/api/v1/dashboard/enrollment")).body;
    assert.equal(api.randomized, 6);
    assert.deepEqual(enrollment.labels, api.dates, "the plot's dates are the API's");
    assert.deepEqual(enrollment.datasets.map((d) => d.label), ["Randomized", "Forecast"]);
    assert.deepEqual(enrollment.datasets[0].data, api.actual.overall, "the plot's counts are the API's");
    assert.deepEqual(enrollment.datasets[1].data, api.forecast);
    assert.match(await page.textContent("#enrollment-summary"), /6 participants randomized/);
    assert.match(await page.textContent("#view-enrollment .freshness"), /not in these figures yet/);
    assert.match(await page.textContent("#view-enrollment .freshness"), /Node 101-N1 \(site 101\): last sync 20/);
    await shot("1-enrollment-manager");
    await page.selectOption("#enrollment-by", "site");
    const bySite = await drawn("chart-enrollment");
    assert.deepEqual(bySite.datasets.map((d) => d.label), ["Site 101", "Site 102", "Site 201"]);
    assert.equal(bySite.datasets[0].data.filter((v) => v != null).pop(), 4);
    await page.selectOption("#enrollment-by", "stratum");
    const byStratum = await drawn("chart-enrollment");
    // The study's strata: site x diabetes, each a series.
    assert.deepEqual(byStratum.datasets.map((d) => d.label), Object.keys(api.actual.stratum));
    assert.equal(byStratum.datasets.length, 6);
    assert.equal(byStratum.datasets.find((d) => d.label === "site=101;diabetes=yes").data.filter((v) => v != null).pop(), 2);
    await shot("2-enrollment-by-stratum");

    await visit("inventory");
    const custodians = await waitForChart("chart-custodians");
    const inventory = fetched.find((f) => f.url.endsWith("/api/v1/dashboard/inventory")).body;
    assert.deepEqual(custodians.labels, ["Depot EU-01", "Site 101", "Site 102", "Site 201"]);
    const received = custodians.datasets.find((d) => d.label === "received");
    assert.ok(received && received.data[1] > 0, "site 101's received kits are plotted");
    assert.equal(received.data[1], inventory.custodians[1].by_status.received);
    const expiry = await waitForChart("chart-expiry");
    assert.deepEqual(expiry.labels, inventory.expiry_months.map((m) => m.month));
    assert.match(await page.textContent("#inventory-table"), /at risk of passing their last dispensable day/);
    // The kits needed per week, as GET /api/v1/forecast gives them: totals only for a blinded reader.
    await page.waitForSelector("#needs-table table");
    const needs = fetched.find((f) => f.url.includes("/api/v1/forecast?")).body;
    const needRows = await page.$$eval("#needs-table tbody tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
    assert.equal(needRows.length, needs.sites.length + needs.depots.length);
    assert.equal(needRows[0][0], "Site " + needs.sites[0].site);
    assert.equal(needRows[0][1], String(needs.sites[0].weeks[0].kits));
    assert.ok(!("per_kit_type" in needs.sites[0].weeks[0]), "a blinded reader's forecast has no kit types");
    await shot("3-inventory");

    await visit("nodes");
    await page.waitForSelector("#nodes-table table");
    const nodesText = await page.textContent("#nodes-table");
    assert.ok(nodesText.includes("101-N1") && nodesText.includes("102-N1"), nodesText);
    assert.match(await page.textContent("#nodes-note"), /expected offline period \(14 days\)/);
    await shot("4-nodes");

    await visit("deviations");
    await page.waitForSelector("#deviations-table table");
    const ack = await page.$("#deviations-table button.ack");
    if (ack) {  // the first viewport acknowledges; the second sees it done
      await ack.click();
      await page.waitForSelector("#sign-dialog[open]");
      await shot("5-acknowledge-dialog");
      await page.click("#sign-confirm");
      assert.equal(await page.textContent("#sign-error"), "Write the comment first.");
      await page.fill("#sign-comment", "site retrained on visit windows");
      await page.fill("#sign-password", "not my password");
      await page.click("#sign-confirm");
      await page.waitForFunction(() => /wrong password/.test(document.getElementById("sign-error").textContent));
      await page.fill("#sign-password", password("ines.manager"));
      await page.click("#sign-confirm");
      await page.waitForFunction(() => /acknowledged and signed/.test(document.getElementById("message").textContent));
    }
    await page.uncheck("#deviations-open");
    await page.waitForFunction(() => /site retrained on visit windows/.test(document.getElementById("deviations-table").textContent));
    assert.match(await page.textContent("#deviations-table"), /visit_window/);
    assert.match(await page.textContent("#deviations-table"), /acknowledged/);
    await shot("6-deviations");

    await visit("audit");
    await page.waitForSelector("#audit-table table");
    await page.fill("#audit-user", "ines.manager");
    await page.click("#audit-form button[type=submit]");
    await page.waitForFunction(() => /deviation/.test(document.getElementById("audit-table").textContent));
    await shot("7-audit-filtered");
    await visit("users");
    await page.waitForSelector("#users-table table");
    assert.match(await page.textContent("#users-table"), /uma\.statistician/);
    await shot("8-users");

    // A blinded export, downloaded as a file: no arm in it.
    await visit("exports");
    assert.ok(await page.isHidden("#export-unblinded-box"), "the manager is offered an unblinded export");
    for (const format of ["csv", "json"]) {
      await page.selectOption("#export-what", "randomizations");
      await page.selectOption("#export-format", format);
      const [file] = await Promise.all([page.waitForEvent("download"), page.click("#export-download")]);
      assert.equal(file.suggestedFilename(), study.id + "-randomizations." + format);
      const text = fs.readFileSync(await file.path(), "utf8");
      assert.ok(text.includes("101-"), "the export lists the participants: " + text.slice(0, 200));
      for (const w of FORBIDDEN_WORDS) assert.ok(!text.includes(w), "the manager's export holds " + w);
      for (const a of study.arms) assert.ok(!new RegExp("[\",]" + a.id + "[\",\r\n]").test(text), "the manager's export holds arm " + a.id);
      await page.waitForFunction(() => /Downloaded .* \(blinded\)/.test(document.getElementById("message").textContent));
    }
    await shot("10-exports-manager");

    // The EDC webhook and its deliveries, pending while the receiver is down.
    await visit("webhooks");
    await page.waitForSelector("#deliveries-table table");
    const hooks = await page.textContent("#webhooks-table");
    assert.ok(hooks.includes("edc") && hooks.includes("participant.randomized"), hooks);
    assert.ok(!hooks.includes("browser test shared secret"));
    const deliveries = await page.textContent("#deliveries-table");
    assert.ok(deliveries.includes("participant.randomized") && deliveries.includes("kit.dispensed") && deliveries.includes("pending"), deliveries);
    await shot("11-webhooks");

    // Nothing the manager's pages fetched or show names an allocation.
    assert.ok(fetched.length >= 10, "the pages fetched " + fetched.length + " answers");
    for (const f of fetched) assert.deepEqual(leaks(f.body, f.url, []), [], "the blinded manager received an allocation");
    const html = await page.content();
    for (const w of FORBIDDEN_WORDS) assert.ok(!html.includes(w), "the manager's page shows " + w);
    assert.ok(!fetched.some((f) => f.url.includes("/dashboard/allocation")), "the manager's page asked for the allocation");
    const token = await page.evaluate(() => sessionStorage.getItem("irt-hub-token"));
    const refused = await call(hubUrl, "GET", "/dashboard/allocation", token);
    assert.equal(refused.status, 403, refused.text);
    assert.deepEqual(leaks(refused.json, "refusal", []), []);
    const answered = await call(hubUrl, "GET", "/dashboard/enrollment", token);
    assert.equal(answered.headers.get("cache-control"), "no-store");
    await page.click("#logout");
    await page.waitForSelector("#view-login:not(.hidden)");

    // ---- The unblinded statistician.
    await login("uma.statistician");
    assert.deepEqual(await pagesOf(), ["enrollment", "allocation", "deviations", "audit", "exports"], "the statistician's pages");
    await visit("allocation");
    const allocation = await waitForChart("chart-allocation");
    const balance = fetched.find((f) => f.url.endsWith("/api/v1/dashboard/allocation")).body;
    assert.deepEqual(allocation.labels, ["Overall", "site=101;diabetes=no", "site=101;diabetes=yes", "site=102;diabetes=no", "site=102;diabetes=yes"]);
    assert.deepEqual(allocation.datasets.map((d) => d.label), study.arms.map((a) => a.name + " (ratio " + a.ratio + ")"));
    assert.equal(allocation.datasets.reduce((n, d) => n + d.data[0], 0), 6, "every participant in one arm");
    assert.deepEqual(allocation.datasets.map((d) => d.data[0]), study.arms.map((a) => balance.overall[a.id]));
    assert.ok(leaks(balance, "allocation", []).length > 0, "the statistician receives the allocation");
    assert.match(await page.textContent("#allocation-table"), /Velcardin/);
    await shot("9-allocation-statistician");

    // The unblinded randomizations: a reason and the statistician's signature, then the file, with arms.
    await visit("exports");
    await page.waitForSelector("#export-unblinded-box:not(.hidden)");
    await page.selectOption("#export-unblinded-format", "csv");
    await page.click("#export-unblinded");
    await page.waitForSelector("#export-dialog[open]");
    await page.click("#export-confirm");
    assert.equal(await page.textContent("#export-error"), "Write why the export is unblinded first.");
    await page.fill("#export-reason", "interim analysis for the DMC");
    if (viewport === VIEWPORTS[0]) {  // one wrong signature in the run, well under the sign-in guard's limit
      await page.fill("#export-password", "not my password");
      await page.click("#export-confirm");
      await page.waitForFunction(() => /wrong password/.test(document.getElementById("export-error").textContent));
    }
    await shot("12-unblinded-export-dialog");
    await page.fill("#export-password", password("uma.statistician"));
    const [unblinded] = await Promise.all([page.waitForEvent("download"), page.click("#export-confirm")]);
    assert.equal(unblinded.suggestedFilename(), study.id + "-randomizations-unblinded.csv");
    const unblindedText = fs.readFileSync(await unblinded.path(), "utf8");
    assert.ok(study.arms.some((a) => unblindedText.includes(a.name) || unblindedText.includes("," + a.id + ",")), unblindedText.slice(0, 300));
    await page.waitForFunction(() => /unblinded, signed/.test(document.getElementById("message").textContent));

    assert.deepEqual(problems, [], "console errors");
    fs.writeFileSync(path.join(dir, "accessibility.json"), JSON.stringify(accessibility, null, 1));
    const others = Object.entries(accessibility).flatMap(([screen, vs]) => vs.map((v) => screen + ": " + v.impact + " " + v.id));
    console.log("browser: axe-core checked " + Object.keys(accessibility).length + " screens: no critical violation" +
                (others.length ? "; others: " + [...new Set(others)].join(", ") : "; no other violation"));
    console.log("browser: hub dashboard " + viewport.width + "x" + viewport.height + " passed; screenshots in " + dir);
  } finally {
    await context.close().catch(() => {});
  }
}

async function main() {
  process.exitCode = 1;  // until every check has passed, whatever ends the run
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "irt-hub-browser-"));
  let hub = null;
  try {
    const seeded = await seed(work);
    hub = seeded.hub;
    for (const viewport of VIEWPORTS) await scenario(viewport, seeded.hubUrl, path.join(work, "chromium-" + viewport.width));
  } finally {
    if (hub) await hub.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log("browser: hub dashboard passed at " + VIEWPORTS.map((v) => v.width + "x" + v.height).join(" and "));
  process.exitCode = 0;
}

main().catch((e) => { console.error("browser: hub dashboard FAILED:", e && e.stack ? e.stack : e); process.exit(1); });
