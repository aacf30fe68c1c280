import { createCluster } from "redis";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";
import { clusterMasters, type NodeAuth } from "./slot-map";

export type Cluster = ReturnType<typeof createCluster>;

export const RECONNECT_MAX_DELAY_MS = 500;

type Root = { url: string };

/** `first`, then those of `rest` not in it. */
function merge(first: Root[], rest: Root[]): Root[] {
  return [...new Map([...first, ...rest].map((r) => [r.url, r])).values()];
}

/**
 * Makes the cluster transport's node-redis cluster clients, each connection named after its role and
 * with the --redis URL's credentials, and keeps where new ones discover the slot map: the --redis
 * node, then every master seen (a failover may take the first one away).
 */
export class ClusterClients {
  private roots: Root[];
  private readonly auth: NodeAuth;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    /** The transport closed: stop trying to connect. */
    private readonly closed: () => boolean,
  ) {
    this.roots = [{ url: config.redisUrl! }];
    const url = new URL(config.redisUrl!);
    this.auth = {
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      tls: url.protocol === "rediss:",
      connectTimeout: config.redisConnectTimeout,
    };
  }

  make(role: string, minimizeConnections: boolean): Cluster {
    const cluster = createCluster({
      rootNodes: this.roots,
      minimizeConnections,
      // Applied to every node's connection (the root nodes' URLs are used for discovery only).
      defaults: {
        name: `sockfleet:${this.config.hostId}:${role}`,
        disableOfflineQueue: true,
        ...(this.auth.username ? { username: this.auth.username } : {}),
        ...(this.auth.password ? { password: this.auth.password } : {}),
        socket: {
          connectTimeout: this.config.redisConnectTimeout,
          reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, RECONNECT_MAX_DELAY_MS),
          ...(this.auth.tls ? { tls: true as const } : {}),
        },
      },
    });
    let lastError = "";
    cluster.on("error", (err: Error) => {
      // One error per failed attempt of each node: log a run of the same one once.
      if (err.message !== lastError) this.log.debug({ err, role }, "redis cluster connection error");
      lastError = err.message;
    });
    return cluster;
  }

  /** Connects, retrying discovery (a refused root node) until it works, `current()` turns false or the transport closes. */
  async open(cluster: Cluster, role: string, current: () => boolean): Promise<boolean> {
    for (let attempt = 0; !this.closed() && current(); attempt++) {
      try {
        await cluster.connect();
        if (this.closed() || !current()) return false;
        this.roots = merge(this.roots, cluster.masters.map((m) => ({ url: `redis://${m.host}:${m.port}` })));
        this.log.info({ role, masters: cluster.masters.length }, "redis cluster connected");
        return true;
      } catch (err) {
        if (attempt === 0) this.log.warn({ err, role }, "redis cluster unreachable, reconnecting");
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, RECONNECT_MAX_DELAY_MS)).unref());
      }
    }
    return false;
  }

  /** The cluster's masters as the first answering node sees them now (see clusterMasters), tried first by clients made after. */
  async masters(): Promise<string[] | undefined> {
    const masters = await clusterMasters(this.roots, this.auth);
    if (masters && !this.closed()) this.roots = merge(masters.map((address) => ({ url: `redis://${address}` })), this.roots);
    return masters;
  }
}
