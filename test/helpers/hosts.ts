import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { closeClients, connect, request } from "./clients";
import { killTree } from "./processes";
import { compiledFixture, SockfleetHost } from "./sockfleet";
import { waitUntil } from "./wait";

export type RedisMode = "bridge" | "adapter";

/**
 * Starts `count` sockfleet hosts running the adapter-app fixture, all on the Redis at `url`. If one
 * fails to start, the others are stopped too, so no host outlives a failed test.
 */
export async function startHosts(url: string, mode: RedisMode, count = 2, workers = 2, extraArgs: string[] = []): Promise<SockfleetHost[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      SockfleetHost.start({
        workers,
        app: compiledFixture("adapter-app"),
        args: ["--host-id", `host-${String.fromCharCode(97 + i)}`, "--redis", url, "--redis-mode", mode, ...extraArgs],
        // Several hosts of several workers start at once; a busy CI machine needs the slack.
        readyMs: 15_000 + 5_000 * workers,
      }),
    ),
  );
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.all(started.map((s) => (s.status === "fulfilled" ? killTree(s.value.child) : undefined)));
    throw failed.reason;
  }
  return started.map((s) => (s as PromiseFulfilledResult<SockfleetHost>).value);
}

/**
 * Waits until the fleet has formed: a serverSideEmit with acks from one worker is answered by
 * every other worker of every host (so server counts include every host).
 */
export async function waitForFleet(hosts: SockfleetHost[], totalWorkers: number, ms = 15_000): Promise<void> {
  const client = await connect(hosts[0].url);
  try {
    await waitUntil(`all ${totalWorkers} workers to answer a serverSideEmit`, async () => {
      const reply = await request<{ error: string | null; replies: unknown[] }>(client, "server-side-emit-ack", "ping").catch(() => undefined);
      return reply !== undefined && reply.error === null && reply.replies.length === totalWorkers - 1;
    }, ms, 200);
  } finally {
    closeClients([client]);
  }
}

/** A @socket.io/redis-emitter with its default settings (prefix "socket.io"), as another backend would use it. */
export async function startEmitter(url: string): Promise<{ emitter: Emitter; close(): Promise<void> }> {
  const client = createClient({ url });
  client.on("error", () => undefined);
  await client.connect();
  return { emitter: new Emitter(client), close: () => client.disconnect() };
}
