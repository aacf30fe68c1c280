/**
 * Variants 2 and 3, the recipes people use today: node cluster + @socket.io/sticky, with either
 * @socket.io/cluster-adapter (stock, `--adapter cluster`) or a per-worker @socket.io/redis-adapter
 * (the seed's recipe, `--adapter redis --redis URL`); for the rooms scenario also the sharded
 * redis-adapter (`--adapter redis-sharded-static` / `redis-sharded-dynamic`, Redis 7 sharded
 * pub/sub) and @socket.io/redis-streams-adapter (`--adapter redis-streams`, with connection state
 * recovery). Written as the packages' READMEs show it.
 */
import cluster from "node:cluster";
import http from "node:http";
import { Server } from "socket.io";
import { setupMaster, setupWorker } from "@socket.io/sticky";
import { createAdapter as createClusterAdapter, setupPrimary } from "@socket.io/cluster-adapter";
import { createAdapter as createRedisAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { attachChat, exitWithParent, hostName, parseServerArgs, printReady } from "./chat.js";

const args = parseServerArgs(process.argv.slice(2));
const adapterFlag = process.argv.indexOf("--adapter");
const adapter = adapterFlag >= 0 ? process.argv[adapterFlag + 1] : "cluster";
const ADAPTERS = ["cluster", "redis", "redis-sharded-static", "redis-sharded-dynamic", "redis-streams"];
if (adapter === undefined || !ADAPTERS.includes(adapter)) throw new Error(`unknown --adapter ${String(adapter)} (${ADAPTERS.join(", ")})`);
if (adapter !== "cluster" && args.redis === undefined) throw new Error(`--adapter ${adapter} needs --redis URL`);

/** Worker -> primary message telling that the worker's Socket.IO server is set up. */
interface WorkerReady {
  benchWorkerReady: true;
}
function isWorkerReady(msg: unknown): msg is WorkerReady {
  return typeof msg === "object" && msg !== null && (msg as Record<string, unknown>)["benchWorkerReady"] === true;
}

async function primary(): Promise<void> {
  cluster.setupPrimary({ serialization: "advanced" });
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: "least-connection" });
  if (adapter === "cluster") setupPrimary();
  let ready = 0;
  const allReady = new Promise<void>((resolve) => {
    cluster.on("message", (_worker, msg: unknown) => {
      if (isWorkerReady(msg) && ++ready === args.workers) resolve();
    });
  });
  const workers = Array.from({ length: args.workers }, () => cluster.fork());
  cluster.on("exit", (worker, code, signal) => {
    if (!shuttingDown) {
      process.stderr.write(`worker ${worker.process.pid} died (${code ?? signal}); stopping\n`);
      process.exit(1);
    }
  });
  let shuttingDown = false;
  process.on("SIGTERM", () => {
    shuttingDown = true;
    for (const w of workers) w.process.kill("SIGTERM");
    process.exit(0);
  });
  await allReady;
  httpServer.listen(args.port, args.host, () => {
    const addr = httpServer.address();
    if (addr === null || typeof addr === "string") throw new Error("no TCP address");
    printReady(addr.port, args.workers);
  });
  exitWithParent();
}

async function worker(): Promise<void> {
  const httpServer = http.createServer();
  // The Redis Streams adapter exists for connection state recovery: run it with recovery on, as sockfleet is.
  const io = new Server(httpServer, { serveClient: false, ...(adapter === "redis-streams" ? { connectionStateRecovery: {} } : {}) });
  if (adapter === "cluster") {
    io.adapter(createClusterAdapter());
  } else if (adapter === "redis-streams") {
    const client = createClient({ url: args.redis });
    await client.connect();
    io.adapter(createStreamsAdapter(client));
  } else {
    const pub = createClient({ url: args.redis });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    if (adapter === "redis") io.adapter(createRedisAdapter(pub, sub));
    else io.adapter(createShardedAdapter(pub, sub, { subscriptionMode: adapter === "redis-sharded-static" ? "static" : "dynamic" }));
  }
  setupWorker(io);
  attachChat(io, { host: hostName(), worker: cluster.worker?.id ?? 0 });
  process.on("SIGTERM", () => process.exit(0));
  const msg: WorkerReady = { benchWorkerReady: true };
  process.send?.(msg);
}

(cluster.isPrimary ? primary() : worker()).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
