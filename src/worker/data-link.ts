import { EventEmitter } from "node:events";
import net from "node:net";
import { Backlog } from "../ipc/backlog";
import { encodeFrame, FrameDecoder } from "../ipc/frames";
import type { ToPrimary, ToWorker } from "../ipc/messages";
import type { CatchUp } from "../primary/room-routes";
import type { RemoteCatchUp } from "../tiers/redis/host-routes";
import type { LateCatchUp } from "../tiers/redis/log-routes";
import { compareStreamIds, isStreamId } from "../tiers/recovery/offsets";

/** `${publisher}\0${number}` of a broadcast from another host (host-routes.ts tags them), else undefined. */
function originOf(message: unknown): string | undefined {
  const { sfo, sfs } = message as { sfo?: unknown; sfs?: unknown };
  return typeof sfo === "string" && typeof sfs === "number" ? `${sfo}\0${sfs}` : undefined;
}

/** A recoverable broadcast's shared-log id, when its offset is one (recovery on, host in step with the shared log). */
function streamIdOf(message: unknown): string | undefined {
  const offset = (message as { offset?: unknown }).offset;
  return typeof offset === "string" && isStreamId(offset) ? offset : undefined;
}

/** Catch-ups with the same place go in stream order where both have a stream id, else in the primary's order. */
function byPlace(a: CatchUp, b: CatchUp): number {
  if (a.at !== b.at) return a.at - b.at;
  const ai = streamIdOf(a.message);
  const bi = streamIdOf(b.message);
  return (ai !== undefined && bi !== undefined ? compareStreamIds(ai, bi) : 0) || a.seq - b.seq;
}

type Reply = Extract<ToWorker, { id: number }>;

/** What the link may hold unsent before new publishes are refused (see {@link DataLink.refuseWhenFull}). */
export interface LinkBound {
  maxBytes: number;
  /** A publish was refused (or, volatile, dropped) with `unsent` bytes waiting. */
  onFull(unsent: number, dropped: boolean): void;
}

/** Thrown to the app by a broadcast refused because the primary is not keeping up with this worker. */
export class ChannelFullError extends Error {
  readonly code = "SOCKFLEET_CHANNEL_FULL";
}
type Request = Extract<ToPrimary, { id: number }>;

/**
 * The worker's end of the data channel (see primary/data-hub.ts): adapter traffic and recovery
 * messages, in order, plus request/response matched by id. Replies are handled synchronously in
 * the order they arrive, interleaved with the other messages exactly as the primary sent them.
 */
export class DataLink extends EventEmitter<{ message: [message: unknown]; undecodable: [err: unknown, bytes: number] }> {
  private nextId = 0;
  private readonly backlog = new Backlog();
  private readonly waiting = new Map<number, { settle: (reply: Reply) => void; timer: NodeJS.Timeout }>();
  /** Frames received from the primary, the unit of a catch-up's place (see {@link DataLink.hold}). */
  private received = 0;
  /** Holds not yet released, oldest first: the count of frames received when each began. */
  private readonly holds: Array<{ n: number; floor?: string }> = [];
  /** The newest shared-log id among the broadcasts delivered (see {@link placeLate}). */
  private delivered?: string;
  private held: Array<{ n: number; message: unknown }> = [];
  private inserts: CatchUp[] = [];

  private constructor(
    private readonly socket: net.Socket,
    private readonly bound: LinkBound,
  ) {
    super();
    this.setMaxListeners(0);
    const decoder = new FrameDecoder((err, bytes) => {
      // Counted, to stay in step with the primary's count (off by the frames of its chunk before it).
      this.received++;
      this.emit("undecodable", err, bytes);
    });
    socket.on("data", (chunk: Buffer) => {
      for (const { message, tag } of decoder.pushFrames(chunk)) {
        this.received++;
        // A recoverable broadcast forwarded as the publishing worker encoded it, its offset in the tag.
        if (tag !== "") Object.assign(message as object, { offset: tag, sequence: undefined });
        if (this.holds.length > 0 && (message as { sf?: unknown }).sf !== "routes-ack") this.held.push({ n: this.received, message });
        else this.deliver(message);
      }
    });
    // A reset or broken pipe ends the link ("close" follows), not the process.
    socket.on("error", () => socket.destroy());
  }

