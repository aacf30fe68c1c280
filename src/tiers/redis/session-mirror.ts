import { commandOptions } from "redis";
import { decode, encode } from "notepack.io";
import type { Logger } from "../../observability/logger";
import type { TakeResult } from "../recovery/host";
import type { SharedSession } from "../recovery/store";
import type { KeyCommands } from "./transport";
import type { Channels } from "./channels";

/** Session changes are written in batches at most this often. */
const FLUSH_EVERY_MS = 20;
/** How often a takeover looks again at a session another (live) host still holds. */
const TAKE_POLL_MS = 250;
const FLUSH_BATCH = 1_000;

export interface SessionMirrorOptions {
  bridgeId: string;
  channels: Channels;
  /** Sessions of a host that stopped heartbeating stay takeable this long (the recovery window). */
  windowMs: number;
  /**
   * How long a takeover waits for a session's host to let go of it (mark it disconnected) or to be
   * declared dead; past it the client gets a fresh session.
   */
  takeTimeoutMs: number;
  /** The current state of a local session, undefined once forgotten. */
  snapshot(pid: string): SharedSession | undefined;
  /** Pids of every local session. */
  pids(): Iterable<string>;
  /** Whether the bridge still hears from that host. */
  hostAlive(bridgeId: string): boolean;
  /** Tells every host this one took the session (they forget their copy). */
  announceTaken(pid: string): void;
}

/**
 * This host's sessions, mirrored to Redis so another host can take one over when its client comes
 * back there: after this host died, or after the client's worker here died and the client
 * reconnected elsewhere.
 *
 * One hash per host (pid -> session), its expiry pushed back by every heartbeat: when the host
 * dies, its sessions stay takeable for the recovery window, then Redis drops them. A takeover
 * deletes the field (HDEL answers 1 to exactly one taker), so a session is taken at most once.
 */
export class SessionMirror {
  private readonly dirty = new Set<string>();
  private flushTimer?: NodeJS.Timeout;
  private readonly key: string;
  /** How long Redis keeps this host's sessions, and lists it among the hosts, after its last word. */
  private readonly ttlMs: number;

  constructor(
    private readonly redis: { readonly keys: KeyCommands },
    private readonly pubUp: () => boolean,
    private readonly options: SessionMirrorOptions,
    private readonly log: Logger,
  ) {
    this.key = options.channels.sessions(options.bridgeId);
    this.ttlMs = options.windowMs + 10_000;
  }

  /** A local session changed; written with the next batch. */
  changed(pid: string): void {
    this.dirty.add(pid);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_EVERY_MS);
  }

  /**
   * Redis is reachable again. It may have restarted empty (the sessions of this host gone with it),
   * so every session is written again.
   */
  rewriteAll(): void {
    for (const pid of this.options.pids()) this.dirty.add(pid);
    this.heartbeat();
  }

  /** With each bridge heartbeat: this host is alive, keep its sessions. */
  heartbeat(): void {
    if (!this.pubUp()) return;
    const now = Date.now();
    void Promise.all([
      this.redis.keys.zAdd(this.options.channels.hosts, { score: now, value: this.options.bridgeId }),
      this.redis.keys.pExpire(this.key, this.ttlMs),
      this.redis.keys.zRemRangeByScore(this.options.channels.hosts, 0, now - this.ttlMs),
    ]).catch((err: unknown) => this.log.debug({ err }, "session heartbeat failed"));
    if (this.dirty.size > 0) this.flush();
  }

  /** Writes the pending changes; kept for later while Redis is unreachable. */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.pubUp() || this.dirty.size === 0) return;
    const pids = [...this.dirty];
    this.dirty.clear();
    // Batches of bounded size: a host with many sessions rewrites them all after a Redis restart.
    for (let from = 0; from < pids.length; from += FLUSH_BATCH) {
      const chunk = pids.slice(from, from + FLUSH_BATCH);
      const batch = this.redis.keys.multi();
      for (const pid of chunk) {
        const session = this.options.snapshot(pid);
        if (session) batch.hSet(this.key, pid, encode(session));
        else batch.hDel(this.key, pid);
      }
      batch.pExpire(this.key, this.ttlMs);
      batch.exec().catch((err: unknown) => {
        this.log.debug({ err, sessions: chunk.length }, "mirroring sessions failed; retrying");
        for (const pid of chunk) this.dirty.add(pid);
      });
    }
  }

  /**
   * Takes over session `pid` from the host that holds or held it. While that host is alive and
   * still holds it connected (it has not noticed the disconnect yet), waits for it to let go, up
   * to the take timeout.
   */
  async take(pid: string, nsp: string): Promise<TakeResult> {
    const deadline = Date.now() + this.options.takeTimeoutMs;
    for (;;) {
      // null: Redis unreachable. Wait for it within the deadline (a restart takes seconds).
      const found = this.pubUp() ? await this.find(pid).catch(() => null) : null;
      if (found === undefined) return { refused: "no host shares this session" };
      if (found !== null) {
        if (found.session.nsp !== nsp) return { refused: "session of another namespace" };
        if (!found.session.connected || !this.options.hostAlive(found.host)) {
          const removed = await this.redis.keys.hDel(this.options.channels.sessions(found.host), pid);
          if (removed !== 1) return { refused: "another host took it first" };
          this.options.announceTaken(pid);
          return { session: found.session, from: found.host };
        }
      }
      if (Date.now() >= deadline) return { refused: found === null ? "redis unreachable" : `still held by live host ${found.host}` };
      await new Promise((resolve) => setTimeout(resolve, TAKE_POLL_MS));
    }
  }

  private async find(pid: string): Promise<{ host: string; session: SharedSession } | undefined> {
    const hosts = await this.redis.keys.zRangeByScore(this.options.channels.hosts, Date.now() - this.ttlMs, "+inf");
    const others = hosts.filter((host) => host !== this.options.bridgeId);
    const values = await Promise.all(others.map((host) => this.redis.keys.hGet(commandOptions({ returnBuffers: true }), this.options.channels.sessions(host), pid)));
    for (let i = 0; i < others.length; i++) {
      const raw = values[i];
      if (!raw) continue;
      try {
        return { host: others[i], session: decode(raw) as SharedSession };
      } catch (err) {
        this.log.warn({ err, host: others[i] }, "undecodable shared session");
      }
    }
    return undefined;
  }

  close(): void {
    clearTimeout(this.flushTimer);
  }
}
