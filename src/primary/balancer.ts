import type net from "node:net";
import type { Worker } from "node:cluster";
import type { Logger } from "../observability/logger";
import type { ToWorker } from "../ipc/messages";
import type { Ticket } from "./intake/admission";
import { refuse } from "./intake/respond";

/** A handshake counts against its worker until its session opens, or this long at most. */
const PENDING_TTL_MS = 10_000;
/**
 * A request may carry a session id the balancer has not heard of yet: the worker's handshake
 * reply can reach the client before the worker's "session opened" message reaches the primary.
 * Such a request waits this long for the session to appear before it is balanced like a new one.
 */
const UNKNOWN_SID_WAIT_MS = 250;
/** A worker that does not confirm a hand-over within this time is presumed stuck; the client is dropped. */
const HANDOFF_TIMEOUT_MS = 10_000;
/**
 * A connection whose hand-over failed goes to another worker at most this many times, then is
 * refused: a failure is reported on the next tick, so routing again without a bound would spin
 * the primary's event loop (nothing else runs between ticks: not the worker's exit, not SIGTERM).
 */
const MAX_REROUTES = 3;

const SID_PATTERN = /[?&]sid=([\w-]{1,64})/;
const EIO_PATTERN = /[?&]EIO=\d/;

interface Load {
  sessions: number;
  /** Times at which handshakes were routed here whose sessions have not opened yet. */
  pending: number[];
}

/** The first line of an HTTP request: `GET /socket.io/?EIO=4&sid=... HTTP/1.1`. */
function requestLine(head: Buffer): string {
  const end = head.indexOf("\r\n");
  return head.toString("latin1", 0, end === -1 ? Math.min(head.length, 4096) : end);
}

/**
 * Sticky, least-connection balancing at the TCP level, in the primary.
 *
 * Each connection's first request head (read by the Intake, which also admits connections)
 * decides its worker: a request carrying an Engine.IO session id
 * goes to the worker owning that session, anything else to the least-loaded worker. Two defects of
 * the stock @socket.io/sticky are avoided here:
 * - the socket handle stops reading before it is handed over, so bytes the client sends meanwhile
 *   (a WebSocket client's CONNECT packet) stay in the kernel for the worker instead of being read
 *   and discarded by the primary;
 * - a handshake counts against its worker as soon as it is routed, not once its session opens, so
 *   a burst of connects spreads instead of piling onto the worker that looked idlest.
 */
export class StickyBalancer {
  private readonly sessions = new Map<string, number>();
  private readonly loads = new Map<number, Load>();
  private rotation = 0;
  /** Workers being replaced: they keep their sessions but get no new ones. */
  private readonly draining = new Set<number>();
  /**
   * Workers still running the old code during a rolling restart. New sessions prefer the others,
   * so a client told to reconnect lands on a worker already replaced and is not moved twice.
   */
  private readonly stale = new Set<number>();
  /** Connections sent to a worker that has not confirmed them yet; the primary keeps its copy until then. */
  private readonly inFlight = new Map<number, { socket: net.Socket; head: Buffer; ticket: Ticket; worker: number; timer: NodeJS.Timeout }>();
  /** Connections a worker took, until it reports them closed or exits: their tickets count for the host. */
  private readonly owned = new Map<number, { ticket: Ticket; worker: number }>();
  private handoffSeq = 0;
  /** Requests waiting for their session id to be announced. */
  private readonly awaitingSid = new Map<string, Array<() => void>>();

  constructor(
    private readonly workers: () => Worker[],
    private readonly logger: Logger,
    private readonly release: (ticket: Ticket) => void,
  ) {}

  /** The host drains: only requests of sessions it holds are routed; anything else is refused. */
  private refuseNew = false;

  /**
   * The host drains (scale-in): requests of the sessions it holds still reach their worker, so a
   * long-polling client works until it is told to go; every other request (a new handshake) is
   * answered 503, and the client's retry goes to another host.
   */
  refuseNewSessions(): void {
    this.refuseNew = true;
  }

