// Quick side-by-side for issue 13 (not part of `npm run bench`): Redis CPU per broadcast, per node,
// for bridge mode on one redis-server vs on a 3-node Redis Cluster (--redis-sharded true). Own
// redis-servers on free loopback ports; 2 hosts x 1 worker (test/fixtures/adapter-app); 10 clients
// per host; MESSAGES broadcasts to all (default 4,000) from 10 clients of host A; every node's
// used_cpu_sys + used_cpu_user (INFO cpu) before and after, and again after as long idle. Usage, with ROOT a built checkout:
//   REDIS=single|cluster RECOVERY=on|off node bench/quick/cluster-bridge.cjs ROOT
const { spawn, execFileSync } = require("node:child_process");
const net = require("node:net");
const os = require("node:os");
const root = process.argv[2];
const { io } = require(root + "/node_modules/socket.io-client");
const MESSAGES = Number(process.env.MESSAGES ?? 4000);
const CLUSTER = process.env.REDIS === "cluster";
const RECOVERY = process.env.RECOVERY ?? "on";
const freePort = () => new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
const cli = (port, ...args) => execFileSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
const cpuOf = (port) => { const info = cli(port, "INFO", "cpu"); const get = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)[1]); return get("used_cpu_sys") + get("used_cpu_user"); };
const children = [];
function startHost(redisUrl, id) {
  const args = [root + "/dist/src/cli.js", "--port", "0", "--host", "127.0.0.1", "--workers", "1", "--app", root + "/dist/test/fixtures/adapter-app.js", "--redis", redisUrl, "--host-id", id, "--recovery", RECOVERY, "--max-events-per-second", "0"];
  if (CLUSTER) args.push("--redis-sharded", "true");
  const child = spawn(process.execPath, args, { env: { ...process.env, LOG_FORMAT: "json" }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve) => { let buf = ""; child.stdout.on("data", (d) => { buf += d; for (const line of buf.split("\n")) { try { const j = JSON.parse(line); if (j.msg === "ready") resolve({ child, port: j.port }); } catch {} } }); });
}
(async () => {
  setTimeout(() => { for (const c of children) c.kill("SIGKILL"); process.exit(2); }, 180_000).unref();
  const ports = [];
  for (let i = 0; i < (CLUSTER ? 3 : 1); i++) {
    const port = await freePort();
    ports.push(port);
    const extra = CLUSTER ? ["--cluster-enabled", "yes", "--dir", os.tmpdir(), "--cluster-config-file", `sockfleet-bench-nodes-${port}.conf`, "--dbfilename", `sockfleet-bench-dump-${port}.rdb`] : [];
    children.push(spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extra], { stdio: "ignore" }));
  }
  await new Promise((r) => setTimeout(r, 500));
  if (CLUSTER) {
    execFileSync("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], { stdio: "ignore" });
    while (!ports.every((p) => /cluster_state:ok/.test(cli(p, "CLUSTER", "INFO")))) await new Promise((r) => setTimeout(r, 100));
  }
  const url = `redis://127.0.0.1:${ports[0]}`;
  const [a, b] = await Promise.all([startHost(url, "host-a"), startHost(url, "host-b")]);
  await new Promise((r) => setTimeout(r, 3000));
  const all = [];
  const connectTo = async (port) => { const s = io(`http://127.0.0.1:${port}`, { forceNew: true, transports: ["websocket"] }); await new Promise((r) => s.once("connect", r)); all.push(s); return s; };
  const senders = [];
  for (let i = 0; i < 10; i++) senders.push(await connectTo(a.port));
  const receivers = [];
  for (let i = 0; i < 10; i++) receivers.push(await connectTo(b.port));
  let got = 0;
  for (const r of receivers) r.on("event", () => got++);
  const before = ports.map(cpuOf);
  const w0 = Date.now();
  let sent = 0;
  await Promise.all(senders.map(async (s) => { while (sent < MESSAGES) { const n = sent++; await s.timeout(5000).emitWithAck("broadcast", { n, pad: "x".repeat(100) }); } }));
  while (got < MESSAGES * receivers.length && Date.now() - w0 < 60000) await new Promise((r) => setTimeout(r, 50));
  const seconds = (Date.now() - w0) / 1000;
  const after = ports.map(cpuOf);
  // The same fleet idle as long again: what each node spends with no broadcast (cron, cluster bus,
  // heartbeats, the blocked XREADs), taken off the figure per broadcast.
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const idle = ports.map(cpuOf).map((v, i) => v - after[i]);
  const perNodeUs = after.map((v, i) => +(((v - before[i]) * 1e6) / MESSAGES).toFixed(1));
  const netUs = after.map((v, i) => +(((v - before[i] - idle[i]) * 1e6) / MESSAGES).toFixed(1));
  console.log(JSON.stringify({ redis: CLUSTER ? "cluster-3" : "single", recovery: RECOVERY, messages: MESSAGES, delivered: got, expected: MESSAGES * receivers.length, seconds, redisCpuUsPerBroadcastPerNode: perNodeUs, idleSubtractedUs: netUs, totalUs: +perNodeUs.reduce((x, y) => x + y, 0).toFixed(1), idleSubtractedTotalUs: +netUs.reduce((x, y) => x + y, 0).toFixed(1) }));
  for (const s of all) s.close();
  for (const c of children) c.kill("SIGTERM");
  setTimeout(() => process.exit(0), 1500);
})();
