import { createClient } from "redis";
import type { Cluster } from "./cluster-clients";

export interface NodeAuth {
  username?: string;
  password?: string;
  tls: boolean;
  connectTimeout: number;
}

/**
 * The cluster's masters ("host:port", sorted) as the first answering node of `roots` sees them
 * (CLUSTER SLOTS, on a connection of its own that is closed at once), undefined when none answers.
 *
 * node-redis 4.7's cluster client learns a new slot map only from a MOVED reply; after a failover
 * the dead master sends none, and the client keeps reconnecting to its address. Comparing its
 * masters with these tells the transport to start a fresh client.
 */
export async function clusterMasters(roots: Array<{ url: string }>, auth: NodeAuth): Promise<string[] | undefined> {
  for (const { url } of roots) {
    const client = createClient({
      url,
      ...(auth.username ? { username: auth.username } : {}),
      ...(auth.password ? { password: auth.password } : {}),
      socket: { connectTimeout: auth.connectTimeout, reconnectStrategy: false, ...(auth.tls ? { tls: true as const } : {}) },
    });
    client.on("error", () => undefined);
    try {
      await client.connect();
      const slots = await client.clusterSlots();
      return [...new Set(slots.map((range) => `${range.master.ip}:${range.master.port}`))].sort();
    } catch {
      // Down, or not a cluster node any more: ask the next one.
    } finally {
      if (client.isOpen) await client.disconnect().catch(() => undefined);
    }
  }
  return undefined;
}

/** A cluster client's masters, "host:port", sorted (comparable with {@link clusterMasters}). */
export function mastersOf(cluster: Cluster): string[] {
  return cluster.masters.map((m) => `${m.host}:${m.port}`).sort();
}

/** node-redis keeps a node's client as a promise while it connects: ready only once connected. */
export function ready(client: unknown): boolean {
  return typeof client === "object" && client !== null && (client as { isReady?: unknown }).isReady === true;
}

/** Whether every master says cluster_state:ok (a restarted node answers CLUSTERDOWN until it does). */
export async function everyMasterOk(cluster: Cluster): Promise<boolean> {
  const states = await Promise.all(cluster.masters.map(async (master) => String(await (await cluster.nodeClient(master)).sendCommand(["CLUSTER", "INFO"]))));
  return states.every((info) => /cluster_state:ok/.test(info));
}
