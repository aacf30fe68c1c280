import type { Prng } from "./prng";
import { deepNesting, hostileArg, longString, oddScalar, wide } from "./values";

/**
 * Generators of hostile Engine.IO packets (the text after any transport framing: "4" + a Socket.IO
 * packet, or an Engine.IO control packet; a Buffer is a binary message). Each generator is named for
 * the kind of input it makes; the name is what the fuzz counts are reported by.
 *
 * "Open" kinds leave a well-behaved server's connection open, so many fit in one session; "closing"
 * kinds make the server close the connection, so a session ends with one of them.
 */
export type EioPacket = string | Buffer;

export interface Generated {
  kind: string;
  /** Each is one packet on the wire (one WebSocket message, one record of a polling body). */
  packets: EioPacket[];
}

type Generator = (rng: Prng) => EioPacket[];

/** Event names of the chat app, and some it does not know. */
const EVENT_NAMES = ['"chat message"', '"join"', '"leave"', '"room message"', '"whoami"', '"nope"', '""', "0", "-1", '"constructor"', '"__proto__"', '"hasOwnProperty"'];
/** Events the chat app broadcasts are rare: each one is sent to every connected client. */
const eventName = (rng: Prng): string => (rng.chance(0.03) ? '"chat message"' : rng.pick(EVENT_NAMES.slice(1)));
const ackId = (rng: Prng): string => (rng.chance(0.3) ? String(rng.int(0, 2 ** 31)) : "");
const args = (rng: Prng, count: number): string => Array.from({ length: count }, () => "," + hostileArg(rng)).join("");

/** Packets a conforming server keeps the connection open after. */
export const OPEN_KINDS: Record<string, Generator> = {
  "event-wrong-types": (rng) => [`42${ackId(rng)}[${eventName(rng)}${args(rng, rng.int(0, 4))}]`],
  "event-huge-args": (rng) => {
    const count = rng.chance(0.01) ? rng.int(50_000, 150_000) : rng.int(100, 2_000);
    return [`42${ackId(rng)}[${eventName(rng)}${",0".repeat(count)}]`];
  },
  "event-deep-nesting": (rng) => {
    const depth = rng.chance(0.02) ? rng.int(10_000, 100_000) : rng.int(100, 2_000);
    const name = rng.chance(0.2) ? '"chat message"' : eventName(rng);
    return [`42${ackId(rng)}[${name},${deepNesting(rng, depth)}]`];
  },
  "event-wide-payload": (rng) => [`42[${eventName(rng)},${wide(rng, rng.int(1_000, 10_000))}]`],
  "event-large-payload": (rng) => [`42[${eventName(rng)},${longString(rng, rng.int(50_000, 900_000))}]`],
  "chat-garbage": (rng) => [`42["chat message"${args(rng, rng.int(0, 3))}]`],
  "unknown-namespace": (rng) => {
    const nsp = rng.pick(["/nope", "/admin", "/" + rng.string(rng.int(1, 40), "abcxyz/%.:[]"), "/\u00e9", "//"]);
    return [`40${nsp},${rng.chance(0.5) ? oddScalar(rng).replace(/^[^{].*/, "{}") : ""}`];
  },
  "forged-ack": (rng) => [`43${rng.int(0, 2 ** 31)}[${hostileArg(rng)}]`],
  "eio-noise": (rng) => [rng.pick(["3", "3probe", "5", "6", "6" + rng.string(rng.int(1, 100), "abc\u0000\u00ff")])],
};

