import cluster from "node:cluster";
import http from "node:http";
import { Server, type ServerOptions } from "socket.io";
import type { AppContext } from "../apps/types";
import type { Config } from "../config/schema";
import { DATA_PATH_ENV, isSockfleetMessage, sendToPrimary } from "../ipc/messages";
import { createLogger, type Logger } from "../observability/logger";
import { classicAdapter, shardedAdapter, type WorkerRedisAdapter } from "../tiers/redis/adapter";
import type { RedisTierStatus } from "../tiers/redis/client";
import { WorkerMetrics } from "../observability/metrics";
import { LimitReporter } from "../observability/limits";
import { ADMIN_UI_NAMESPACE, enableAdminUi } from "../ops/admin-ui";
import { loadApp } from "./app-loader";
import { PacedDisconnect } from "./drain";
import { ConnectionIntake } from "./handoff";
import { WorkerHttp } from "./http";
import { originGuard } from "./origin";
import { FleetAdapter } from "../tiers/cluster/adapter";
import { DataLink } from "./data-link";

/** Exit code of a worker whose start-up failed in a way a respawn cannot fix. */
export const EXIT_FATAL_STARTUP = 78;

/** Adapter mode: workers talk to Redis themselves through @socket.io/redis-adapter. */
function usesRedisAdapter(config: Config): boolean {
  return config.redisUrl !== undefined && config.redisMode === "adapter";
}

function socketIoOptions(config: Config, link: DataLink, redis: WorkerRedisAdapter | undefined): Partial<ServerOptions> {
  return {
    // Bridge mode (and no Redis): the fleet adapter, whose traffic the primary relays and bridges.
    adapter: redis?.adapter ?? (FleetAdapter.for(link, config.recovery) as unknown as ServerOptions["adapter"]),
    // Middlewares are skipped for a recovered socket: it already passed them, and running them
    // would open a window in which broadcasts could miss it. Recovery needs the offsets the
    // primary assigns; the Redis adapter (adapter mode) returns none, so it is off there.
    connectionStateRecovery:
      config.recovery && !redis ? { maxDisconnectionDuration: config.recoveryWindow, skipMiddlewares: true } : undefined,
    serveClient: true,
    maxHttpBufferSize: config.maxHttpBufferSize,
    pingInterval: config.pingInterval,
    pingTimeout: config.pingTimeout,
    allowRequest: originGuard(config.corsOrigins),
    cors: config.corsOrigins.length > 0 ? { origin: [...config.corsOrigins], credentials: true } : undefined,
  };
}

/** Runs one worker: a Socket.IO server fed by the primary's balancer, running the app module. */
export async function runWorker(config: Config): Promise<void> {
  const workerId = cluster.worker?.id ?? 0;
  const logger: Logger = createLogger(config.logLevel, { role: "worker", host: config.hostId, worker: workerId, pid: process.pid });

  // A worker must never outlive its primary: without it nobody routes to or supervises us.
  process.on("disconnect", () => process.exit(0));
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception, worker exits");
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection");
  });

  const dataPath = process.env[DATA_PATH_ENV];
  if (!dataPath) throw new Error(`${DATA_PATH_ENV} is not set; workers are started by the sockfleet primary`);
  const metrics = new WorkerMetrics(workerId);
  const limits = new LimitReporter(metrics.registry, logger);
  const link = await DataLink.connect(dataPath, workerId, {
    maxBytes: config.maxChannelBytes,
    onFull: (unsent, dropped) =>
      limits.hit("max-channel-bytes", { unsent, maxBytes: config.maxChannelBytes, dropped }, dropped ? "data channel to the primary full: volatile broadcast dropped" : "data channel to the primary full: broadcast refused"),
  });
  // Like the IPC channel: without the data link this worker can no longer take part.
  link.onClose(() => process.exit(0));

  let hostReady = false;
  let closing = false;
  // Bridge mode (and no Redis): the cluster adapter, whose traffic the primary relays and bridges.
  let redisAdapter: WorkerRedisAdapter | undefined;
  let bridgeStatus: RedisTierStatus | undefined;
  if (usesRedisAdapter(config)) {
    try {
      redisAdapter = config.redisSharded ? await shardedAdapter(config, logger) : await classicAdapter(config, logger);
    } catch (err) {
      logger.fatal({ err }, "cannot set up the Redis adapter");
      sendToPrimary({ sf: "fatal", message: (err as Error).message });
      process.exit(EXIT_FATAL_STARTUP);
    }
  }
  const routes = new WorkerHttp({
    ready: () => hostReady,
    closing: () => closing,
    redis: () => redisAdapter?.status() ?? bridgeStatus,
  });
  const server = http.createServer(routes.handle);
  const io = new Server(server, socketIoOptions(config, link, redisAdapter));
  const intake = new ConnectionIntake(server);
  metrics.instrument(io);
  if (enableAdminUi(io, config, workerId)) logger.debug({ namespace: ADMIN_UI_NAMESPACE }, "admin UI enabled");

  io.engine.on("connection", (socket: { id: string; once(event: "close", fn: () => void): void }) => {
    sendToPrimary({ sf: "session", sid: socket.id, open: true });
    socket.once("close", () => sendToPrimary({ sf: "session", sid: socket.id, open: false }));
  });

  const pacer = new PacedDisconnect();
  /** Shutdown (spreadMs 0) or drain after a rolling restart replaced this worker (spreadMs > 0). */
  const shutdown = async (spreadMs = 0): Promise<void> => {
    if (closing) {
      if (spreadMs === 0) pacer.hurry();
      return;
    }
    closing = true;
    if (spreadMs > 0) {
      logger.info({ clients: io.engine.clientsCount, spreadMs }, "draining: clients are told to reconnect, a few at a time");
      await pacer.run(io, spreadMs);
    }
    logger.info("closing: clients are told to reconnect");
    await io.close().catch(() => undefined);
    await intake.drain(Math.min(1000, config.shutdownTimeout));
    logger.info("closed");
    process.exit(0);
  };

  process.on("message", (message: unknown) => {
    if (!isSockfleetMessage(message)) return;
    if (message.sf === "host-state") {
      hostReady = message.ready;
      bridgeStatus = message.redis;
    } else if (message.sf === "shutdown") void shutdown();
    else if (message.sf === "drain") void shutdown(message.spreadMs);
    else if (message.sf === "metrics-request") void metrics.snapshot().then((snapshot) => sendToPrimary({ sf: "metrics", id: message.id, metrics: snapshot }));
  });
  // A worker signalled directly (for example by a process manager) also closes gracefully.
  process.on("SIGTERM", () => void shutdown());
  process.on("SIGINT", () => undefined); // Ctrl-C reaches the whole group; the primary coordinates.
  process.on("SIGHUP", () => undefined); // Rolling-restart trigger of the primary; a closing terminal signals the group too.

  const ctx: AppContext = {
    host: config.hostId,
    worker: workerId,
    pid: process.pid,
    logger: logger.child({ component: "app" }),
    serveStatic: (dir) => routes.serveStatic(dir),
  };
  try {
    const app = await loadApp(config.app);
    await app(io, ctx);
  } catch (err) {
    const message = `app module ${config.app ?? "(chat)"} failed to start: ${(err as Error)?.stack ?? String(err)}`;
    logger.fatal({ err }, "app module failed to start");
    sendToPrimary({ sf: "fatal", message });
    process.exit(EXIT_FATAL_STARTUP);
  }
  sendToPrimary({ sf: "ready" });
  logger.debug("worker ready");
}
