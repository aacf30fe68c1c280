import assert from "node:assert/strict";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { closeClients, connect, request, type Client } from "./clients";
import { killTree } from "./processes";
import { RedisServer } from "./redis";
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

/** What a fleet's hosts share: a redis-server, or a Redis Cluster. */
interface Backend {
  readonly url: string;
  stop(): Promise<void>;
}

export interface FleetSetup<R extends Backend> {
  /** A fresh Redis (and hosts) for each test, or one for all the tests of the describe block. */
  per: "each" | "all";
  /** Starts what the hosts share; a plain redis-server unless given. */
  redis?: () => Promise<R>;
  /** Hosts started with Redis; without them each test starts its own (fleet.start) and they are stopped after it. */
  hosts?: { mode: RedisMode; count: number; workers: number; args?: string[] };
  /** Every host must exit 0 when the fixture stops it. */
  cleanExit?: boolean;
}

/** Redis, the sockfleet hosts on it and the clients a test connected, as a describe block's fixture. */
export class Fleet<R extends Backend = RedisServer> {
  hosts: SockfleetHost[] = [];
  /** Closed after each test. */
  clients: Client[] = [];
  private backend?: R;

  constructor(private readonly setup: FleetSetup<R>) {}

  get redis(): R {
    if (!this.backend) throw new Error("the fleet's Redis is not started (a before hook failed?)");
    return this.backend;
  }

  /** Starts `count` hosts on this fleet's Redis, adds them to `hosts`, and waits until every worker of every host answers. */
  async start(mode: RedisMode, count = 2, workers = 2, args: string[] = []): Promise<SockfleetHost[]> {
    const started = await startHosts(this.redis.url, mode, count, workers, args);
    this.hosts.push(...started);
    await waitForFleet(this.hosts, this.hosts.reduce((sum, host) => sum + host.workers, 0));
    return started;
  }

  async up(): Promise<void> {
    this.backend = await (this.setup.redis ?? (() => RedisServer.start() as unknown as Promise<R>))();
    const { hosts } = this.setup;
    if (hosts) await this.start(hosts.mode, hosts.count, hosts.workers, hosts.args);
  }

  /** After a test: its clients, and the hosts it started itself. */
  async afterTest(): Promise<void> {
    closeClients(this.clients.splice(0));
    if (this.setup.per === "each" || !this.setup.hosts) await this.stopHosts();
  }

  async down(): Promise<void> {
    await this.stopHosts();
    await this.backend?.stop();
  }

  private async stopHosts(): Promise<void> {
    for (const host of this.hosts.splice(0)) {
      const code = await host.stop();
      if (this.setup.cleanExit) assert.equal(code, 0, `${host.url} exit code`);
    }
  }
}

/**
 * Registers the mocha hooks of a Fleet in the calling describe block: Redis (and the setup's hosts)
 * before each test or before all, clients and the test's own hosts closed after each, the rest after.
 * Hooks run in the order registered: a hook that must run before the fleet's teardown (a SIGCONT
 * to a stopped process, say) goes above this call.
 */
export function withFleet<R extends Backend = RedisServer>(setup: FleetSetup<R>): Fleet<R> {
  const fleet = new Fleet(setup);
  const [up, down] = setup.per === "each" ? [beforeEach, afterEach] : [before, after];
  up(() => fleet.up());
  afterEach(() => fleet.afterTest());
  down(() => fleet.down());
  return fleet;
}
