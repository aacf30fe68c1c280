import type { AddressInfo } from "node:net";
import type { Config } from "../config/schema";
import { createLogger } from "../observability/logger";
import { ClusterRelay } from "../tiers/cluster/relay";
import { HostRecovery } from "../tiers/recovery/host";
import { StickyBalancer } from "./balancer";
import { Supervisor } from "./supervisor";

/** Exit code when the host cannot serve: the app fails to start, the port is taken, every worker crash-loops. */
export const EXIT_CANNOT_SERVE = 1;

/**
 * The primary of one host: listens on the public port, balances connections to its workers with
 * sticky sessions, relays the workers' adapter traffic, supervises them and coordinates shutdown.
 */
export async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, { role: "primary", host: config.hostId, pid: process.pid });
  let relay: ClusterRelay | undefined;
  const supervisor = new Supervisor(config, logger, (worker, message) => relay?.onMessage(worker, message) ?? false);
  const recovery = config.recovery ? new HostRecovery(config, (id) => supervisor.workers().some((w) => w.id === id)) : undefined;
  relay = new ClusterRelay(() => supervisor.workers(), recovery?.sequence);
  const balancer = new StickyBalancer(() => supervisor.workers(), logger);

  supervisor.on("worker-ready", (worker) => balancer.addWorker(worker.id));
  supervisor.on("worker-exit", (worker) => {
    balancer.removeWorker(worker.id);
    relay.workerGone(worker.id);
    recovery?.workerGone(worker.id);
  });
  supervisor.on("message", (worker, message) => {
    if (recovery?.onMessage(worker, message)) return;
    if (message.sf !== "session") return;
    if (message.open) balancer.sessionOpened(worker.id, message.sid);
    else balancer.sessionClosed(worker.id, message.sid);
  });

  let stopping: Promise<void> | undefined;
  const stop = (reason: string, code: number): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, "shutting down");
      balancer.server.close();
      await supervisor.stop();
      logger.info({ code }, "stopped");
      process.exit(code);
    })();
    return stopping;
  };

  let announced = false;
  supervisor.on("host-state", (ready) => {
    if (!ready || announced) return;
    announced = true;
    const address = balancer.server.address() as AddressInfo;
    logger.info({ port: address.port, address: address.address, workers: config.workers }, "ready");
    // pm2 (fork mode, wait_ready) and other supervisors that spawn us with IPC wait for this.
    if (process.send) process.send("ready");
  });
  supervisor.on("fatal", (message) => {
    logger.fatal({ reason: message }, "cannot start: a worker failed to start");
    void stop("worker start-up failure", EXIT_CANNOT_SERVE);
  });
  supervisor.on("exhausted", () => {
    logger.fatal("every worker is in a crash loop");
    void stop("crash loop", EXIT_CANNOT_SERVE);
  });

  process.on("SIGTERM", () => void stop("SIGTERM", 0));
  process.on("SIGINT", () => void stop("SIGINT", 0));

  balancer.server.on("error", (err) => {
    logger.fatal({ err, port: config.port, host: config.host }, "cannot listen");
    void stop("listen failed", EXIT_CANNOT_SERVE);
  });
  await new Promise<void>((resolve) => balancer.server.listen(config.port, config.host, resolve));
  supervisor.start();
}
