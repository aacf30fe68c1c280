/**
 * Variant 7, the ceiling: a minimal `ws` server speaking just enough engine.io/socket.io framing for
 * the same clients, with the same fan-out. A "chat message" packet is re-sent as is to everyone
 * (the bytes io.emit would produce for it); rooms are a Map of Sets.
 */
import { WebSocketServer, type WebSocket } from "ws";
import { installMemoryProbe } from "../../src/observability/memory-probe.js";
import { exitWithParent, hostName, parseServerArgs, printReady } from "./chat.js";

const args = parseServerArgs(process.argv.slice(2));
const CHAT_PREFIX = Buffer.from('42["chat message",');
const AS_TEXT = { binary: false } as const;
const rooms = new Map<string, Set<WebSocket>>();
const memberOf = new Map<WebSocket, Set<string>>();
const who = { host: hostName(), worker: 0, pid: process.pid };
let nextSid = 0;

const wss = new WebSocketServer({
  host: args.host,
  port: args.port,
  path: "/socket.io/",
  perMessageDeflate: false,
  skipUTF8Validation: true,
  clientTracking: true,
});

function ack(ws: WebSocket, id: string, value: unknown): void {
  if (id !== "") ws.send(`43${id}${JSON.stringify([value])}`);
}

function onEvent(ws: WebSocket, data: Buffer): void {
  if (data.subarray(0, CHAT_PREFIX.length).equals(CHAT_PREFIX)) {
    for (const client of wss.clients) client.send(data, AS_TEXT);
    return;
  }
  const text = data.toString();
  let i = 2;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  const id = text.slice(2, i);
  const packet: unknown = JSON.parse(text.slice(i));
  if (!Array.isArray(packet)) return;
  const [name, a0] = packet as [unknown, unknown];
  if (name === "join" && typeof a0 === "string") {
    let set = rooms.get(a0);
    if (!set) rooms.set(a0, (set = new Set()));
    set.add(ws);
    memberOf.get(ws)?.add(a0);
    ack(ws, id, true);
  } else if (name === "leave" && typeof a0 === "string") {
    rooms.get(a0)?.delete(ws);
    memberOf.get(ws)?.delete(a0);
    ack(ws, id, true);
  } else if (name === "room message" && typeof a0 === "object" && a0 !== null) {
    const { room, text: body } = a0 as { room?: unknown; text?: unknown };
    if (typeof room !== "string") return;
    const set = rooms.get(room);
    if (!set) return;
    const out = `42${JSON.stringify(["room message", { room, text: body }])}`;
    for (const client of set) client.send(out);
  } else if (name === "whoami") {
    ack(ws, id, who);
  }
}

wss.on("connection", (ws: WebSocket) => {
  const sid = `raw${(nextSid++).toString(36)}`;
  memberOf.set(ws, new Set());
  ws.send(`0${JSON.stringify({ sid, upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1e6 })}`);
  ws.on("message", (data: Buffer) => {
    if (data[0] !== 0x34) return; // only engine.io MESSAGE; pongs are ignored
    if (data[1] === 0x32) onEvent(ws, data);
    else if (data[1] === 0x30) ws.send(`40{"sid":"${sid}s"}`);
  });
  ws.on("close", () => {
    for (const room of memberOf.get(ws) ?? []) {
      const set = rooms.get(room);
      set?.delete(ws);
      if (set && set.size === 0) rooms.delete(room);
    }
    memberOf.delete(ws);
  });
});

wss.on("listening", () => {
  const addr = wss.address();
  if (addr === null || typeof addr === "string") throw new Error("no TCP address");
  printReady(addr.port, 1);
});
exitWithParent();
process.on("SIGTERM", () => process.exit(0));
installMemoryProbe();
