import assert from "node:assert/strict";
import v8 from "node:v8";
import { encodeFrame, FrameDecoder, frameFromBody, type Frame } from "../src/ipc/frames";

/** Feeds `bytes` to a decoder `step` bytes at a time, as a socket may split them. */
function decodeInPieces(bytes: Buffer, step: number): { frames: Frame[]; undecodable: number } {
  let undecodable = 0;
  const decoder = new FrameDecoder(() => undecodable++);
  const frames: Frame[] = [];
  for (let i = 0; i < bytes.length; i += step) frames.push(...decoder.pushFrames(bytes.subarray(i, i + step)));
  return { frames, undecodable };
}

describe("data channel frames", () => {
  it("writes an untagged frame as the length-prefixed structured clone alone, the format of earlier versions", () => {
    const body = v8.serialize({ source: "_sio_adapter", type: 3, data: [1, "two"] });
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    const expected = Buffer.concat([length, body]);
    assert.ok(encodeFrame({ source: "_sio_adapter", type: 3, data: [1, "two"] }).equals(expected));
  });

  it("carries a tag beside a body forwarded unchanged, across split chunks, between untagged frames", () => {
    const body = v8.serialize({ packet: ["chat message", Buffer.from([1, 2, 3])] });
    const stream = Buffer.concat([encodeFrame({ a: 1 }), frameFromBody(body, "1733000000000-7"), encodeFrame({ b: 2 })]);
    const { frames, undecodable } = decodeInPieces(stream, 3);
    assert.equal(undecodable, 0);
    assert.deepEqual(frames.map((f) => f.tag), ["", "1733000000000-7", ""]);
    assert.deepEqual(frames[0].message, { a: 1 });
    assert.ok(frames[1].body.equals(body), "the body arrives byte for byte");
    assert.deepEqual(frames[2].message, { b: 2 });
  });

  it("skips a frame whose tag runs past its end and decodes the frames after it", () => {
    const bad = Buffer.from([0, 0, 0, 4, 0x01, 0x00, 0x09, 0x41]);
    const { frames, undecodable } = decodeInPieces(Buffer.concat([bad, encodeFrame("next")]), 64);
    assert.equal(undecodable, 1);
    assert.deepEqual(frames.map((f) => f.message), ["next"]);
  });
});
