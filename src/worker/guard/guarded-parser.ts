import { Decoder as SioDecoder, Encoder, PacketType } from "socket.io-parser";
import type { LimitHits, LimitName } from "../../observability/limits";
import { FROM_SESSION_START } from "../../tiers/recovery/offsets";
import { EventRate, type RateSettings } from "./event-rate";
import { BINARY_EVENT, checkPacket, EVENT, readHeader, type PacketLimits } from "./packet-limits";

/** Reserved event a client gets once per episode in which its events are dropped for its rate. */
export const RATE_LIMITED_EVENT = "sockfleet:rate-limited";

/** The part of an Engine.IO socket the decoder uses. */
export interface EngineConn {
  id: string;
  write(data: string): unknown;
}


/** A refusal thrown out of `Decoder.add`: socket.io then closes the client's connection. */
export class PacketRefused extends Error {
  constructor(
    readonly limit: LimitName,
    message: string,
  ) {
    super(message);
    this.name = "PacketRefused";
  }
}

const byteLength = (chunk: unknown): number =>
  Buffer.isBuffer(chunk) || chunk instanceof ArrayBuffer || ArrayBuffer.isView(chunk) ? (chunk as ArrayBuffer).byteLength : 0;

/**
 * Makes a CONNECT that brings a session id (`pid`) but no `offset` a restore request from where
 * the session began (FROM_SESSION_START, see tiers/recovery/store.ts).
 *
 * socket.io-client learns an offset only from the extra last argument of a broadcast, so a client
 * that received none before its connection dropped (its worker died, say) reconnects with
 * `{ pid }` alone, and socket.io restores a session only when both are strings: the client would
 * get a new session and silently miss what was sent meanwhile. Sending every client a starting
 * offset right after CONNECT would also work, but only as an event, which reaches the client's
 * `onAny` listeners and, in clients without recovery, the app. Here nothing is sent: the primary
 * remembers where each session began, and a pid-only CONNECT means the client got nothing since.
 *
 * The offset is not enumerable, so an app that lists or logs `socket.handshake.auth` sees the
 * CONNECT as the client sent it. Without recovery socket.io ignores both fields.
 */
function resumeFromStart(packet: { type: number; data?: unknown }): void {
  if (packet.type !== PacketType.CONNECT || typeof packet.data !== "object" || packet.data === null) return;
  const auth = packet.data as { pid?: unknown; offset?: unknown };
  if (typeof auth.pid !== "string" || auth.offset !== undefined) return;
  Object.defineProperty(auth, "offset", { value: FROM_SESSION_START, enumerable: false, writable: true, configurable: true });
}

/**
 * A Socket.IO `parser` whose Decoder checks every client packet before socket.io-parser
 * JSON-parses it: shape limits (argument count, depth, attachments) and the event rate. socket.io
 * builds one Decoder per client connection, synchronously inside the engine's "connection" event,
 * so the Decoder learns its connection from `attach`, which prepends a listener to that event.
 * The Encoder stays socket.io-parser's: only client-to-server packets need checking.
 */
export interface GuardedParser {
  Encoder: typeof Encoder;
  Decoder: typeof SioDecoder;
  /** Lets each new Decoder find its connection; call once, right after creating the Server. */
  attach(engine: { prependListener(event: "connection", fn: (conn: EngineConn) => void): unknown }): void;
}

export function guardedParser(limits: PacketLimits, rate: RateSettings, hooks: LimitHits): GuardedParser {
  let arriving: EngineConn | undefined;
  const encoder = new Encoder();

  class Decoder extends SioDecoder {
    private readonly conn = arriving;
    private readonly rate = rate.perSecond > 0 ? new EventRate(rate) : undefined;
    /** Attachments still to come of a binary packet dropped for its rate. */
    private skipBinary = 0;
    private attachmentBytes = 0;

    constructor() {
      // 0 means no limit of ours; socket.io-parser's own default (10) must not cap it then.
      super({ maxAttachments: limits.maxAttachments > 0 ? limits.maxAttachments : Number.MAX_SAFE_INTEGER });
      arriving = undefined;
      // Registered before socket.io's own listener (it attaches after construction), so it runs first.
      this.on("decoded", resumeFromStart);
    }

    override add(obj: unknown): void {
      if (typeof obj !== "string") return this.addBinary(obj);
      this.attachmentBytes = 0;
      this.skipBinary = 0;
      const header = readHeader(obj);
      if (this.rate && (header.type === EVENT || header.type === BINARY_EVENT) && !this.admit(header.nsp)) {
        this.skipBinary = header.attachments;
        return;
      }
      const violation = checkPacket(obj, header, limits);
      if (violation) this.refuse(violation.limit, violation.message, { ...violation.details, bytes: obj.length });
      super.add(obj);
    }

    private addBinary(obj: unknown): void {
      if (this.skipBinary > 0) {
        this.skipBinary--;
        return;
      }
      this.attachmentBytes += byteLength(obj);
      if (this.attachmentBytes > limits.maxAttachmentBytes) {
        this.refuse("max-attachments", "binary attachments too large", { bytes: this.attachmentBytes, max: limits.maxAttachmentBytes });
      }
      super.add(obj);
    }

    /** Takes a token; false when the event is to be dropped (throws when the client is to go). */
    private admit(nsp: string): boolean {
      const verdict = this.rate!.take();
      if (verdict === "pass") return true;
      if (verdict === "disconnect") this.refuse("rate-limit-grace", "over the event rate for longer than the grace", { graceMs: rate.graceMs });
      hooks.hit("max-events-per-second", { sid: this.conn?.id, nsp }, "event dropped: over the event rate");
      if (verdict === "drop-first") this.notify(nsp);
      return false;
    }

    private notify(nsp: string): void {
      const data = [RATE_LIMITED_EVENT, { limit: rate.perSecond, burst: rate.burst, graceMs: rate.graceMs }];
      for (const encoded of encoder.encode({ type: PacketType.EVENT, nsp, data })) this.conn?.write(encoded as string);
    }

    private refuse(limit: LimitName, message: string, details: Record<string, unknown>): never {
      hooks.hit(limit, { sid: this.conn?.id, ...details }, `client disconnected: ${message}`);
      throw new PacketRefused(limit, message);
    }
  }

  return {
    Encoder,
    Decoder,
    attach(engine) {
      engine.prependListener("connection", (conn) => {
        arriving = conn;
      });
    },
  };
}
