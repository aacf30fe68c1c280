import v8 from "node:v8";

/**
 * Length-prefixed structured-clone frames, for the data channel between the primary and its
 * workers (a Unix socket each, see primary/data-hub.ts). Structured clone carries binary payloads.
 */
/**
 * A message structured clone cannot serialize: nested deeper than V8's serializer can recurse
 * (a few thousand levels), or holding functions or class instances. Thrown to the code that
 * emitted it, so one bad payload fails one emit instead of the process.
 */
export class FrameEncodingError extends Error {
  readonly code = "SOCKFLEET_UNSERIALIZABLE";
  constructor(cause: unknown) {
    super(`message cannot cross the data channel: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "FrameEncodingError";
  }
}

/**
 * A frame on the wire: `u32 length` (of what follows), `u16 tagLength`, `tag` (UTF-8), `body`.
 * The body is the structured clone of one message. The tag is a short string the primary adds
 * without touching the body: the offset it assigned to a recoverable broadcast. So the primary
 * forwards a worker's broadcast as the bytes it arrived in, encodes what it builds itself once,
 * and writes the same bytes to every worker.
 */
const LENGTH_BYTES = 4;
const TAG_LENGTH_BYTES = 2;
const HEADER_BYTES = LENGTH_BYTES + TAG_LENGTH_BYTES;
const MAX_TAG_BYTES = 0xffff;

function serialize(message: unknown): Buffer {
  try {
    return v8.serialize(message);
  } catch (err) {
    throw new FrameEncodingError(err);
  }
}

/** A frame around `body` (a structured clone, e.g. one received in another frame), tagged with `tag`. */
export function frameFromBody(body: Buffer, tag = ""): Buffer {
  const tagBytes = Buffer.byteLength(tag);
  if (tagBytes > MAX_TAG_BYTES) throw new RangeError(`frame tag of ${tagBytes} bytes exceeds ${MAX_TAG_BYTES}`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + tagBytes + body.length);
  frame.writeUInt32BE(TAG_LENGTH_BYTES + tagBytes + body.length, 0);
  frame.writeUInt16BE(tagBytes, LENGTH_BYTES);
  if (tagBytes > 0) frame.write(tag, HEADER_BYTES, "utf8");
  body.copy(frame, HEADER_BYTES + tagBytes);
  return frame;
}

export function encodeFrame(message: unknown, tag = ""): Buffer {
  return frameFromBody(serialize(message), tag);
}

/** A decoded frame with its body (a view of the stream's bytes: copy what must outlive the call). */
export interface Frame {
  message: unknown;
  body: Buffer;
  /** "" when the sender tagged nothing. */
  tag: string;
}

/**
 * Splits a byte stream into decoded frames. A frame whose body does not deserialize (a payload
 * the sender's stack could nest deeper than the receiver's) is skipped and reported to
 * `onUndecodable`: the length prefix keeps the stream in step, so the frames after it are intact.
 */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly onUndecodable: (err: unknown, bytes: number) => void) {}

  pushFrames(chunk: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (this.buffer.length - offset >= LENGTH_BYTES) {
      const length = this.buffer.readUInt32BE(offset);
      if (this.buffer.length - offset - LENGTH_BYTES < length) break;
      const start = offset + LENGTH_BYTES;
      offset = start + length;
      const tagBytes = length >= TAG_LENGTH_BYTES ? this.buffer.readUInt16BE(start) : -1;
      if (tagBytes < 0 || TAG_LENGTH_BYTES + tagBytes > length) {
        this.onUndecodable(new RangeError(`malformed frame header (length ${length}, tag ${tagBytes})`), length);
        continue;
      }
      const tag = tagBytes === 0 ? "" : this.buffer.toString("utf8", start + TAG_LENGTH_BYTES, start + TAG_LENGTH_BYTES + tagBytes);
      const body = this.buffer.subarray(start + TAG_LENGTH_BYTES + tagBytes, offset);
      let message: unknown;
      try {
        message = v8.deserialize(body);
      } catch (err) {
        this.onUndecodable(err, length);
        continue;
      }
      frames.push({ message, body, tag });
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
    return frames;
  }
}