  /** Worker `id` can take connections from now on. */
  addWorker(id: number): void {
    this.loads.set(id, { sessions: 0, pending: [] });
  }

  /**
   * Worker `id` is being replaced: requests of its sessions still reach it (a long-polling client
   * keeps working until it is told to reconnect), but new sessions go to the other workers.
   */
  drainWorker(id: number): void {
    if (this.loads.has(id)) this.draining.add(id);
  }

  /** A rolling restart starts: workers `ids` are to be replaced. */
  markStale(ids: number[]): void {
    for (const id of ids) this.stale.add(id);
  }

  /** The rolling restart is over (complete or aborted): every worker is a candidate again. */
  clearStale(): void {
    this.stale.clear();
  }

  /** Worker `id` is gone: forget its sessions so their clients reconnect elsewhere. */
  removeWorker(id: number): void {
    this.draining.delete(id);
    this.stale.delete(id);
    this.loads.delete(id);
    for (const [sid, owner] of this.sessions) if (owner === id) this.sessions.delete(sid);
  }

  /**
   * Worker `id` exited: connections it never confirmed are routed again, to a live worker; those
   * it owned died with it.
   */
  workerExited(id: number): void {
    this.removeWorker(id);
    for (const [handoff, entry] of this.inFlight) {
      if (entry.worker !== id) continue;
      this.inFlight.delete(handoff);
      clearTimeout(entry.timer);
      this.route(entry.socket, entry.head, entry.ticket, true);
    }
    for (const [handoff, entry] of this.owned) {
      if (entry.worker !== id) continue;
      this.owned.delete(handoff);
      this.release(entry.ticket);
    }
  }

  /** The worker owns the connection now: close the primary's copy of the handle. */
  accepted(handoff: number): void {
    const entry = this.inFlight.get(handoff);
    if (!entry) return;
    this.inFlight.delete(handoff);
    clearTimeout(entry.timer);
    entry.ticket.transferred = true;
    this.owned.set(handoff, { ticket: entry.ticket, worker: entry.worker });
    // Closing our descriptor does not shut the connection down: the worker holds its own.
    entry.socket.destroy();
  }

  /** Connections handed over as `handoffs` closed in their worker. */
  released(handoffs: readonly number[]): void {
    for (const handoff of handoffs) {
      const entry = this.owned.get(handoff);
      if (!entry) continue;
      this.owned.delete(handoff);
      this.release(entry.ticket);
    }
  }

  sessionOpened(worker: number, sid: string): void {
    const load = this.loads.get(worker);
    if (!load) return;
    this.sessions.set(sid, worker);
    load.sessions++;
    load.pending.shift();
    const waiting = this.awaitingSid.get(sid);
    if (waiting) {
      this.awaitingSid.delete(sid);
      for (const resume of waiting) resume();
    }
  }

  sessionClosed(worker: number, sid: string): void {
    if (this.sessions.get(sid) !== worker) return;
    this.sessions.delete(sid);
    const load = this.loads.get(worker);
    if (load) load.sessions = Math.max(0, load.sessions - 1);
  }

  /** Sessions per worker id, for metrics and tests. */
  sessionCounts(): Record<number, number> {
    const counts: Record<number, number> = {};
    for (const [id, load] of this.loads) counts[id] = load.sessions;
    return counts;
  }

  /** Sends a connection whose first request head is `head` to its worker. */
  route(socket: net.Socket, head: Buffer, ticket: Ticket, waited = false, reroutes = 0): void {
    // Closed meanwhile (while waiting for its session, or in a worker that exited): nothing to route.
    if (socket.destroyed) return;
    const line = requestLine(head);
    const sid = SID_PATTERN.exec(line)?.[1];
    if (sid !== undefined && !waited && !this.sessions.has(sid)) {
      this.waitForSession(sid, () => this.route(socket, head, ticket, true));
      return;
    }
    const owner = sid === undefined ? undefined : this.sessions.get(sid);
    const isHandshake = sid === undefined && EIO_PATTERN.test(line);
    if (this.refuseNew && (owner === undefined || !this.liveWorker(owner))) {
      refuse(socket, 503);
      return;
    }
    const worker = owner !== undefined ? this.liveWorker(owner) ?? this.pick() : this.pick();
    if (!worker) {
      refuse(socket, 503);
      return;
    }
    if (isHandshake) this.loads.get(worker.id)?.pending.push(Date.now());
    this.handOver(socket, worker, head, ticket, reroutes);
  }

