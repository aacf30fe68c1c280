import WebSocket from "ws";
import type { EioPacket } from "./packets";
import type { Prng } from "./prng";
import { rememberSid, SOCKET_IO_PATH, type Target } from "./target";

const STEP_MS = 5_000;

/** Resolves with the first message for which `match` holds, or undefined on close or after STEP_MS. */
function nextMessage(ws: WebSocket, match: (text: string) => boolean): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (value: string | undefined): void => {
      clearTimeout(timer);
      ws.off("message", onMessage);
      ws.off("close", onClose);
      resolve(value);
    };
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      const text = isBinary ? "" : data.toString();
      if (match(text)) done(text);
    };
    const onClose = (): void => done(undefined);
    const timer = setTimeout(() => done(undefined), STEP_MS);
    ws.on("message", onMessage);
    ws.on("close", onClose);
  });
}

function opened(ws: WebSocket): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), STEP_MS);
    ws.once("open", () => (clearTimeout(timer), resolve(true)));
    ws.once("error", () => (clearTimeout(timer), resolve(false)));
  });
}

/**
 * One hostile WebSocket session over a real `ws` client: a real handshake and Socket.IO connect, then
 * about `budget` generated packets, the connection-closing kind (if any) last; a session without one
 * is held open a moment and dropped. Counts each packet the client library reports written (packets
 * after the server closed are not counted). Returns how many packets it sent.
 */
export async function wsSession(target: Target, sender: string, index: number, rng: Prng, budget: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${target.port}${SOCKET_IO_PATH}?EIO=4&transport=websocket`, {
    localAddress: target.localAddress(index),
    perMessageDeflate: false,
  });
  ws.on("error", () => undefined);
  let sent = 0;
  try {
    const openPacket = nextMessage(ws, (t) => t.startsWith("0"));
    if (!(await opened(ws))) return 0;
    const open = await openPacket;
    if (open === undefined) return 0;
    rememberSid(target, (JSON.parse(open.slice(1)) as { sid: string }).sid);
    const connected = nextMessage(ws, (t) => t.startsWith("40") || t.startsWith("44"));
    ws.send("40");
    if ((await connected) === undefined) return 0;

    const batch = target.packets.session(rng, budget);

    const writes: Promise<void>[] = [];
    for (const g of batch) {
      for (const packet of g.packets) {
        if (ws.readyState !== WebSocket.OPEN || target.stopped()) break;
        writes.push(send(ws, packet).then((ok) => {
          if (!ok) return;
          sent++;
          target.tally.sent(sender, `ws/${g.kind}`, packet);
        }));
      }
    }
    await Promise.all(writes);
    // A session whose last packet was not fatal is closed by the client after a short hold, so
    // partial binary packets and unanswered acks sit on the server for a moment.
    if (ws.readyState === WebSocket.OPEN) await closed(ws, rng.int(20, 200));
  } finally {
    ws.terminate();
  }
  return sent;
}

/** Resolves when the server closes the connection, or after `ms`. */
function closed(ws: WebSocket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    ws.once("close", () => (clearTimeout(timer), resolve()));
  });
}

function send(ws: WebSocket, packet: EioPacket): Promise<boolean> {
  return new Promise((resolve) => ws.send(packet, (err) => resolve(!err)));
}
