import v8 from "node:v8";

/**
 * Length-prefixed structured-clone frames, for the data channel between the primary and its
 * workers. Structured clone (like Node's "advanced" IPC serialization) carries binary payloads.
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

export function encodeFrame(message: unknown): Buffer {
  let body: Buffer;
  try {
    body = v8.serialize(message);
  } catch (err) {
    throw new FrameEncodingError(err);
  }
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** A decoded frame with its body (a view of the stream's bytes: copy what must outlive the call). */
export interface Frame {
  message: unknown;
  body: Buffer;
}

/**
 * Splits a byte stream into decoded frames. A frame whose body does not deserialize (a payload
 * the sender's stack could nest deeper than the receiver's) is skipped and reported to
 * `onUndecodable`: the length prefix keeps the stream in step, so the frames after it are intact.
 */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly onUndecodable: (err: unknown, bytes: number) => void) {}

  push(chunk: Buffer): unknown[] {
    return this.pushFrames(chunk).map((frame) => frame.message);
  }

  pushFrames(chunk: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const messages: Frame[] = [];
    let offset = 0;
    while (this.buffer.length - offset >= 4) {
      const length = this.buffer.readUInt32BE(offset);
      if (this.buffer.length - offset - 4 < length) break;
      const body = this.buffer.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
      let message: unknown;
      try {
        message = v8.deserialize(body);
      } catch (err) {
        this.onUndecodable(err, length);
        continue;
      }
      messages.push({ message, body });
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
    return messages;
  }
}