/** Packets after which a conforming server closes the connection. */
export const CLOSING_KINDS: Record<string, Generator> = {
  "bad-json": (rng) => {
    const text = `["x",${hostileArg(rng)}]`;
    return [`42${rng.pick([text.slice(0, rng.int(1, Math.max(1, text.length - 1))), '["x",}', "[\"x\",'y']", '["x",NaN]', '["x" "y"]', '["x",01]', "[\u0000]"])}`];
  },
  "unknown-sio-type": (rng) => [`4${rng.pick(["7", "8", "9", "a", "-", " ", "\u0000"])}${rng.string(rng.int(0, 50), "[]{}\"0,/")}`],
  "unknown-eio-type": (rng) => [rng.pick(["", "7", "9", "x", "\u0000", "b", "b!!!"]) + rng.string(rng.int(0, 50), "[]{}\"0,/")],
  "invalid-payload": (rng) => [rng.pick(['42{"a":1}', "42[]", "42[null]", "42[{}]", '42"str"', '42["connect"]', '42["disconnect"]', '40"str"', "40[]", '41["x"]', "431", "43{}"])],
  "bad-attachments": (rng) => [`45${rng.pick(["abc", "", "0", "-1", "11", "1.5", "99999999999"])}-["x",{"_placeholder":true,"num":0}]`],
  "attachments-never-arrive": (rng) => {
    const count = rng.int(1, 10);
    const placeholders = Array.from({ length: count }, (_, num) => `{"_placeholder":true,"num":${num}}`).join(",");
    // Fewer attachments than announced: the server holds the partial packet until the connection ends.
    const sent = Array.from({ length: rng.int(0, count - 1) }, () => rng.bytes(rng.int(1, 64 * 1024)));
    return [`45${count}-[${eventName(rng)},${placeholders}]`, ...sent];
  },
  "binary-garbage": (rng) => [rng.bytes(rng.int(0, 4096))],
  "namespace-not-connected": (rng) => [`42/${rng.string(rng.int(1, 20), "abc")},["x",1]`],
  "connect-twice": () => ["40"],
  "client-ping": () => ["2"],
  "client-connect-error": (rng) => [`44{"message":${oddScalar(rng)}}`],
  "oversized-payload": (rng) => [`42["x",${longString(rng, rng.int(1_000_100, 1_500_000))}]`],
  "eio-close": () => ["1"],
  "sio-disconnect": () => ["41"],
};

/** Relative frequencies; large payloads are rarer so that the packet count, not bandwidth, dominates. */
const OPEN_WEIGHTS: Record<keyof typeof OPEN_KINDS, number> = {
  "event-wrong-types": 40,
  "event-huge-args": 3,
  "event-deep-nesting": 3,
  "event-wide-payload": 1,
  "event-large-payload": 0.05,
  "chat-garbage": 2,
  "unknown-namespace": 15,
  "forged-ack": 15,
  "eio-noise": 15,
};
const CLOSING_WEIGHTS: Record<keyof typeof CLOSING_KINDS, number> = {
  "bad-json": 10,
  "unknown-sio-type": 6,
  "unknown-eio-type": 6,
  "invalid-payload": 8,
  "bad-attachments": 5,
  "attachments-never-arrive": 8,
  "binary-garbage": 8,
  "namespace-not-connected": 5,
  "connect-twice": 3,
  "client-ping": 3,
  "client-connect-error": 3,
  "oversized-payload": 1,
  "eio-close": 5,
  "sio-disconnect": 3,
};

export class PacketGenerator {
  private readonly open: [number, string][];
  private readonly closing: [number, string][];

  /** `enabled` filters kinds by name (FUZZ_KINDS / FUZZ_SKIP). */
  constructor(enabled: (kind: string) => boolean) {
    this.open = Object.entries(OPEN_WEIGHTS).filter(([k]) => enabled(k)).map(([k, w]) => [w, k]);
    this.closing = Object.entries(CLOSING_WEIGHTS).filter(([k]) => enabled(k)).map(([k, w]) => [w, k]);
  }

  /**
   * A session's worth: about `budget` packets of open kinds, then, in most sessions, one closing
   * kind (last, since the server drops whatever follows it).
   */
  session(rng: Prng, budget: number): Generated[] {
    const batch: Generated[] = [];
    const closing = this.closing.length > 0 && (this.open.length === 0 || rng.chance(0.7));
    const openCount = this.open.length > 0 ? budget - (closing ? 1 : 0) : 0;
    for (let planned = 0; planned < openCount; ) {
      const kind = rng.weighted(this.open);
      batch.push({ kind, packets: OPEN_KINDS[kind](rng) });
      planned += batch[batch.length - 1].packets.length;
    }
    if (closing) {
      const kind = rng.weighted(this.closing);
      batch.push({ kind, packets: CLOSING_KINDS[kind](rng) });
    }
    return batch;
  }
}

export const PACKET_KINDS = [...Object.keys(OPEN_KINDS), ...Object.keys(CLOSING_KINDS)];
