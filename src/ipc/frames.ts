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
 * A frame on the wire: `u32 length` (of what follows), then either the body alone, or a tag
 * marker byte, `u16 tagLength`, the tag (UTF-8) and the body. The body is the structured clone of
 * one message, which always starts with V8's version byte 0xff, so the marker (0x01) cannot be
 * mistaken for it, and an untagged frame is exactly the format before tags existed: workers
 * forked by a rolling restart from newer code still talk to a primary started from older code
 * (only the primary writes tags, and the primary's own workers always run its code or newer).
 * The tag is the offset the primary assigned to a recoverable broadcast, added without touching
 * the body: the primary forwards a worker's broadcast as the bytes it arrived in, encodes what it
 * builds itself once, and writes the same bytes to every worker.
 */
const LENGTH_BYTES = 4;
const TAG_MARKER = 0x01;
const TAG_HEADER_BYTES = 1 + 2;
const MAX_TAG_BYTES = 0xffff;

function serialize(message: unknown): Buffer {
  try {
    return v8.serialize(message);
  } catch (err) {
    throw new FrameEncodingError(err);
  }
}

/** A frame around `body` (a structured clone, e.g. one received in another frame), tagged with `tag` unless empty. */
export function frameFromBody(body: Buffer, tag = ""): Buffer {
  const tagBytes = Buffer.byteLength(tag);
  if (tagBytes > MAX_TAG_BYTES) throw new RangeError(`frame tag of ${tagBytes} bytes exceeds ${MAX_TAG_BYTES}`);
  const header = tagBytes === 0 ? 0 : TAG_HEADER_BYTES + tagBytes;
  const frame = Buffer.allocUnsafe(LENGTH_BYTES + header + body.length);
  frame.writeUInt32BE(header + body.length, 0);
  if (header > 0) {
    frame[LENGTH_BYTES] = TAG_MARKER;
    frame.writeUInt16BE(tagBytes, LENGTH_BYTES + 1);
    frame.write(tag, LENGTH_BYTES + TAG_HEADER_BYTES, "utf8");
  }
  body.copy(frame, LENGTH_BYTES + header);
  return frame;
}

export function encodeFrame(message: unknown, tag = ""): Buffer {
  return frameFromBody(serialize(message), tag);
}

/**
 * The message of one whole frame, with a tag read as data-link.ts reads it (the offset of a
 * forwarded recoverable broadcast); undefined when it does not decode.
 */
export function decodeFrame(frame: Buffer): unknown {
  const [decoded] = new FrameDecoder(() => undefined).pushFrames(frame);
  if (!decoded) return undefined;
  if (decoded.tag !== "") Object.assign(decoded.message as object, { offset: decoded.tag, sequence: undefined });
  return decoded.message;
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
      let tag = "";
      let bodyStart = start;
      if (length > 0 && this.buffer[start] === TAG_MARKER) {
        const tagBytes = length >= TAG_HEADER_BYTES ? this.buffer.readUInt16BE(start + 1) : -1;
        if (tagBytes < 0 || TAG_HEADER_BYTES + tagBytes > length) {
          this.onUndecodable(new RangeError(`malformed frame tag (frame ${length} bytes, tag ${tagBytes})`), length);
          continue;
        }
        tag = this.buffer.toString("utf8", start + TAG_HEADER_BYTES, start + TAG_HEADER_BYTES + tagBytes);
        bodyStart = start + TAG_HEADER_BYTES + tagBytes;
      }
      const body = this.buffer.subarray(bodyStart, offset);
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
