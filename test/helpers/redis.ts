import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createClient } from "redis";
import { killTree, spawnTracked, waitForExit } from "./processes";
import { waitUntil } from "./wait";

/** A free TCP port on 127.0.0.1 (closed again at once; the caller binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one command to the redis-server on `port` with redis-cli semantics; returns the reply. */
export async function redisCommand(port: number, ...args: string[]): Promise<unknown> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    await client.disconnect();
  }
}

/** Parses an INFO section ("a:1\r\nb:2") into numbers and strings. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const cut = line.indexOf(":");
    if (cut > 0 && !line.startsWith("#")) out.set(line.slice(0, cut), line.slice(cut + 1));
  }
  return out;
}

/**
 * A real redis-server on a free port of 127.0.0.1 (never 6379), without persistence, run as its
 * own process and stopped by PID. It can be stopped and started again on the same port, for the
 * Redis restart tests.
 */
export class RedisServer {
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[],
  ) {}

  static async start(extraArgs: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), extraArgs);
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts (again) on the same port and waits until it answers PING. */
  async resume(): Promise<void> {
    if (this.running) return;
    this.child = spawnTracked("redis-server", [
      "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...this.extraArgs,
    ]);
    const child = this.child;
    await waitUntil(`redis-server on port ${this.port} to answer PING`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${child.exitCode}`);
      return (await redisCommand(this.port, "PING").catch(() => undefined)) === "PONG";
    }, 10_000, 20);
  }

  /** Kills the server (SIGKILL: like a crash, clients see their connections drop). */
  async stop(): Promise<void> {
    if (!this.child) return;
    const child = this.child;
    this.child = undefined;
    await killTree(child);
    await waitForExit(child, 5_000);
  }

  command(...args: string[]): Promise<unknown> {
    return redisCommand(this.port, ...args);
  }

  /** CLIENT LIST entries whose name starts with `prefix`. */
  async clients(prefix = "sockfleet:"): Promise<string[]> {
    const list = String(await this.command("CLIENT", "LIST"));
    return list.split("\n").filter((line) => new RegExp(`\\bname=${prefix}`).test(line));
  }

  async info(section: string): Promise<Map<string, string>> {
    return parseInfo(String(await this.command("INFO", section)));
  }
}

/**
 * A Redis Cluster of 3 masters built from `redis-server --cluster-enabled yes` processes, without
 * replicas, or with `replicas` per master (then a node not heard from for 1 s is failed over).
 */
export class RedisCluster {
  private constructor(
    readonly nodes: RedisServer[],
    /** Each node's cluster config and RDB file, removed at stop. */
    private readonly files: string[],
  ) {}

  static async start(replicas = 0): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    const paths: string[] = [];
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const port = await freePort();
      // Cluster state files go to a fresh name per port; cwd is the system temp dir.
      // With replicas: fail over after 1 s of silence, whatever the replica's lag (a test wants the failover).
      const timeout = replicas > 0 ? ["--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"] : [];
      // A replica writes the RDB it syncs from its master: a name of its own, never a shared dump.rdb
      // that every later redis-server in that directory would load.
      const files = ["--cluster-config-file", `sockfleet-test-nodes-${port}-${process.pid}.conf`, "--dbfilename", `sockfleet-test-dump-${port}-${process.pid}.rdb`];
      paths.push(path.join(os.tmpdir(), files[1]), path.join(os.tmpdir(), files[3]));
      nodes.push(await RedisServer.start(["--cluster-enabled", "yes", "--dir", os.tmpdir(), ...files, ...timeout]));
    }
    const create = spawnTracked("redis-cli", [
      "--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", String(replicas), "--cluster-yes",
    ]);
    const { code } = await waitForExit(create, 20_000);
    if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}`);
    await waitUntil("the cluster to report state ok", async () => {
      const states = await Promise.all(nodes.map(async (n) => parseInfo(String(await n.command("CLUSTER", "INFO"))).get("cluster_state")));
      return states.every((s) => s === "ok");
    }, 15_000, 100);
    await waitUntil("every replica to be in sync with its master", async () => {
      const infos = await Promise.all(nodes.map((n) => n.info("replication")));
      return infos.filter((i) => i.get("role") === "slave").length === 3 * replicas && infos.every((i) => i.get("role") === "master" || i.get("master_link_status") === "up");
    }, 15_000, 100);
    return new RedisCluster(nodes, paths);
  }

  get url(): string {
    return this.nodes[0].url;
  }

  /** The node whose slots hold `key` (a key or a sharded channel): the others answer MOVED. */
  async nodeOf(key: string): Promise<RedisServer> {
    for (const node of this.nodes.filter((n) => n.running)) {
      const slot = Number(await node.command("CLUSTER", "KEYSLOT", key));
      const owned = (await node.command("CLUSTER", "SLOTS")) as Array<[number, number, [string, number, string]]>;
      const owner = owned.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
      const found = this.nodes.find((n) => n.port === Number(owner));
      if (found) return found;
    }
    throw new Error(`no node of the cluster holds ${key}`);
  }

  /** Waits until every running node reports cluster_state:ok (after a node restarted or failed over, say). */
  async waitOk(ms = 15_000): Promise<void> {
    await waitUntil("the cluster to report state ok", async () => {
      const states = await Promise.all(this.nodes.filter((n) => n.running).map(async (n) => parseInfo(String(await n.command("CLUSTER", "INFO").catch(() => ""))).get("cluster_state")));
      return states.every((s) => s === "ok");
    }, ms, 100);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    for (const file of this.files) fs.rmSync(file, { force: true });
  }
}