  private waitForSession(sid: string, resume: () => void): void {
    let done = false;
    const once = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resume();
    };
    const timer = setTimeout(() => {
      const waiting = this.awaitingSid.get(sid);
      const rest = waiting?.filter((fn) => fn !== once) ?? [];
      if (rest.length > 0) this.awaitingSid.set(sid, rest);
      else this.awaitingSid.delete(sid);
      once();
    }, UNKNOWN_SID_WAIT_MS);
    const waiting = this.awaitingSid.get(sid);
    if (waiting) waiting.push(once);
    else this.awaitingSid.set(sid, [once]);
  }

  /**
   * A worker that can take a connection now. Its IPC channel closes before its exit is reported
   * (a SIGKILLed worker): from then on it counts as gone here.
   */
  private liveWorker(id: number): Worker | undefined {
    return this.loads.has(id) ? this.workers().find((w) => w.id === id && w.isConnected()) : undefined;
  }

  /** The worker with the fewest sessions plus handshakes in flight; ties rotate. */
  private pick(): Worker | undefined {
    const open = this.workers().filter((w) => this.loads.has(w.id) && !this.draining.has(w.id) && w.isConnected());
    const replaced = open.filter((w) => !this.stale.has(w.id));
    const candidates = replaced.length > 0 ? replaced : open;
    if (candidates.length === 0) return undefined;
    const now = Date.now();
    let best: Worker | undefined;
    let bestScore = Infinity;
    for (let i = 0; i < candidates.length; i++) {
      const worker = candidates[(this.rotation + i) % candidates.length];
      const load = this.loads.get(worker.id)!;
      while (load.pending.length > 0 && now - load.pending[0] > PENDING_TTL_MS) load.pending.shift();
      const score = load.sessions + load.pending.length;
      if (score < bestScore) {
        best = worker;
        bestScore = score;
      }
    }
    this.rotation = (this.rotation + 1) % candidates.length;
    return best;
  }

  private handOver(socket: net.Socket, worker: Worker, head: Buffer, ticket: Ticket, reroutes: number): void {
    // Stop reading before the handle is shared: bytes the client sends meanwhile (a WebSocket
    // client's CONNECT packet) must stay in the kernel for the worker, not be read here.
    const handle = (socket as unknown as { _handle?: { readStop?: () => number } })._handle;
    handle?.readStop?.();
    socket.pause();
    // keepOpen: the primary keeps its copy until the worker confirms, so a connection sent to a
    // worker that dies before taking it is routed again instead of silently closed.
    const handoff = ++this.handoffSeq;
    const timer = setTimeout(() => {
      if (!this.inFlight.delete(handoff)) return;
      this.logger.warn({ worker: worker.id }, "worker did not take a connection in time; dropped");
      socket.destroy();
    }, HANDOFF_TIMEOUT_MS);
    this.inFlight.set(handoff, { socket, head, ticket, worker: worker.id, timer });
    const message: ToWorker = { sf: "connection", handoff, head: head.toString("base64") };
    const failed = (err: unknown): void => {
      if (!this.inFlight.delete(handoff)) return;
      clearTimeout(timer);
      if (reroutes >= MAX_REROUTES) {
        this.logger.warn({ err, worker: worker.id, reroutes }, "hand-over failed again; connection refused");
        refuse(socket, 503);
        return;
      }
      this.logger.warn({ err, worker: worker.id }, "hand-over failed; routing the connection again");
      this.route(socket, head, ticket, true, reroutes + 1);
    };
    try {
      worker.send(message, socket, { keepOpen: true }, (err: Error | null) => {
        if (err) failed(err);
      });
    } catch (err) {
      failed(err);
    }
  }
}
