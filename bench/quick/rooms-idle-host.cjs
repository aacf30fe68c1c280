// Quick side-by-side for issue 13 (not part of `npm run bench` yet): CPU of a host without room
// members in bridge mode. Its own redis-server on a free loopback port; 2 hosts x 2 workers
// (test/fixtures/adapter-app); 20 rooms of 5 members all on host A, 20 clients in no room on host
// B; MESSAGES room broadcasts (default 4,000) from 10 members; prints host B's CPU time (primary
// and each worker, /proc, Linux only). Usage, with ROOT a built checkout:
//   node bench/quick/rooms-idle-host.cjs ROOT          (RECOVERY=off to turn recovery off)
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const root = process.argv[2];
const { io } = require(root + "/node_modules/socket.io-client");
const MESSAGES = Number(process.env.MESSAGES ?? 4000);
const ticks = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return Number(f[11]) + Number(f[12]); };
const freePort = () => new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
const children = [];
function startHost(redisUrl, id) {
  const child = spawn(process.execPath, [root + "/dist/src/cli.js", "--port", "0", "--host", "127.0.0.1", "--workers", "2", "--app", root + "/dist/test/fixtures/adapter-app.js", "--redis", redisUrl, "--host-id", id, "--recovery", process.env.RECOVERY ?? "on"], { env: { ...process.env, LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve) => { let buf = ""; child.stdout.on("data", (d) => { buf += d; for (const line of buf.split("\n")) { try { const j = JSON.parse(line); if (j.msg === "ready") resolve({ child, port: j.port }); } catch {} } }); });
}
(async () => {
  const rport = await freePort();
  const redis = spawn("redis-server", ["--port", String(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  children.push(redis);
  setTimeout(() => { for (const c of children) c.kill("SIGKILL"); process.exit(2); }, 180_000).unref();
  await new Promise((r) => setTimeout(r, 500));
  const url = `redis://127.0.0.1:${rport}`;
  const [a, b] = await Promise.all([startHost(url, "host-a"), startHost(url, "host-b")]);
  await new Promise((r) => setTimeout(r, 2000));
  const all = [];
  const connectTo = async (port) => { const s = io(`http://127.0.0.1:${port}`, { forceNew: true, transports: ["websocket"] }); await new Promise((r) => s.once("connect", r)); all.push(s); return s; };
  const members = [];
  for (let i = 0; i < 100; i++) members.push(await connectTo(a.port));
  for (let i = 0; i < 20; i++) await connectTo(b.port); // clients of host B, in no room
  for (let i = 0; i < 100; i++) await members[i].timeout(5000).emitWithAck("join", `room-${i % 20}`);
  let got = 0;
  for (const m of members) m.on("event", () => got++);
  const bPids = [b.child.pid, ...execFileSync("pgrep", ["-P", String(b.child.pid)]).toString().trim().split("\n").map(Number)];
  const cpu = () => bPids.reduce((sum, pid) => sum + ticks(pid), 0);
  const per0 = bPids.map(ticks); const t0 = cpu(), w0 = Date.now();
  let sent = 0;
  await Promise.all(members.slice(0, 10).map(async (s) => { while (sent < MESSAGES) { const n = sent++; await s.timeout(5000).emitWithAck("to-room", `room-${n % 20}`, { n, pad: "x".repeat(100) }); } }));
  while (got < MESSAGES * 5 && Date.now() - w0 < 30000) await new Promise((r) => setTimeout(r, 50));
  const per1 = bPids.map(ticks); const t1 = cpu(), w1 = Date.now();
  const workersOnly = bPids.slice(1).length;
  console.log(JSON.stringify({ root, recovery: process.env.RECOVERY ?? "on", messages: MESSAGES, delivered: got, seconds: (w1 - w0) / 1000, hostBCpuMs: (t1 - t0) * 10, hostBCpuPct: +((t1 - t0) * 10 / (w1 - w0) * 100).toFixed(1), primaryMs: (per1[0] - per0[0]) * 10, workersMs: per1.slice(1).map((v, i) => (v - per0[i + 1]) * 10) }));
  for (const s of all) s.close();
  for (const c of children) c.kill("SIGTERM");
  setTimeout(() => process.exit(0), 1500);
})();
