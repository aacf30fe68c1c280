// Quick side-by-side for issue 13 (not part of `npm run bench` yet): CPU of a worker without room
// members while another worker's rooms are busy. 1 host x 3 workers (test/fixtures/adapter-app),
// 20 rooms of 5 members all on one worker, MESSAGES room broadcasts (default 6,000) emitted by 10
// of the members (ack per emit, so the rate is whatever the machine sustains); prints the CPU time
// (/proc, Linux only) one of the other workers used meanwhile. Usage, with ROOT a built checkout:
//   node bench/quick/rooms-idle-worker.cjs ROOT          (RECOVERY=off to turn recovery off)
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const root = process.argv[2];
const { io } = require(root + "/node_modules/socket.io-client");
const MESSAGES = Number(process.env.MESSAGES ?? 6000);
const ticks = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return Number(f[11]) + Number(f[12]); };
(async () => {
  const child = spawn(process.execPath, [root + "/dist/src/cli.js", "--port", "0", "--host", "127.0.0.1", "--workers", "3", "--app", root + "/dist/test/fixtures/adapter-app.js", "--recovery", process.env.RECOVERY ?? "on"], { env: { ...process.env, LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "inherit"] });
  const killTimer = setTimeout(() => { child.kill("SIGKILL"); process.exit(2); }, 180_000);
  let port;
  await new Promise((resolve) => { let buf = ""; child.stdout.on("data", (d) => { buf += d; for (const line of buf.split("\n")) { try { const j = JSON.parse(line); if (j.msg === "ready") { port = j.port; resolve(); } } catch {} } }); });
  const url = `http://127.0.0.1:${port}`;
  const byPid = new Map();
  const all = [];
  while (all.length < 400 && ![...byPid.values()].every((c) => c.length >= 100) || byPid.size < 3) {
    const s = io(url, { forceNew: true, transports: ["websocket"] });
    await new Promise((r) => s.once("connect", r));
    all.push(s);
    const me = await s.timeout(5000).emitWithAck("whoami");
    byPid.set(me.pid, [...(byPid.get(me.pid) ?? []), s]);
    if (all.length > 1000) throw new Error("spread");
  }
  const pids = [...byPid.keys()];
  const [a, , c] = pids;
  const members = byPid.get(a).slice(0, 100);
  for (let i = 0; i < 100; i++) await members[i].timeout(5000).emitWithAck("join", `room-${i % 20}`);
  let got = 0;
  for (const m of members) m.on("event", () => got++);
  const t0 = ticks(c), w0 = Date.now();
  const senders = members.slice(0, 10);
  let sent = 0;
  await Promise.all(senders.map(async (s) => { while (sent < MESSAGES) { const n = sent++; await s.timeout(5000).emitWithAck("to-room", `room-${n % 20}`, { n, pad: "x".repeat(100) }); } }));
  while (got < MESSAGES * 5 && Date.now() - w0 < 30000) await new Promise((r) => setTimeout(r, 50));
  const t1 = ticks(c), w1 = Date.now();
  console.log(JSON.stringify({ root, recovery: process.env.RECOVERY ?? "on", messages: MESSAGES, delivered: got, seconds: (w1 - w0) / 1000, idleWorkerCpuMs: (t1 - t0) * 10, idleWorkerCpuPct: +((t1 - t0) * 10 / (w1 - w0) * 100).toFixed(1) }));
  for (const s of all) s.close();
  clearTimeout(killTimer);
  child.kill("SIGTERM");
  child.on("exit", () => process.exit(0));
})();
