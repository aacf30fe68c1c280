// Paired A/B of --direct-writes: two 1-worker hosts of this build (on, off), the same clients on
// each, bursts of broadcasts run alternately on one then the other, worker CPU per delivery read
// from /proc for each burst. Alternating within seconds keeps the other load of a shared machine
// about the same for both, so the per-pair ratio is the figure to quote.
// Usage (after npm run build): node bench/probes/direct-pair.mjs [clients=200] [pairs=6] [rate=250] [seconds=3]
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

function startHost(direct) {
  const child = spawn(process.execPath, [cli, "--port", "0", "--host", "127.0.0.1", "--workers", "1", "--app", app, "--max-events-per-second", "0", "--admin-port", "0", "--direct-writes", direct], {
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
try {
  const groups = [];
  for (const host of hosts) {
    const counter = { n: 0 };
    const sockets = [];
    for (let i = 0; i < clients; i++) sockets.push(await connectClient(host.port, counter));
    groups.push({ host, counter, sockets, publisher: sockets[0] });
  }
  await new Promise((r) => setTimeout(r, 1000));
  const ratios = [];
  for (let p = 0; p < pairs; p++) {
    const order = p % 2 === 0 ? groups : [...groups].reverse();
    const r = {};
    for (const g of order) r[g.host.direct] = await burst(g.host, g.publisher, g.counter);
    const us = (x) => (x.cpu / x.deliveries) * 1e6;
    ratios.push(us(r.on) / us(r.off));
    process.stdout.write(`pair ${p + 1}: on ${us(r.on).toFixed(2)} us/delivery (${r.on.deliveries}), off ${us(r.off).toFixed(2)} us/delivery (${r.off.deliveries}), on/off ${(us(r.on) / us(r.off)).toFixed(3)}\n`);
  }
  ratios.sort((a, b) => a - b);
  process.stdout.write(`median on/off ${ratios[Math.floor(ratios.length / 2)].toFixed(3)} (min ${ratios[0].toFixed(3)}, max ${ratios.at(-1).toFixed(3)}) over ${pairs} pairs, ${clients} clients, ${rate} broadcasts/s\n`);
  for (const g of groups) {
    const text = await (await fetch(`http://127.0.0.1:${g.host.admin}/metrics`)).text();
    const sum = (name) => text.split("\n").filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    process.stdout.write(`--direct-writes ${g.host.direct}: ${sum("sockfleet_direct_writes_total")} direct of ${sum("sockfleet_events_emitted_total")} deliveries\n`);
    for (const s of g.sockets) s.terminate();
  }
} finally {
  for (const h of hosts) h.child.kill("SIGTERM");
}
