import { decode } from "notepack.io";
import { ADAPTER_SOURCE, EMITTER_UID, MessageType, type AdapterMessage } from "../cluster/relay";

/** The uid socket.io-adapter reserves for emitters: such messages never count as a server. */

/** @socket.io/redis-adapter's RequestType values an emitter sends. */
const RequestType = { REMOTE_JOIN: 2, REMOTE_LEAVE: 3, REMOTE_DISCONNECT: 4, SERVER_SIDE_EMIT: 6 } as const;

interface EmitterOpts {
  rooms?: unknown[];
  except?: unknown[];
  flags?: Record<string, unknown>;
}

function encodedOpts(opts: EmitterOpts | undefined): { rooms: unknown[]; except: unknown[]; flags: Record<string, unknown> } {
  return { rooms: opts?.rooms ?? [], except: opts?.except ?? [], flags: opts?.flags ?? {} };
}

/**
 * Translates a broadcast published on a redis-adapter channel (msgpack `[uid, packet, opts]`, as
 * @socket.io/redis-emitter and stock redis-adapter servers write it) into the cluster adapter's
 * BROADCAST message. Returns undefined for anything it cannot read.
 */
export function fromEmitterBroadcast(raw: Buffer): AdapterMessage | undefined {
  let decoded: unknown;
  try {
    decoded = decode(raw);
  } catch {
    return undefined;
  }
  if (!Array.isArray(decoded) || decoded.length < 3) return undefined;
  const [, packet, opts] = decoded as [unknown, { nsp?: string } | undefined, EmitterOpts | undefined];
  if (typeof packet !== "object" || packet === null) return undefined;
  const nsp = packet.nsp ?? "/";
  return { source: ADAPTER_SOURCE, uid: EMITTER_UID, nsp, type: MessageType.BROADCAST, data: { packet: { ...packet, nsp }, opts: encodedOpts(opts) } };
}

/**
 * Translates an emitter request (JSON on `${prefix}-request#${nsp}#`: socketsJoin, socketsLeave,
 * disconnectSockets, serverSideEmit) into the matching cluster adapter message.
 */
export function fromEmitterRequest(nsp: string, raw: Buffer): AdapterMessage | undefined {
  let request: { type?: number; opts?: EmitterOpts; rooms?: unknown[]; close?: boolean; data?: unknown[] };
  try {
    request = JSON.parse(raw.toString("utf8"));
  } catch {
    return undefined;
  }
  const base = { source: ADAPTER_SOURCE, uid: EMITTER_UID, nsp } as const;
  switch (request.type) {
    case RequestType.REMOTE_JOIN:
      return { ...base, type: MessageType.SOCKETS_JOIN, data: { opts: encodedOpts(request.opts), rooms: request.rooms ?? [] } };
    case RequestType.REMOTE_LEAVE:
      return { ...base, type: MessageType.SOCKETS_LEAVE, data: { opts: encodedOpts(request.opts), rooms: request.rooms ?? [] } };
    case RequestType.REMOTE_DISCONNECT:
      return { ...base, type: MessageType.DISCONNECT_SOCKETS, data: { opts: encodedOpts(request.opts), close: request.close === true } };
    case RequestType.SERVER_SIDE_EMIT:
      return Array.isArray(request.data) ? { ...base, type: MessageType.SERVER_SIDE_EMIT, data: { packet: request.data } } : undefined;
    default:
      // Requests from redis-adapter servers (fetchSockets, allRooms, ...) expect answers we do not give.
      return undefined;
  }
}
