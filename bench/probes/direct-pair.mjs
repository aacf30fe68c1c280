// Paired A/B of --direct-writes: two 1-worker hosts of this build (on, off), the same clients on
// each, bursts of broadcasts run alternately on one then the other, worker CPU per delivery read
// from /proc for each burst. Alternating within seconds keeps the other load of a shared machine
// about the same for both, so the per-pair ratio is the figure to quote.
// Usage (after npm run build): node bench/probes/direct-pair.mjs [clients=200] [pairs=6] [rate=250] [seconds=3]
// PAIR_ARGS="--recovery off" adds flags to every host; PAIR_BASE_CLI=/other/dist/src/cli.js adds a
// third host, "base", of another build (say, main) with the same flags, in the same rotation.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const cli = path.join(root, "dist", "src", "cli.js");
const app = path.join(root, "dist", "test", "fixtures", "adapter-app.js");
const [clients = 200, pairs = 6, rate = 250, seconds = 3] = process.argv.slice(2).map(Number);
const ticks = 100; // USER_HZ on Linux

function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

const extra = (process.env.PAIR_ARGS ?? "").split(" ").filter((a) => a !== "");

function startHost(direct, build = cli) {
  const flags = direct === "base" ? [] : ["--direct-writes", direct];
  const child = spawn(process.execPath, [build, "--port", "0", "--host", "127.0.0.1", "--workers", "1", "--app", app, "--max-events-per-second", "0", "--admin-port", "0", ...flags, ...extra], {
    env: { ...process.env, LOG_FORMAT: "json", LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const host = { child, port: 0, worker: 0, direct };
    const timer = setTimeout(() => reject(new Error(`host --direct-writes ${direct} not ready in 30 s`)), 30_000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      let l;
      try { l = JSON.parse(line); } catch { return; }
      if (l.msg === "worker ready") host.worker = l.workerPid;
      if (l.msg === "ready") {
        host.port = l.port;
        host.admin = l.adminPort;
      }
      if (host.port && host.worker) { clearTimeout(timer); resolve(host); }
    });
  });
}

/** A raw Socket.IO client that answers pings and counts "event" frames. */
function connectClient(port, counter) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    ws.on("message", (data) => {
      const s = data.toString();
      if (s === "2") ws.send("3");
      else if (s.startsWith("0{")) ws.send("40");
      else if (s.startsWith("40")) resolve(ws);
      else if (s.startsWith('42["event"')) counter.n++;
      else if (s.startsWith("43")) counter.ack?.(s);
    });
    ws.on("error", reject);
  });
}

async function burst(host, publisher, counter) {
  const before = cpuSeconds(host.worker);
  const received = counter.n;
  const count = rate * seconds;
  await new Promise((resolve) => {
    counter.ack = resolve;
    publisher.send(`421["broadcast-many",{"count":${count},"perSecond":${rate},"bytes":64}]`);
  });
  const expected = received + count * clients;
  const deadline = Date.now() + 10_000;
  while (counter.n < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { cpu: cpuSeconds(host.worker) - before, deliveries: counter.n - received };
}

const hosts = [await startHost("on"), await startHost("off")];
if (process.env.PAIR_BASE_CLI) hosts.push(await startHost("base", process.env.PAIR_BASE_CLI));
try {
  const groups = [];
  for (const host of hosts) {
    const counter = { n: 0 };
    const sockets = [];
    for (let i = 0; i < clients; i++) sockets.push(await connectClient(host.port, counter));
    groups.push({ host, counter, sockets, publisher: sockets[0] });
  }
  await new Promise((r) => setTimeout(r, 1000));
  const ratios = { off: [], base: [] };
  for (let p = 0; p < pairs; p++) {
    // Rotated, so that no host always runs first or last.
    const order = groups.map((_, i) => groups[(i + p) % groups.length]);
    const r = {};
    for (const g of order) r[g.host.direct] = await burst(g.host, g.publisher, g.counter);
    const us = (x) => (x.cpu / x.deliveries) * 1e6;
    const line = Object.entries(r).map(([k, x]) => `${k} ${us(x).toFixed(2)} us/delivery (${x.deliveries})`).join(", ");
    const vs = Object.keys(ratios).filter((k) => r[k]).map((k) => {
      ratios[k].push(us(r.on) / us(r[k]));
      return `on/${k} ${(us(r.on) / us(r[k])).toFixed(3)}`;
    });
    process.stdout.write(`pair ${p + 1}: ${line}, ${vs.join(", ")}\n`);
  }
  for (const [k, list] of Object.entries(ratios)) {
    if (list.length === 0) continue;
    list.sort((a, b) => a - b);
    process.stdout.write(`median on/${k} ${list[Math.floor(list.length / 2)].toFixed(3)} (min ${list[0].toFixed(3)}, max ${list.at(-1).toFixed(3)}) over ${pairs} pairs, ${clients} clients, ${rate} broadcasts/s${extra.length ? `, ${extra.join(" ")}` : ""}\n`);
  }
  for (const g of groups) {
    const text = await (await fetch(`http://127.0.0.1:${g.host.admin}/metrics`)).text();
    const sum = (name) => text.split("\n").filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    process.stdout.write(`--direct-writes ${g.host.direct}: ${sum("sockfleet_direct_writes_total")} direct of ${sum("sockfleet_events_emitted_total")} deliveries\n`);
    for (const s of g.sockets) s.terminate();
  }
} finally {
  for (const h of hosts) h.child.kill("SIGTERM");
}
