// What the browser tests share to run real processes: a free loopback port,
// an irt-hub or irt-node `serve` stopped with SIGTERM, and JSON calls to an
// /api/v1 (the hub's or a node's). Used by hub_ui, node_ui and node_handover.test.js.
"use strict";
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on("error", reject);
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Server {  // a real irt-hub or irt-node serve, its output appended to logPath
  constructor(bin, args, logPath, env) {
    const log = fs.openSync(logPath, "a");
    this.proc = spawn(bin, args, { env: env || process.env, stdio: ["ignore", log, log] });
  }
  async waitFor(url) {
    const until = Date.now() + 20000;
    while (Date.now() < until) {
      if (this.proc.exitCode !== null) throw new Error("the process behind " + url + " exited");
      try { await fetch(url); return; } catch (e) { /* not yet */ }
      await sleep(100);
    }
    throw new Error(url + " did not answer");
  }
  async stop() {
    // A process that already exited sends no second "exit": waiting for one
    // would drain the event loop and end the run with status 0.
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await exited;
  }
}

async function call(base, method, p, token, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(base + "/api/v1" + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: (() => { try { return JSON.parse(text); } catch (e) { return null; } })() };
}
async function ok(base, method, p, token, body) {
  const r = await call(base, method, p, token, body);
  assert.ok(r.status >= 200 && r.status < 300, method + " " + p + " answered " + r.status + ": " + r.text);
  return r.json;
}

module.exports = { freePort, sleep, Server, call, ok };
