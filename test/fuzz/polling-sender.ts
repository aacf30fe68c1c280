import type http from "node:http";
import { httpRequest } from "./http-client";
import type { EioPacket, Generated } from "./packets";
import type { Prng } from "./prng";
import { rememberSid, SOCKET_IO_PATH, type Target } from "./target";

const RECORD_SEPARATOR = "\x1e";
/** Bodies are packed up to this size, under the default maxHttpBufferSize, so oversize is a kind of its own. */
const BODY_BYTES = 900_000;
const HANDSHAKE = `${SOCKET_IO_PATH}?EIO=4&transport=polling`;

/** Engine.IO v4 long-polling payload: records separated by \x1e, binary as "b" + base64. */
function encodeRecord(packet: EioPacket): string {
  return typeof packet === "string" ? packet : "b" + packet.toString("base64");
}

/** Packs the batch's packets into POST bodies of at most `maxPackets` records and BODY_BYTES bytes. */
function bodies(batch: Generated[], maxPackets: number): { body: string; packets: { kind: string; packet: EioPacket }[] }[] {
  const out: { body: string; packets: { kind: string; packet: EioPacket }[] }[] = [];
  let current: { records: string[]; bytes: number; packets: { kind: string; packet: EioPacket }[] } = { records: [], bytes: 0, packets: [] };
  const flush = (): void => {
    if (current.records.length > 0) out.push({ body: current.records.join(RECORD_SEPARATOR), packets: current.packets });
    current = { records: [], bytes: 0, packets: [] };
  };
  for (const g of batch) {
    for (const packet of g.packets) {
      const record = encodeRecord(packet);
      if (current.records.length >= maxPackets || (current.bytes > 0 && current.bytes + record.length > BODY_BYTES)) flush();
      current.records.push(record);
      current.bytes += record.length + 1;
      current.packets.push({ kind: g.kind, packet });
    }
  }
  flush();
  return out;
}

/**
 * One hostile long-polling session: a real handshake and Socket.IO connect, then about `budget`
 * generated packets in POST bodies of many records each, the closing kind (if any) last, and a
 * close packet (not counted) so the session does not linger for the ping timeout. A body's packets
 * count once the server answered it, whatever the status.
 */
export async function pollingSession(target: Target, sender: string, agent: http.Agent, rng: Prng, budget: number): Promise<number> {
  const handshake = await httpRequest(agent, target.port, "GET", HANDSHAKE);
  if (handshake?.status !== 200 || !handshake.body.startsWith("0")) return 0;
  const { sid } = JSON.parse(handshake.body.slice(1)) as { sid: string };
  rememberSid(target, sid);
  const session = `${HANDSHAKE}&sid=${sid}`;
  try {
    if ((await httpRequest(agent, target.port, "POST", session, "40"))?.status !== 200) return 0;
    const connected = await httpRequest(agent, target.port, "GET", session);
    if (connected?.status !== 200 || !connected.body.includes("40")) return 0;

    const batch = target.packets.session(rng, budget);

    let sent = 0;
    for (const { body, packets } of bodies(batch, rng.int(5, 100))) {
      if (target.stopped()) break;
      const at = Date.now();
      const reply = await httpRequest(agent, target.port, "POST", session, body, { "content-type": "text/plain;charset=UTF-8" });
      if (reply === undefined) break;
      for (const { kind, packet } of packets) target.tally.sent(sender, `polling/${kind}`, packet, 1, at);
      sent += packets.length;
      if (reply.status !== 200) break;
    }
    return sent;
  } finally {
    await httpRequest(agent, target.port, "POST", session, "1", {}, 2_000);
  }
}

/** Requests that are bad as a whole (session id, protocol, transport, method), each named for its fault. */
export const BAD_REQUESTS: Record<string, (rng: Prng, target: Target) => { method: string; path: string; body?: string | Buffer; headers?: http.OutgoingHttpHeaders }> = {
  "forged-sid": (rng) => ({ method: rng.pick(["GET", "POST"]), path: `${HANDSHAKE}&sid=${rng.string(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}`, body: "42[\"x\"]" }),
  "foreign-sid": (rng, target) => {
    const sid = target.sids.length > 0 ? rng.pick(target.sids) : "AAAAAAAAAAAAAAAAAAAA";
    return rng.chance(0.5)
      ? { method: "GET", path: `${HANDSHAKE}&sid=${sid}` }
      : { method: "POST", path: `${HANDSHAKE}&sid=${sid}`, body: rng.pick(['42["x"]', "40", "1", "2", "\x1e\x1e", "b!!!"]) };
  },
  "odd-sid": (rng) => ({ method: rng.pick(["GET", "POST"]), path: `${HANDSHAKE}&sid=${rng.pick(["", "%00", "%zz", "x".repeat(300), "a&sid=b", "__proto__", "constructor", "..%2F..", "%E2%80%AE"])}`, body: "40" }),
  "bad-eio": (rng) => ({ method: "GET", path: `${SOCKET_IO_PATH}?${rng.pick(["EIO=3&", "EIO=5&", "EIO=abc&", "", "EIO=4.0&", "EIO=-1&", "EIO=4&EIO=3&", "EIO=99999999999999999999&"])}transport=polling` }),
  "bad-transport": (rng) => ({ method: "GET", path: `${SOCKET_IO_PATH}?EIO=4${rng.pick(["", "&transport=", "&transport=flashsocket", "&transport=websocket", "&transport=webtransport", "&transport=polling%00", "&transport=__proto__", "&transport=polling&transport=websocket"])}` }),
  "bad-method": (rng) => ({ method: rng.pick(["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "POST", "PROPFIND"]), path: HANDSHAKE, body: rng.bytes(rng.int(0, 200)) }),
  "binary-content-type": (rng, target) => ({
    method: "POST",
    path: `${HANDSHAKE}&sid=${target.sids.length > 0 ? rng.pick(target.sids) : "x"}`,
    body: rng.bytes(rng.int(1, 2000)),
    headers: { "content-type": "application/octet-stream" },
  }),
  "bad-query": (rng) => ({ method: "GET", path: `${SOCKET_IO_PATH}?EIO=4&transport=polling&${rng.string(rng.int(1, 200), "abc=&%?#[]:@0zZ+;\\|")}` }),
  "jsonp": (rng) => ({ method: rng.pick(["GET", "POST"]), path: `${HANDSHAKE}&j=${rng.pick(["0", "abc", "-1", "alert(1)"])}`, body: "d=42" }),
};

/** One bad request (counted once answered, or once the server dropped it). */
export async function badRequest(target: Target, sender: string, agent: http.Agent, rng: Prng): Promise<number> {
  const kinds = Object.keys(BAD_REQUESTS).filter((k) => target.enabled(`polling-request/${k}`));
  if (kinds.length === 0) return 0;
  const kind = rng.pick(kinds);
  const { method, path, body, headers } = BAD_REQUESTS[kind](rng, target);
  const at = Date.now();
  await httpRequest(agent, target.port, method, path, body, headers, 3_000);
  target.tally.sent(sender, `polling-request/${kind}`, `${method} ${path}`, 1, at);
  return 1;
}
