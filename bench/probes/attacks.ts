/**
 * The probes of issue 10, as an attacker would run them from outside: each starts a fresh host with
 * the defaults, attacks it within bounded counts and time, and measures what it cost the host and
 * the well-behaved clients meanwhile. Loopback only.
 */
import net from "node:net";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { ProbeHost } from "./host.js";

export interface ProbeResult {
  probe: string;
  /** The figure measured before the fix, as the issue reported it. */
  before: string;
  after: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A socket.io-client over WebSocket, connected (or rejected after 10 s). */
async function client(url: string): Promise<Socket> {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 10_000 });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  return socket;
}

/** A raw Engine.IO/Socket.IO WebSocket that answers pings and has joined "/". */
function rawSocket(port: number, localAddress = "127.0.0.1"): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { localAddress });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("raw socket: no CONNECT within 10 s"));
    }, 10_000);
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      if (text.startsWith("0")) ws.send("40");
      else if (text === "2") ws.send("3");
      else if (text.startsWith("40")) {
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function withHost<T>(args: string[], run: (host: ProbeHost) => Promise<T>): Promise<T> {
  const host = await ProbeHost.start(args);
  try {
    return await run(host);
  } finally {
    await host.stop();
  }
}

/** `GET //[` and friends on both ports, repeatedly. */
export function badTargets(): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const targets = ["//[", "//a:99999/", "//%zz"];
    const send = (port: number, target: string): Promise<void> =>
      new Promise((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`));
        s.on("data", () => s.destroy());
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.setTimeout(2_000, () => s.destroy());
      });
    const until = Date.now() + 15_000;
    let sent = 0;
    while (Date.now() < until && sent < 3_000) {
      await Promise.all(targets.map((t) => send(host.port, t)));
      sent += targets.length;
      await sleep(10);
    }
    for (const t of targets) await send(host.adminPort, t);
    const primary = host.alive() ? "primary alive" : "primary exited";
    return { probe: "GET //[ (and //a:99999/, //%zz) for 15 s, then on the admin port", before: "worker exits on each; every slot crash-loops within ~45 s and the primary exits 1; on the admin port the primary dies at once", after: `${sent} requests: ${host.crashes()} worker crashes, ${primary}` };
  });
}

/** One event with 100,000 arguments. */
export function manyArguments(): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const bystander = await client(host.url);
    const attacker = await client(host.url);
    const disconnected = new Promise<string>((resolve) => attacker.once("disconnect", (reason) => resolve(reason)));
    attacker.emit("chat message", ...new Array(100_000).fill(1));
    const reason = await Promise.race([disconnected, sleep(5_000).then(() => "still connected after 5 s")]);
    await sleep(500);
    const result = `sender: ${reason}; ${host.crashes()} worker crashes; bystander ${bystander.connected ? "connected" : "disconnected"}`;
    attacker.close();
    bystander.close();
    return { probe: "one event with 100,000 arguments (~200 KB)", before: "stack overflow in dispatch: the worker exits, all its clients disconnected", after: result };
  });
}

/** One socket floods "chat message" while a canary measures its own broadcasts' round trip. */
export function flood(seconds = 20): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const flooder = await client(host.url);
    const canary = await client(host.url);
    const latencies: number[] = [];
    let missed = 0;
    const pending = new Map<number, number>();
    canary.on("chat message", (payload: unknown) => {
      const id = (payload as { canary?: number })?.canary;
      if (typeof id !== "number" || !pending.has(id)) return;
      latencies.push(Date.now() - pending.get(id)!);
      pending.delete(id);
    });
    let sent = 0;
    let flooding = true;
    const floodLoop = (async () => {
      while (flooding && sent < 2_000_000 && flooder.connected) {
        for (let i = 0; i < 500; i++) flooder.emit("chat message", "flood");
        sent += 500;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    let peak = host.rssMb();
    let canaryId = 0;
    const until = Date.now() + seconds * 1_000;
    while (Date.now() < until) {
      const id = ++canaryId;
      pending.set(id, Date.now());
      canary.emit("chat message", { canary: id });
      await sleep(100);
      peak = host.rssMb().map((mb, i) => Math.max(mb, peak[i] ?? 0));
    }
    flooding = false;
    await floodLoop;
    await sleep(2_000);
    const now = Date.now();
    for (const at of pending.values()) if (now - at > 2_000) missed++;
    const flooderState = flooder.connected ? "flooder still connected" : "flooder disconnected";
    flooder.close();
    canary.close();
    return { probe: `one socket flooding "chat message" for ${seconds} s`, before: "broadcasts delayed 21 s median on both workers, 200 of 216 canaries missed; a worker grew 90 MB -> 2.5 GB", after: `${sent} sent; canary latency median ${median(latencies)} ms, ${missed} of ${canaryId} missed; peak RSS primary/workers ${peak.join("/")} MB; ${flooderState}; ${host.crashes()} crashes` };
  });
}

/** Broadcasts of deeply nested payloads against the replay log's byte bound. */
export function replayLogBound(): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const sender = await client(host.url);
    const leaf = "x".repeat(100_000);
    let payload: unknown = [leaf];
    for (let depth = 0; depth < 12; depth++) payload = [payload];
    const count = 150;
    for (let i = 0; i < count; i++) sender.emit("chat message", payload);
    await sleep(3_000);
    const logBytes = (await host.metric("sockfleet_recovery_log_bytes")) ?? NaN;
    sender.close();
    return { probe: `${count} broadcasts of 100 KB nested 13 deep`, before: "about 520 MB retained while sockfleet_recovery_log_bytes read 0.6 MB", after: `${((count * leaf.length) / 1e6).toFixed(1)} MB broadcast; sockfleet_recovery_log_bytes ${(logBytes / 1e6).toFixed(1)} MB; RSS primary ${host.rssMb()[0]} MB` };
  });
}

/** Connections that send their request head one byte every 2 s. */
export function slowloris(count = 500, seconds = 25): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const head = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + "a".repeat(200) + "\r\n\r\n";
    const sockets: net.Socket[] = [];
    let open = 0;
    for (let i = 0; i < count; i++) {
      const s = net.connect({ port: host.port, host: "127.0.0.1", localAddress: "127.0.0.2" });
      s.on("connect", () => open++);
      s.on("error", () => undefined);
      s.on("close", () => open--);
      sockets.push(s);
    }
    let offset = 0;
    const until = Date.now() + seconds * 1_000;
    while (Date.now() < until) {
      for (const s of sockets) if (!s.destroyed) s.write(head[offset % head.length]);
      offset++;
      await sleep(2_000);
    }
    const still = open;
    const fresh = await client(host.url).then((s) => (s.close(), "connects"), (err: Error) => `refused: ${err.message}`);
    for (const s of sockets) s.destroy();
    return { probe: `${count} connections trickling a head byte every 2 s, ${seconds} s`, before: "held indefinitely (the 10 s timeout restarts on every byte); new clients locked out at the file limit", after: `${still} of ${count} still open after ${seconds} s; a new client ${fresh}` };
  });
}

/** 50 clients stop reading while 1 KB messages are broadcast at 500/s. */
export function slowReaders(seconds = 30): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const stalled: WebSocket[] = [];
    for (let i = 0; i < 50; i++) stalled.push(await rawSocket(host.port));
    for (const ws of stalled) {
      // Stop reading: the kernel buffers fill, then the server's queue for this client grows.
      (ws as unknown as { _socket: net.Socket })._socket.pause();
    }
    const publishers = await Promise.all(Array.from({ length: 6 }, () => client(host.url)));
    const before = host.rssMb();
    const text = "y".repeat(1_000);
    const until = Date.now() + seconds * 1_000;
    let sent = 0;
    let peak = before;
    while (Date.now() < until) {
      for (let i = 0; i < 50; i++) publishers[(sent + i) % publishers.length].emit("chat message", text);
      sent += 50;
      await sleep(100);
      peak = host.rssMb().map((mb, i) => Math.max(mb, peak[i] ?? 0));
    }
    for (const p of publishers) p.close();
    // A paused client never reads the server's close, so the server's count says who was cut off.
    const cut = (await host.metric("sockfleet_limit_hits_total", 'limit="max-buffered-bytes"')) ?? 0;
    for (const ws of stalled) ws.terminate();
    return { probe: `50 clients stop reading, 1 KB broadcast at 500/s for ${seconds} s`, before: "workers 107 -> 209 MB in 50 s; clients answering pings never dropped", after: `workers ${before.slice(1).join("/")} -> peak ${peak.slice(1).join("/")} MB; ${cut} of 50 stalled clients disconnected as slow consumers; ${host.crashes()} crashes` };
  });
}

/** Connections from one address, as fast as they open. */
export function connectionsFromOneAddress(count = 5_000): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const started = Date.now();
    const sockets: WebSocket[] = [];
    let accepted = 0;
    let refused = 0;
    const batch = 250;
    for (let i = 0; i < count; i += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, count - i) }, () =>
          rawSocket(host.port, "127.0.0.3").then(
            (ws) => {
              accepted++;
              sockets.push(ws);
            },
            () => refused++,
          ),
        ),
      );
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const other = await rawSocket(host.port, "127.0.0.4").then((ws) => (ws.terminate(), "connects"), () => "refused");
    for (const ws of sockets) ws.terminate();
    return { probe: `${count} WebSocket connections from one address`, before: "5,000 accepted in 3.5 s", after: `${accepted} accepted, ${refused} refused in ${seconds} s; another address ${other}` };
  });
}

/** One socket asks to join 5,000 rooms as fast as it can. */
export function roomJoins(count = 5_000): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const socket = await client(host.url);
    let joined = 0;
    let refused = 0;
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        socket.timeout(10_000).emitWithAck("join", `room-${i}`).then(
          (ack: unknown) => (ack === true ? joined++ : refused++),
          () => refused++,
        ),
      ),
    );
    socket.close();
    return { probe: `one socket joining ${count} rooms at once`, before: "100,000 room joins per socket accepted", after: `${joined} joined, ${refused} refused or unanswered` };
  });
}

/** Binary packets whose announced attachments never all arrive. */
export function stalledAttachments(connections = 20): Promise<ProbeResult> {
  return withHost([], async (host) => {
    const before = host.rssMb();
    const sockets: WebSocket[] = [];
    const chunk = Buffer.alloc(900_000, 7);
    let closedEarly = 0;
    for (let c = 0; c < connections; c++) {
      const ws = await rawSocket(host.port);
      ws.once("close", () => closedEarly++);
      const placeholders = Array.from({ length: 10 }, (_, num) => ({ _placeholder: true, num }));
      ws.send(`4510-${JSON.stringify(["chat message", ...placeholders])}`);
      for (let i = 0; i < 9; i++) ws.send(chunk);
      sockets.push(ws);
    }
    await sleep(3_000);
    const after = host.rssMb();
    for (const ws of sockets) ws.terminate();
    return { probe: `${connections} connections each announcing 10 binary attachments and sending 9 of ~1 MB`, before: "each stalled upload holds up to 10 MB", after: `workers ${before.slice(1).join("/")} -> ${after.slice(1).join("/")} MB; ${closedEarly} of ${connections} connections closed by the server` };
  });
}

export const PROBES: Record<string, () => Promise<ProbeResult>> = {
  "bad-targets": badTargets,
  "many-arguments": manyArguments,
  flood: () => flood(),
  "replay-log": replayLogBound,
  slowloris: () => slowloris(),
  "slow-readers": () => slowReaders(),
  "one-address": () => connectionsFromOneAddress(),
  "room-joins": () => roomJoins(),
  "stalled-attachments": () => stalledAttachments(),
};