  static connect(path: string, worker: number, bound: LinkBound): Promise<DataLink> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path, () => {
        socket.off("error", reject);
        const link = new DataLink(socket, bound);
        link.send({ hello: worker });
        resolve(link);
      });
      socket.once("error", reject);
    });
  }

  /** Called once when the primary's end goes away. */
  onClose(listener: () => void): void {
    this.socket.once("close", listener);
  }

  /**
   * Before a new publish (a broadcast or server-side emit of the app): with more than `maxBytes`
   * waiting unsent (behind the frame being written, see {@link Backlog}), the primary is not
   * keeping up. The publish is refused (ChannelFullError, to
   * the code that emitted) rather than queued without bound; a volatile one is dropped, as
   * volatile allows. Returns false when it must be dropped. Bookkeeping (rooms, sessions, replies)
   * is never refused: it is small, and losing it would corrupt what recovery knows.
   */
  refuseWhenFull(volatile: boolean): boolean {
    if (this.backlog.behind() <= this.bound.maxBytes) return true;
    const unsent = this.socket.writableLength;
    this.bound.onFull(unsent, volatile);
    if (volatile) return false;
    throw new ChannelFullError(`the data channel to the primary holds ${unsent} bytes unsent (--max-channel-bytes ${this.bound.maxBytes}): broadcast refused`);
  }

  send(message: unknown): void {
    if (this.socket.destroyed) return;
    const frame = encodeFrame(message);
    this.socket.write(frame, this.backlog.add(frame.length));
  }

  /** Reserves a request id whose reply goes to `onReply` (or `onTimeout` after `ms`). */
  expect(onReply: (reply: Reply) => void, onTimeout: () => void, ms: number): number {
    const id = ++this.nextId;
    const timer = setTimeout(() => {
      this.waiting.delete(id);
      onTimeout();
    }, ms);
    this.waiting.set(id, { settle: onReply, timer });
    return id;
  }

  request(build: (id: number) => Request, onReply: (reply: Reply) => void, onTimeout: () => void, ms: number): void {
    this.send(build(this.expect(onReply, onTimeout, ms)));
  }

  /**
   * From now until a matching {@link DataLink.release}, frames from the primary are held: a room
   * was joined, and broadcasts routed before the primary knew may still come as a catch-up, to be
   * delivered in the primary's order among them (primary/room-routes.ts).
   */
  hold(): void {
    this.holds.push({ n: this.received, floor: this.delivered });
  }

  /**
   * Ends the oldest hold (answers come in the order of the announcements); `items` go right after
   * the frame they name. What no later hold can still place a catch-up before is delivered now: a
   * hold's catch-ups all follow the frames received before it began, so under a stream of joins
   * (a connection storm: each socket joins its own id room) frames wait one round trip, not for a
   * quiet moment.
   */
  release(items: CatchUp[], remote: RemoteCatchUp[] = [], late: LateCatchUp[] = []): void {
    const ended = this.holds.shift();
    const placed0 = remote.length > 0 ? this.placeRemote(remote, items) : [];
    const placed1 = late.length > 0 ? this.placeLate(late, items, ended?.floor) : [];
    if (items.length > 0 || placed0.length > 0 || placed1.length > 0) {
      this.inserts.push(...items, ...placed0, ...placed1);
      this.inserts.sort(byPlace);
    }
    const until = this.holds[0]?.n ?? Number.POSITIVE_INFINITY;
    const held = this.held;
    const inserts = this.inserts;
    let frames = 0;
    let placed = 0;
    const release: unknown[] = [];
    for (; frames < held.length && held[frames].n <= until; frames++) {
      while (placed < inserts.length && inserts[placed].at < held[frames].n) release.push(inserts[placed++].message);
      release.push(held[frames].message);
    }
    while (placed < inserts.length && inserts[placed].at < until) release.push(inserts[placed++].message);
    this.held = held.slice(frames);
    this.inserts = inserts.slice(placed);
    // Dispatched after the bookkeeping: a dispatched message may join a room and begin a new hold.
    for (const message of release) this.deliver(message);
  }

  /**
   * Broadcasts from other hosts a join missed (tiers/redis/host-routes.ts), placed by their
   * publisher's order: before the first frame held from the same publisher with a higher number,
   * else after every frame received so far. One already held or placed is a copy that came
   * directly (published after the room's SUBSCRIBE, or while it was in flight): dropped.
   */
  private placeRemote(remote: RemoteCatchUp[], local: CatchUp[]): CatchUp[] {
    const have = new Set<string>();
    // A room broadcast this host received while the room's SUBSCRIBE was in flight may be both
    // here and among the primary's own catch-ups (`local`) or what it sent.
    for (const { message } of [...this.held, ...this.inserts, ...local]) {
      const tag = originOf(message);
      if (tag) have.add(tag);
    }
    const out: CatchUp[] = [];
    for (const [origin, seq, message] of remote) {
      if (have.has(`${origin}\0${seq}`)) continue;
      have.add(`${origin}\0${seq}`);
      const next = this.held.find(({ message: m }) => (m as { sfo?: unknown }).sfo === origin && ((m as { sfs?: number }).sfs ?? 0) > seq);
      out.push({ at: next ? next.n - 1 : this.received, seq, message });
    }
    return out;
  }

  /**
   * Shared-log entries of rooms just joined that this host did not read live
   * (tiers/redis/log-routes.ts), placed by stream id: before the first frame held with a higher
   * one, else after every frame received so far (a hold's frames all came after the join, and
   * every entry owed to it has a higher id than anything this worker got before it). Placed at
   * the end when the host is out of step with the shared log (local offsets), as the primary
   * logged them. One held or placed already is a copy: dropped; so is one older than what this
   * worker delivered before the join (`floor`): it was appended before the join, so it is not
   * owed, and it could not be delivered in order.
   */
  private placeLate(late: LateCatchUp[], local: CatchUp[], floor: string | undefined): CatchUp[] {
    const have = new Set<string>();
    for (const { message } of [...this.held, ...this.inserts, ...local]) {
      const id = streamIdOf(message);
      if (id !== undefined) have.add(id);
    }
    const out: CatchUp[] = [];
    for (const [id, message] of late) {
      if (have.has(id) || (floor !== undefined && compareStreamIds(id, floor) <= 0)) continue;
      have.add(id);
      const inStep = streamIdOf(message) === id;
      const next = inStep ? this.held.find(({ message: m }) => {
        const held = streamIdOf(m);
        return held !== undefined && compareStreamIds(held, id) > 0;
      }) : undefined;
      out.push({ at: next ? next.n - 1 : this.received, seq: 0, message });
    }
    return out;
  }

  private deliver(message: unknown): void {
    const id = streamIdOf(message);
    if (id !== undefined && (this.delivered === undefined || compareStreamIds(id, this.delivered) > 0)) this.delivered = id;
    try {
      this.dispatch(message);
    } catch (err) {
      // A payload this worker decodes but cannot deliver (nested too deep for the Socket.IO
      // encoder) fails before any client gets it: skip it, as an undecodable one, rather than end
      // the process (the primary forwards broadcasts without decoding them again).
      this.emit("undecodable", err, 0);
    }
  }

  private dispatch(message: unknown): void {
    const sf = (message as { sf?: unknown }).sf;
    if (sf === "offset" || sf === "restored" || sf === "routes-ack") {
      const reply = message as Reply;
      const entry = this.waiting.get(reply.id);
      if (!entry) return;
      this.waiting.delete(reply.id);
      clearTimeout(entry.timer);
      entry.settle(reply);
      return;
    }
    this.emit("message", message);
  }
}
