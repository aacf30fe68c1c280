import crypto from "node:crypto";
import net from "node:net";
import type { Prng } from "./prng";
import { SOCKET_IO_PATH, type Target } from "./target";

/**
 * Bad WebSocket framing, which the `ws` client cannot produce: after a real upgrade handshake over a
 * raw TCP socket, a few well-formed frames and then one frame that breaks RFC 6455.
 */

interface FrameOptions {
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
  /** A length field that does not match the payload. */
  declaredLength?: bigint;
}

export function frame(opcode: number, payload: Buffer, options: FrameOptions = {}): Buffer {
  const { fin = true, rsv = 0, masked = true } = options;
  const length = options.declaredLength ?? BigInt(payload.length);
  let header: Buffer;
  if (length < 126n) header = Buffer.from([0, Number(length)]);
  else if (length < 65536n) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(Number(length), 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(length, 2);
  }
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!masked) return Buffer.concat([header, payload]);
  header[1] |= 0x80;
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

const text = (s: string): Buffer => Buffer.from(s, "utf8");

/** Frames a server must reject, each named for the rule it breaks. */
export const BAD_FRAMES: Record<string, (rng: Prng) => Buffer> = {
  unmasked: () => frame(1, text('42["x"]'), { masked: false }),
  "reserved-opcode": (rng) => frame(rng.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), text("40")),
  "rsv-bits": (rng) => frame(1, text('42["x"]'), { rsv: rng.int(1, 7) }),
  "long-control-frame": (rng) => frame(rng.pick([8, 9, 10]), rng.bytes(rng.int(126, 300))),
  "fragmented-control-frame": () => frame(9, text("x"), { fin: false }),
  "orphan-continuation": () => frame(0, text('42["x"]')),
  "invalid-utf8": (rng) => frame(1, Buffer.concat([text("42[\""), Buffer.from(rng.pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]])), text("\"]")])),
  "bad-close-code": (rng) => {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(rng.pick([0, 999, 1004, 1005, 1006, 2999, 5000, 65535]));
    return frame(8, payload);
  },
  "huge-declared-length": (rng) => frame(1, rng.bytes(rng.int(0, 64)), { declaredLength: rng.pick([2n ** 63n - 1n, 2n ** 53n, 10_000_000n, 200_000n]) }),
  "interleaved-fragments": () => Buffer.concat([frame(1, text("42["), { fin: false }), frame(1, text('"x"]'))]),
  "random-bytes": (rng) => rng.bytes(rng.int(1, 2048)),
};

/** Opens a raw WebSocket (Engine.IO transport) and resolves with its socket once the server answered 101. */
function upgrade(target: Target, localAddress: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port: target.port, localAddress });
    let head = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      if (!ok) socket.destroy();
      resolve(ok ? socket : undefined);
    };
    const onData = (chunk: Buffer): void => {
      head += chunk.toString("latin1");
      if (head.includes("\r\n\r\n")) done(head.startsWith("HTTP/1.1 101"));
    };
    const timer = setTimeout(() => done(false), 5_000);
    socket.on("error", () => done(false));
    socket.on("data", onData);
    socket.write(
      `GET ${SOCKET_IO_PATH}?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

/**
 * One raw session: upgrade, Socket.IO connect and a few valid events in one write, then bad frames
 * (one, or a pipelined run of several). Returns the packets written.
 */
export async function framingSession(target: Target, sender: string, index: number, rng: Prng): Promise<number> {
  const kinds = Object.keys(BAD_FRAMES).filter((k) => target.enabled(`ws-framing/${k}`));
  if (kinds.length === 0) return 0;
  const socket = await upgrade(target, target.localAddress(index));
  if (!socket) return 0;
  try {
    socket.on("data", () => undefined);
    const bad = Array.from({ length: rng.chance(0.8) ? 1 : rng.int(2, 8) }, () => rng.pick(kinds));
    const frames = bad.map((kind) => BAD_FRAMES[kind](rng));
    const written = await new Promise<boolean>((resolve) => socket.write(Buffer.concat([frame(1, text("40")), ...frames]), (err) => resolve(!err)));
    if (!written) return 0;
    bad.forEach((kind, i) => target.tally.sent(sender, `ws-framing/${kind}`, frames[i]));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1_000);
      socket.once("close", () => (clearTimeout(timer), resolve()));
    });
    return bad.length;
  } finally {
    socket.destroy();
  }
}
