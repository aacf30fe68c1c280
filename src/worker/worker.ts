import cluster from "node:cluster";
import { EventEmitter } from "node:events";
import http from "node:http";
import { Server, type ServerOptions } from "socket.io";
import type { AppContext, AppEvents } from "../apps/types";
import type { Config } from "../config/schema";
import { ANY_ORIGIN } from "../config/warnings";
import { DATA_PATH_ENV, isSockfleetMessage, sendToPrimary } from "../ipc/messages";
import { createLogger, type Logger } from "../observability/logger";
import { classicAdapter, shardedAdapter, type WorkerRedisAdapter } from "../tiers/redis/adapter";
import type { RedisTierStatus } from "../tiers/redis/client";
import { LimitReporter } from "../observability/limits";
import { WorkerMetrics } from "../observability/metrics";
import { registerProcessHeadroom } from "../observability/process-headroom";
import { installMemoryProbe } from "../observability/memory-probe";
import { ADMIN_UI_NAMESPACE, ADMIN_UI_PATH, adminUiPage, enableAdminUi } from "../ops/admin-ui";
import { requireJwt } from "../auth/handshake-guard";
import { JoinGuard } from "../auth/join-guard";
import { JwtVerifier } from "../auth/jwt-verifier";
import { loadApp } from "./app-loader";
import { PacedDisconnect, sendEveryClientAway } from "./drain";
import { ConnectionIntake } from "./handoff";
import { WorkerHttp } from "./http";
import { originGuard } from "./origin";
import { FleetAdapter } from "../tiers/cluster/adapter";
import { DataLink } from "./data-link";
import { createPresence } from "./presence";
import { slimRequests } from "./slim-request";
import { WorkerGuard } from "./guard";

/** Exit code of a worker whose start-up failed in a way a respawn cannot fix. */
export const EXIT_FATAL_STARTUP = 78;

/** Adapter mode: workers talk to Redis themselves through @socket.io/redis-adapter. */
function usesRedisAdapter(config: Config): boolean {
  return config.redisUrl !== undefined && config.redisMode === "adapter";
}

/** Listed origins may send cookies; "*" allows every origin but never with credentials. */
function corsOptions(origins: readonly string[]): ServerOptions["cors"] {
  if (origins.includes(ANY_ORIGIN)) return { origin: ANY_ORIGIN, credentials: false };
  return origins.length > 0 ? { origin: [...origins], credentials: true } : undefined;
}

