import type { AddressInfo } from "node:net";
import type { Config } from "../config/schema";
import { unsafeSettings } from "../config/warnings";
import { HeadroomMetrics } from "../observability/headroom-metrics";
import { HostMetrics } from "../observability/host-metrics";
import { registerProcessHeadroom } from "../observability/process-headroom";
import { LimitReporter } from "../observability/limits";
import { createLogger } from "../observability/logger";
import { registerRecoveryMetrics } from "../observability/recovery-metrics";
import { registerHostRoutingMetrics, registerLogRoutingMetrics, registerRoutingMetrics } from "../observability/routing-metrics";
import { AdminServer } from "../ops/admin";
import { ClusterRelay, isAdapterMessage } from "../tiers/cluster/relay";
import { RedisBridge } from "../tiers/redis/bridge";
import { HostRecovery } from "../tiers/recovery/host";
import { DATA_PATH_ENV, isSockfleetMessage, RECOVERING_TTL_MS, type ToPrimary, type ToWorker } from "../ipc/messages";
import { StickyBalancer } from "./balancer";
import { DataHub } from "./data-hub";
import { HostDrain } from "./host-drain";
import { RoomRoutes } from "./room-routes";
import { RouteAcks } from "./route-acks";
import { intakeCapacity, logCapacity, registerCapacityMetric } from "./intake/capacity";
import { Intake } from "./intake/intake";
import { RollingRestart } from "./roll";
import { Supervisor } from "./supervisor";

/** Exit code when the host cannot serve: the app fails to start, the port is taken, every worker crash-loops at start. */
export const EXIT_CANNOT_SERVE = 1;
/** How long past --shutdown-timeout a stop may take (closing Redis, the data channels) before the primary exits anyway. */
const STOP_GRACE_MS = 3_000;

/**
 * The primary of one host: listens on the public port, balances connections to its workers with
 * sticky sessions, relays the workers' adapter traffic, supervises them and coordinates shutdown.
 */
