import type { Config } from "../../config/schema";
import type { ToPrimary, ToWorker } from "../../ipc/messages";
import type { AdapterMessage } from "../cluster/relay";
import type { Logger } from "../../observability/logger";
import { FROM_SESSION_START, isStreamId } from "./offsets";
import type { AppendOptions, EncodedArgs } from "./replay-log";
import { RecoveryStore, type SharedSession } from "./store";

/** A session taken over from another host, or why not. */
export type TakeResult = { session: SharedSession; from: string } | { refused: string };

/** The hosts tier's side of recovery: sessions shared with, and taken over from, other hosts. */
export interface FleetSessions {
  /** A session of this host changed: share it (see {@link RecoveryStore.share}). */
  changed(pid: string): void;
  /** Takes over a session another host holds or held, once it is free. */
  take(pid: string, nsp: string): Promise<TakeResult>;
  /** Resolves true once this host has read the shared log up to `streamId`; false if it did not in time. */
  readUpTo(streamId: string): Promise<boolean>;
  /**
   * With room routing (tiers/redis/log-routes.ts): reads, into this host's log, the entries of the
   * session's rooms after `from` that this host did not read.
   */
  cover?(nsp: string, rooms: string[], from: string): Promise<void>;
}

const SWEEP_EVERY_MS = 1_000;

/**
 * Connection-state recovery on one host: the primary's store, fed by the workers' session
 * messages and by the relay's sequencing of broadcasts, answering restore requests.
 */
export class HostRecovery {
  readonly store: RecoveryStore;
  private readonly sweeper: NodeJS.Timeout;
  private fleet?: FleetSessions;
  /** Sessions of other hosts asked for here, by outcome. */
  readonly takeovers = { recovered: 0, refused: 0 };
  /** Takeovers from other hosts in progress, by pid. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    config: Config,
    private readonly isLive: (worker: number) => boolean,
    private readonly reply: (worker: number, message: ToWorker) => void,
    private readonly log: Logger,
  ) {
    this.store = new RecoveryStore(
      {
        windowMs: config.recoveryWindow,
        maxPackets: config.recoveryMaxPackets,
        maxBytes: config.recoveryMaxBytes,
        maxSessions: config.recoveryMaxSessions,
      },
      (pid) => this.fleet?.changed(pid),
    );
    this.sweeper = setInterval(() => this.store.sweep(), SWEEP_EVERY_MS).unref();
  }

  /** The relay's sequencer: logs a recoverable broadcast, returns its offset. */
  readonly sequence = (message: AdapterMessage, options?: AppendOptions): string => {
    const { packet, opts } = message.data as { packet: { data: unknown[] }; opts: { rooms: string[]; except: string[] } };
    // The arguments are decoded only when the bytes they arrived in are not at hand.
    const data = options?.encoded ? undefined : packet.data;
    return this.store.append({ nsp: message.nsp, rooms: opts.rooms, except: opts.except ?? [], data }, Date.now(), options);
  };

  /** Logs a shared-log entry this host did not read live at its place (see {@link RecoveryStore.insertLate}). */
  readonly sequenceLate = (message: AdapterMessage, streamId: string, args: EncodedArgs, localOffset: boolean): string | undefined => {
    const { opts } = message.data as { opts: { rooms: string[]; except?: string[] } };
    return this.store.insertLate({ nsp: message.nsp, rooms: opts.rooms, except: opts.except ?? [] }, streamId, { localOffset, encoded: args });
  };

  /** Handles a worker's recovery message; returns false for other messages. */
  onMessage(worker: number, message: ToPrimary): boolean {
    switch (message.sf) {
      case "rooms-joined":
        this.store.joined(worker, message.nsp, message.sid, message.rooms, message.pid, message.data, message.offsets);
        return true;
      case "rooms-left":
        this.store.left(message.nsp, message.sid, message.rooms);
        return true;
      case "socket-ended":
        this.store.ended(message.nsp, message.sid);
        return true;
      case "session-persisted":
        this.store.persisted(message.nsp, message.sid, message.pid, message.rooms, message.data);
        return true;
      case "restore":
        void this.restore(worker, message);
        return true;
      default:
        return false;
    }
  }

  /**
   * Answers a worker's restore request. Synchronous unless the session must be taken over from
   * another host; a second request for a session being taken over (the client reconnected again
   * meanwhile, say because the worker it first reached died) waits for that takeover, then is
   * answered from this host's store.
   */
  private async restore(worker: number, request: { id: number; nsp: string; pid: string; offset: string }): Promise<void> {
    const pending = this.inFlight.get(request.pid);
    if (pending) await pending;
    if (this.fleet && !this.store.has(request.pid)) {
      const takeover = this.restoreFromFleet(this.fleet, worker, request);
      this.inFlight.set(request.pid, takeover);
      await takeover;
      this.inFlight.delete(request.pid);
      return;
    }
    const session = this.store.restore(worker, request.nsp, request.pid, request.offset, this.isLive);
    this.reply(worker, { sf: "restored", id: request.id, session });
  }

  /** Shares sessions with other hosts and takes theirs over (the hosts tier, with Redis). */
  setFleet(fleet: FleetSessions): void {
    this.fleet = fleet;
  }

  /**
   * A session this host does not know: the client comes from another host. Its offset must be a
   * shared-log id (the other host was in step with the shared log), and this host must have read
   * the shared log at least that far before the replay is cut from its log.
   */
  private async restoreFromFleet(fleet: FleetSessions, worker: number, request: { id: number; nsp: string; pid: string; offset: string }): Promise<void> {
    let session = null;
    this.log.info({ worker }, "taking over a session from another host");
    try {
      const fromStart = request.offset === FROM_SESSION_START;
      const taken = fromStart || isStreamId(request.offset) ? await fleet.take(request.pid, request.nsp) : { refused: "offset local to its host (out of step with the shared log)" };
      let refused = "refused" in taken ? taken.refused : undefined;
      // A client without an offset got nothing since its session began: replay from there.
      const offset = "session" in taken && fromStart ? taken.session.start : request.offset;
      if ("session" in taken && offset === undefined) refused = "the session's start in the shared log is unknown";
      else if ("session" in taken && offset !== undefined) {
        await fleet.cover?.(taken.session.nsp, taken.session.rooms, offset);
        // Adopting before this host has read as far as the client got would deliver the entries
        // in between a second time, live, as they are read: refuse instead.
        if (!(await fleet.readUpTo(offset))) refused = "this host has not read the shared log as far as the client got";
        else {
          session = this.store.adopt(worker, taken.session, offset);
          if (!session) refused = "offset older than this host's log";
        }
      }
      this.log.info({ sid: "session" in taken ? taken.session.sid : undefined, from: "from" in taken ? taken.from : undefined, recovered: session !== null, missed: session?.missedPackets.length, refused }, "session from another host");
    } catch (err) {
      this.log.warn({ err }, "taking over a session from another host failed");
    }
    this.takeovers[session ? "recovered" : "refused"]++;
    this.reply(worker, { sf: "restored", id: request.id, session });
  }

  workerGone(worker: number): void {
    this.store.workerGone(worker);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