function socketIoOptions(config: Config, link: DataLink, redis: WorkerRedisAdapter | undefined, guard: WorkerGuard): Partial<ServerOptions> {
  return {
    parser: guard.parser,
    // Bridge mode (and no Redis): the fleet adapter, whose traffic the primary relays and bridges.
    adapter: redis?.adapter ?? (FleetAdapter.for(link, config.recovery, config.recoveryOffsets, config.directWrites) as unknown as ServerOptions["adapter"]),
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
    cors: corsOptions(config.corsOrigins),
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
  // A rejection nobody handled is logged with its reason and the worker serves on: unlike a thrown
  // exception it does not leave a half-run synchronous call behind.
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection; the worker serves on");
  });

  // Once per worker: jose and the key.
  let jwt: JwtVerifier | undefined;
  try {
    jwt = await JwtVerifier.create(config);
  } catch (err) {
    const message = (err as Error).message;
    logger.fatal({ err }, message);
    sendToPrimary({ sf: "fatal", message });
    process.exit(EXIT_FATAL_STARTUP);
  }

  const dataPath = process.env[DATA_PATH_ENV];
  if (!dataPath) throw new Error(`${DATA_PATH_ENV} is not set; workers are started by the sockfleet primary`);
  const metrics = new WorkerMetrics(workerId);
  registerProcessHeadroom(metrics.registry);
  const limits = new LimitReporter(metrics.registry, logger);
  const link = await DataLink.connect(dataPath, workerId, {
    maxBytes: config.maxChannelBytes,
    onFull: (unsent, dropped) =>
      limits.hit("max-channel-bytes", { unsent, maxBytes: config.maxChannelBytes, dropped }, dropped ? "data channel to the primary full: volatile broadcast dropped" : "data channel to the primary full: broadcast refused"),
  });
  // Like the IPC channel: without the data link this worker can no longer take part.
  link.onClose(() => process.exit(0));
  link.on("undecodable", (err, bytes) => logger.error({ err, bytes }, "frame from the primary cannot be decoded or delivered; skipped"));

  let hostReady = false;
  let closing = false;
  // Bridge mode (and no Redis): the cluster adapter, whose traffic the primary relays and bridges.
  let redisAdapter: WorkerRedisAdapter | undefined;
  let bridgeStatus: RedisTierStatus | undefined;
  const appEvents = new EventEmitter<AppEvents>();
  if (usesRedisAdapter(config)) {
    try {
      // The redis-adapter's messages carry no sequence numbers: how many were missed is not known.
      const cutOff = (): void => void appEvents.emit("missed-messages", {});
      redisAdapter = config.redisSharded ? await shardedAdapter(config, logger) : await classicAdapter(config, logger, cutOff);
    } catch (err) {
      logger.fatal({ err }, "cannot set up the Redis adapter");
      sendToPrimary({ sf: "fatal", message: (err as Error).message });
      process.exit(EXIT_FATAL_STARTUP);
    }
  }
  const routes = new WorkerHttp(
    {
      ready: () => hostReady,
      closing: () => closing,
      redis: () => redisAdapter?.status() ?? bridgeStatus,
    },
    logger,
    (details) => limits.hit("malformed-request", details, "malformed HTTP request refused"),
  );
  // Later request heads of a kept-alive connection obey the bound the primary applies to the first one.
  const server = http.createServer({ maxHeaderSize: config.maxHeadBytes }, routes.handle);
  const guard = new WorkerGuard(config, limits);
  const io = new Server(server, socketIoOptions(config, link, redisAdapter, guard));
  guard.install(io);
  slimRequests(io);
  // The balancer routes a TCP connection by its first request head, but a browser reuses a kept-alive
  // connection for any later request to the origin: another tab's session, or its own session after
  // the page itself was served by another worker; such a request would fail ("Session ID unknown").
  // So a worker answers every HTTP request with Connection: close (WebSocket is unaffected).
  // Registered after socket.io attached, so it runs before engine.io's handler too.
  server.prependListener("request", (_req: http.IncomingMessage, res: http.ServerResponse) => res.setHeader("connection", "close"));
  const intake = new ConnectionIntake(server);
  metrics.instrument(io);
  // Before the admin UI and the app create namespaces, so both guards see every one of them.
  if (jwt) requireJwt(io, jwt, limits, (name) => name === ADMIN_UI_NAMESPACE);
  const joins = new JoinGuard(limits);
  joins.install(io);
  if (enableAdminUi(io, config, workerId)) {
    const page = adminUiPage();
    routes.mount(ADMIN_UI_PATH, page.dir, page.index);
    logger.debug({ namespace: ADMIN_UI_NAMESPACE, path: ADMIN_UI_PATH }, "admin UI enabled");
  }

  type EngineSession = { id: string; on(event: "close", fn: (this: EngineSession) => void): void };
  // One listener function for every connection (`this` is the Engine.IO socket; "close" comes once).
  function sessionClosed(this: EngineSession): void {
    sendToPrimary({ sf: "session", sid: this.id, open: false });
  }
  io.engine.on("connection", (socket: EngineSession) => {
    sendToPrimary({ sf: "session", sid: socket.id, open: true });
    socket.on("close", sessionClosed);
  });

  const pacer = new PacedDisconnect();
  /** The whole host drains: its clients go to other hosts; the worker then serves on, empty, until stopped. */
  let drainingClients = false;
  const drainClients = async (spreadMs: number): Promise<void> => {
    if (drainingClients || closing) return;
    drainingClients = true;
    const started = Date.now();
    logger.info({ clients: io.engine.clientsCount, spreadMs }, "host draining: clients are told to reconnect to other hosts");
    const told = await sendEveryClientAway(io, pacer, spreadMs, () => closing);
    logger.info({ clients: told, durationMs: Date.now() - started }, "host drained: no clients left on this worker");
    sendToPrimary({ sf: "clients-drained", clients: told });
  };
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
    else if (message.sf === "drain-clients") void drainClients(message.spreadMs);
    else if (message.sf === "missed-messages") appEvents.emit("missed-messages", { origin: message.origin, missed: message.missed });
    else if (message.sf === "metrics-request") void metrics.snapshot().then((snapshot) => sendToPrimary({ sf: "metrics", id: message.id, metrics: snapshot }));
  });
  // A worker signalled directly (for example by a process manager) also closes gracefully.
  process.on("SIGTERM", () => void shutdown());
  process.on("SIGINT", () => undefined); // Ctrl-C reaches the whole group; the primary coordinates.
  process.on("SIGHUP", () => undefined); // Rolling-restart trigger of the primary; a closing terminal signals the group too.
  if (installMemoryProbe()) logger.info({ dir: process.env.SOCKFLEET_MEMORY_PROBE }, "memory probe on: SIGUSR2 to this worker reports its memory");

  const ctx: AppContext = {
    host: config.hostId,
    worker: workerId,
    pid: process.pid,
    logger: logger.child({ component: "app" }),
    serveStatic: (dir) => routes.serveStatic(dir),
    authorizeJoin: (authorizer) => joins.add(authorizer),
    on: (event, listener) => void appEvents.on(event, listener as never),
    presence: createPresence(io, config.hostId, workerId),
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
