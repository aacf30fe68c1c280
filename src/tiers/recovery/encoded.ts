import v8 from "node:v8";
import { decode } from "notepack.io";
import type { EncodedArgs } from "./replay-log";

/** The shape of a cluster adapter broadcast, down to its event arguments. */
interface BroadcastShape {
  data: { packet: { data: unknown[] } };
}

/**
 * Own copies of `bytes` in their own allocation: a slice would keep the whole chunk it came from
 * alive, and a pooled copy could keep an 8 KB slab alive, so neither would be what the log counts.
 */
function detach(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}

const fromFrame = (bytes: Buffer): unknown[] => (v8.deserialize(bytes) as BroadcastShape).data.packet.data;
const fromEntry = (bytes: Buffer): unknown[] => (decode(bytes) as BroadcastShape).data.packet.data;

/**
 * A broadcast's arguments as the replay log keeps them, from the bytes the broadcast arrived in:
 * the body of its data-channel frame (structured clone of the whole adapter message), so the log
 * neither serializes it again nor estimates its size.
 */
export function argsFromFrame(body: Buffer): EncodedArgs {
  return { bytes: detach(body), decode: fromFrame };
}

/** The same from a shared-log entry (its field "m", msgpack of the adapter message). */
export function argsFromEntry(raw: Buffer): EncodedArgs {
  return { bytes: detach(raw), decode: fromEntry };
}