export async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, { role: "primary", host: config.hostId, pid: process.pid });
  for (const { setting, message } of unsafeSettings(config)) logger.warn({ setting }, `unsafe setting: ${setting}: ${message}`);
  let relay: ClusterRelay | undefined;
  let recovery: HostRecovery | undefined;
  const metrics: HostMetrics = new HostMetrics({
    workers: () => supervisor.workers(),
    send: (worker, message) => supervisor.send(worker, message),
    hostReady: () => supervisor.isHostReady(),
    sessions: () => balancer.sessionCounts(),
    crashLoopingSlots: () => supervisor.crashLoopingSlots(),
  });
  const limits = new LimitReporter(metrics.registry, logger);
  registerProcessHeadroom(metrics.registry, { worker: "primary" });
  const hub = new DataHub((worker, message, body) => {
    if (relay?.onMessage(worker, message, body)) {
      if (isAdapterMessage(message)) metrics.messageRelayed(message.requesterUid === undefined ? "broadcast" : "response");
      return;
    }
    if (!isSockfleetMessage(message)) return;
    const m = message as ToPrimary;
    if (m.sf === "routes") {
      // A worker's first member of a room: what it is owed from other hosts starts at its join.
      const fresh = bridge?.logRoutes ? m.joins.filter(([nsp, room]) => !routes.workerHas(worker, nsp, room)) : [];
      const items = routes.announce(worker, m.joins, m.leaves, m.upTo);
      const hostRoutes = bridge?.hostRoutes;
      hostRoutes?.left(m.leaves.filter(([nsp, room]) => !routes.hostHas(nsp, room)));
      const remote = hostRoutes?.joined(m.joins);
      const late = fresh.length > 0 ? bridge?.logRoutes?.joined(fresh) : undefined;
      if (m.id !== undefined) acks.send(worker, m.id, items, remote, late);
      return;
    }
    if (m.sf === "restore") routes.restoreAsked(worker, m.id, m.nsp);
    recovery?.onMessage(worker, m);
  }, logger, {
    maxBytes: config.maxChannelBytes,
    // Too far behind to deliver in order (stopped, hung or swamped): replaced now. SIGKILL, as it
    // may not be running to hear anything gentler; its sessions become recoverable on its exit.
    onOverflow: (worker, unsent) => {
      limits.hit("max-channel-bytes", { worker, unsent, maxBytes: config.maxChannelBytes }, "worker too far behind on its data channel: link closed, worker replaced");
      supervisor.workers().find((w) => w.id === worker)?.process.kill("SIGKILL");
    },
  });
  await hub.listen();
  const routes = new RoomRoutes((worker) => hub.sent(worker), config.maxChannelBytes);
  const acks = new RouteAcks((worker, message) => hub.send(worker, message));
  registerRoutingMetrics(metrics.registry, routes);
  const supervisor = new Supervisor(config, logger, { [DATA_PATH_ENV]: hub.path });
  const isLive = (id: number): boolean => supervisor.workers().some((w) => w.id === id);
  const answer = (worker: number, message: ToWorker): void => {
    if (message.sf === "restored") routes.restoreAnswered(worker, message.id, message.session?.rooms, RECOVERING_TTL_MS);
    hub.send(worker, message);
  };
  recovery = config.recovery ? new HostRecovery(config, isLive, answer, logger.child({ component: "recovery" })) : undefined;
  relay = new ClusterRelay(() => hub.workers(), hub, recovery?.sequence, routes);
  const bridge =
    config.redisUrl !== undefined && config.redisMode === "bridge"
      ? new RedisBridge(config, logger, relay, (status) => supervisor.setRedisStatus(status), recovery, limits, (gap) => {
          headroom.missedMessages(gap.origin, gap.missed);
          for (const worker of supervisor.workers()) supervisor.send(worker, { sf: "missed-messages", origin: gap.origin, missed: gap.missed });
        }, (nsp, room) => routes.hostHas(nsp, room))
      : undefined;
  if (bridge) supervisor.setRedisStatus(bridge.status());
  if (bridge?.hostRoutes) registerHostRoutingMetrics(metrics.registry, bridge.hostRoutes);
  if (bridge?.logRoutes) registerLogRoutingMetrics(metrics.registry, bridge.logRoutes);
  const capacity = intakeCapacity(config);
  const intake = new Intake(config, capacity, limits, metrics.registry, (socket, head, ticket) => balancer.route(socket, head, ticket));
  const balancer = new StickyBalancer(() => supervisor.workers(), logger, (ticket) => intake.admission.release(ticket));
  logCapacity(logger, capacity, config);
  registerCapacityMetric(metrics.registry, capacity);
  const headroom: HeadroomMetrics = new HeadroomMetrics(metrics.registry, {
    connections: () => intake.admission.connections,
    capacity: () => capacity.maxConnections || capacity.capacity,
    dataChannelQueued: () => hub.queued(),
    ...(bridge ? { redis: () => bridge.headroom.current() } : {}),
  });
  const drain = new HostDrain({
    stopTakingSessions: () => {
      balancer.refuseNewSessions();
      supervisor.setDraining();
    },
    workers: () => supervisor.workers().map((w) => w.id),
    drainWorker: (id, spreadMs) => {
      const worker = supervisor.workers().find((w) => w.id === id);
      if (worker) supervisor.send(worker, { sf: "drain-clients", spreadMs });
    },
  }, config.hostDrainTime, logger);
  if (recovery) {
    const sharedLog = bridge?.sharedLog() ? () => bridge.sharedLog()! : undefined;
    registerRecoveryMetrics(metrics.registry, recovery, sharedLog);
  }
  supervisor.on("worker-exit", (worker, crashed) => {
    metrics.workerGone(worker.id);
    if (crashed) metrics.workerRestarted("crash");
  });
  supervisor.on("message", (worker, message) => {
    if (message.sf === "metrics") metrics.onSnapshot(worker, message.id, message.metrics);
  });

  supervisor.on("worker-ready", (worker) => balancer.addWorker(worker.id));
  supervisor.on("worker-draining", (worker) => balancer.drainWorker(worker.id));
  supervisor.on("worker-exit", (worker) => {
    balancer.workerExited(worker.id);
    relay.workerGone(worker.id);
    routes.workerGone(worker.id);
    acks.workerGone(worker.id);
    bridge?.hostRoutes?.sweep((nsp, room) => routes.hostHas(nsp, room));
    recovery?.workerGone(worker.id);
    drain.workerGone(worker.id);
  });
  supervisor.on("message", (worker, message) => {
    if (message.sf === "accepted") return balancer.accepted(message.handoff);
    if (message.sf === "released") return balancer.released(message.handoffs);
    if (message.sf === "clients-drained") return drain.workerDrained(worker.id, message.clients);
    if (message.sf !== "session") return;
    if (message.open) balancer.sessionOpened(worker.id, message.sid);
    else balancer.sessionClosed(worker.id, message.sid);
  });

  let admin: AdminServer | undefined;
  let adminAddress: { adminPort?: number; adminAddress?: string } = {};
  let stopping: Promise<void> | undefined;
  const stop = (reason: string, code: number): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, "shutting down");
      // The supervisor bounds the workers' close by --shutdown-timeout; this bounds the whole stop,
      // whatever step hangs (a worker whose exit is never reported, a Redis close that never
      // answers), so a process manager's stop always ends. The stage says which step it was.
      let stage = "workers";
      setTimeout(() => {
        logger.error({ stage, timeoutMs: config.shutdownTimeout + STOP_GRACE_MS }, "shutdown did not finish in time: exiting now");
        process.exit(code);
      }, config.shutdownTimeout + STOP_GRACE_MS).unref();
      intake.close();
      admin?.close();
      await supervisor.stop();
      stage = "redis";
      await bridge?.close();
      hub.close();
      recovery?.close();
      logger.info({ code }, "stopped");
      process.exit(code);
    })();
    return stopping;
  };

  // Without these an unhandled rejection (Node's default: throw) or exception ends the primary, and
  // with it every worker of the host. A rejection is logged and the host serves on; an exception
  // leaves unknown state behind, so the host shuts down gracefully and its supervisor restarts it.
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection in the primary; the host serves on");
  });
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception in the primary; shutting down");
    void stop("uncaught exception", EXIT_CANNOT_SERVE);
  });

  let announced = false;
  supervisor.on("host-state", (ready) => {
    if (!ready || announced) return;
    announced = true;
    const address = intake.server.address() as AddressInfo;
    logger.info({ port: address.port, address: address.address, workers: config.workers, maxConnections: capacity.maxConnections, ...adminAddress }, "ready");
    // pm2 (fork mode, wait_ready) and other supervisors that spawn us with IPC wait for this.
    if (process.send) process.send("ready");
  });
  supervisor.on("fatal", (message) => {
    logger.fatal({ reason: message }, "cannot start: a worker failed to start");
    void stop("worker start-up failure", EXIT_CANNOT_SERVE);
  });
  supervisor.on("exhausted", () => {
    logger.fatal("every worker crash-loops before the host was ever ready");
    void stop("crash loop", EXIT_CANNOT_SERVE);
  });

  // SIGHUP (`kill -HUP`, `pm2 sendSignal SIGHUP <name>`) replaces every worker, one at a time, without downtime.
  const roll = new RollingRestart(supervisor, logger, {
    started: () => balancer.markStale(supervisor.workers().map((w) => w.id)),
    finished: () => balancer.clearStale(),
    replaced: () => metrics.workerRestarted("roll"),
  });
  process.on("SIGHUP", () => void roll.trigger("SIGHUP"));
  // SIGUSR2 (`kill -USR2`, `pm2 sendSignal SIGUSR2 <name>`) drains the host, like POST /drain.
  process.on("SIGUSR2", () => void drain.start("SIGUSR2"));

  process.on("SIGTERM", () => void stop("SIGTERM", 0));
  process.on("SIGINT", () => void stop("SIGINT", 0));

  try {
    await intake.listen(config.port, config.host);
  } catch (err) {
    logger.fatal({ err, port: config.port, host: config.host }, "cannot listen");
    await stop("listen failed", EXIT_CANNOT_SERVE);
    return;
  }

  // The admin listener (metrics, probes) is served by the primary, on loopback unless configured.
  if (config.adminPort !== undefined) {
    admin = new AdminServer(
      {
        metrics: () => metrics.render(),
        ready: () => supervisor.isHostReady(),
        closing: () => supervisor.isClosing(),
        drain: () => drain.start("POST /drain"),
        drainState: () => drain.current,
      },
      logger,
    );
    try {
      const bound = await admin.listen(config.adminPort, config.adminHost);
      adminAddress = { adminPort: bound.port, adminAddress: bound.address };
    } catch (err) {
      logger.fatal({ err, adminPort: config.adminPort, adminHost: config.adminHost }, "cannot listen on the admin port");
      await stop("admin listen failed", EXIT_CANNOT_SERVE);
      return;
    }
  }
  supervisor.start();
}
