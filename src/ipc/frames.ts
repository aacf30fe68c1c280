import v8 from "node:v8";

/**
 * Length-prefixed structured-clone frames, for the data channel between the primary and its
 * workers. Structured clone (like Node's "advanced" IPC serialization) carries binary payloads.
 */
export function encodeFrame(message: unknown): Buffer {
  const body = v8.serialize(message);
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

/** Splits a byte stream into decoded frames. */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

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
      messages.push({ message: v8.deserialize(body), body });
      offset += 4 + length;
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
    return messages;
  }
}
