/**
 * A load-generator process, forked by the harness and driven over IPC (see messages.ts). It holds
 * groups of raw WebSocket clients (one group per server under test), sends timed messages from a
 * few of them and records, for every delivery, the latency from the sender's timestamp.
 */
import { performance } from "node:perf_hooks";
import { io as ioClient, type Socket as ClientSocket } from "socket.io-client";
import { Histogram } from "../lib/histogram.js";
import { runPool } from "../lib/pool.js";
import { SioWsClient } from "./client.js";
import type {
  IdentifyResult,
  JoinResult,
  LoadgenEnvelope,
  LoadgenReply,
  LoadgenRequest,
  OpenResult,
  PlanResult,
  ReportResult,
  SendResult,
  StormResult,
  UsageResult,
  Who,
} from "./messages.js";
import { nowMicros, readIntAfter } from "./protocol.js";

const CHAT_MARK = Buffer.from('{"t":');
const ROOM_MARK = Buffer.from('"text":"');
const ERROR_SAMPLES = 5;

class Group {
  readonly conns: SioWsClient[] = [];
  readonly latency = new Histogram();
  received = 0;
  unparsed = 0;
  closedUnexpectedly = 0;
  /** Where each connection landed (by index), after an "identify". */
  who: (Who | undefined)[] = [];
  /** The rooms of a "plan-rooms", each with the member that sends to it. */
  plan: { room: string; sender: SioWsClient }[] = [];

  readonly onEvent = (data: Buffer): void => {
    let t = readIntAfter(data, CHAT_MARK, 16);
    if (t < 0) t = readIntAfter(data, ROOM_MARK, 16);
    if (t < 0) {
      this.unparsed++;
      return;
    }
    this.received++;
    this.latency.record(nowMicros() - t);
  };

  readonly onClose = (): void => {
    this.closedUnexpectedly++;
  };

  reset(): void {
    this.latency.reset();
    this.received = 0;
    this.unparsed = 0;
  }
}

const groups = new Map<string, Group>();

function group(name: string): Group {
  let g = groups.get(name);
  if (!g) groups.set(name, (g = new Group()));
  return g;
}

function noteError(errors: string[], err: unknown): void {
  const text = err instanceof Error ? err.message : String(err);
  if (errors.length < ERROR_SAMPLES && !errors.includes(text)) errors.push(text);
}

async function open(req: Extract<LoadgenRequest, { type: "open" }>): Promise<OpenResult> {
  const g = group(req.group);
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await runPool(req.count, req.concurrency, async () => {
    const c = new SioWsClient({
      host: req.host,
      port: req.port,
      localAddress: req.localAddress,
      connectTimeoutMs: req.timeoutMs,
      onEvent: g.onEvent,
      onClose: g.onClose,
    });
    try {
      await c.connected();
      g.conns.push(c);
      ok++;
    } catch (err) {
      failed++;
      noteError(errors, err);
      c.terminate();
    }
  });
  return { ok, failed, ms: performance.now() - started, errors };
}

async function join(req: Extract<LoadgenRequest, { type: "join" }>): Promise<JoinResult> {
  const g = group(req.group);
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await runPool(g.conns.length, req.concurrency, async (i) => {
    const room = `${req.prefix}${(req.indexBase + i) % req.roomCount}`;
    try {
      const [answer] = await g.conns[i]!.emitWithAck("join", [room], 10_000);
      if (answer === true) ok++;
      else failed++;
    } catch {
      failed++;
    }
  });
  return { ok, failed, ms: performance.now() - started };
}

async function whoami(req: Extract<LoadgenRequest, { type: "whoami" }>): Promise<Who[]> {
  const g = group(req.group);
  // evenly spaced over the group, so every host a group spans is sampled
  const step = Math.max(1, Math.floor(g.conns.length / Math.max(1, req.sample)));
  const sample = g.conns.filter((_, i) => i % step === 0).slice(0, req.sample);
  const out: Who[] = [];
  await Promise.all(
    sample.map(async (c) => {
      try {
        const [who] = await c.emitWithAck("whoami", [], 5000);
        out.push(who as Who);
      } catch {
        /* counted as missing by the caller */
      }
    }),
  );
  return out;
}

const landing = (w: Who): string => `${w.host}/w${w.worker}`;

async function identify(req: Extract<LoadgenRequest, { type: "identify" }>): Promise<IdentifyResult> {
  const g = group(req.group);
  g.who = new Array<Who | undefined>(g.conns.length);
  await runPool(g.conns.length, req.concurrency, async (i) => {
    try {
      const [who] = await g.conns[i]!.emitWithAck("whoami", [], 10_000);
      g.who[i] = who as Who;
    } catch {
      /* left out of every room */
    }
  });
  const out: IdentifyResult = {};
  for (const w of g.who) {
    if (w === undefined) continue;
    const entry = (out[landing(w)] ??= { count: 0, pid: w.pid });
    entry.count++;
  }
  return out;
}

async function planRooms(req: Extract<LoadgenRequest, { type: "plan-rooms" }>): Promise<PlanResult> {
  const g = group(req.group);
  const byLanding = new Map<string, SioWsClient[]>();
  g.conns.forEach((c, i) => {
    const w = g.who[i];
    if (w === undefined || req.exclude.includes(landing(w))) return;
    const list = byLanding.get(landing(w)) ?? [];
    list.push(c);
    byLanding.set(landing(w), list);
  });
  // only full rooms, so that every message has exactly roomSize recipients
  const joins: { room: string; conn: SioWsClient }[] = [];
  const landings = [...byLanding.entries()].sort(([a], [b]) => a.localeCompare(b));
  g.plan = [];
  landings.forEach(([key, conns], l) => {
    // the sender is a member of a room on the next landing (when there is one), so that every
    // message crosses from one worker or host to another, as in a chat whose users are spread
    const senders = landings.length > 1 ? landings[(l + 1) % landings.length]![1] : conns;
    for (let k = 0; (k + 1) * req.roomSize <= conns.length; k++) {
      const room = `${req.prefix}${key}-${k}`;
      const members = conns.slice(k * req.roomSize, (k + 1) * req.roomSize);
      g.plan.push({ room, sender: senders[(k * req.roomSize) % senders.length]! });
      for (const conn of members) joins.push({ room, conn });
    }
  });
  let failed = 0;
  await runPool(joins.length, req.concurrency, async (i) => {
    try {
      const [answer] = await joins[i]!.conn.emitWithAck("join", [joins[i]!.room], 10_000);
      if (answer !== true) failed++;
    } catch {
      failed++;
    }
  });
  return { rooms: g.plan.length, members: joins.length, joinFailed: failed };
}

function send(req: Extract<LoadgenRequest, { type: "send" }>): Promise<SendResult> {
  const g = group(req.group);
  const senders = g.conns.slice(0, Math.max(1, Math.min(req.senders, g.conns.length)));
  if (g.conns.length === 0 || (req.kind === "planned" && g.plan.length === 0)) return Promise.resolve({ sent: 0, ms: 0, lagMs: 0 });
  const pad = "x".repeat(Math.max(0, req.payloadBytes));
  const max = Math.ceil((req.rate * req.durationMs) / 1000);
  const started = performance.now();
  let sent = 0;
  return new Promise<SendResult>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - started;
      // at the end of the window the whole schedule is due
      const due = elapsed >= req.durationMs ? max : Math.min(max, Math.floor((req.rate * elapsed) / 1000));
      while (sent < due) {
        const c = senders[sent % senders.length]!;
        if (req.kind === "broadcast") {
          c.sendRaw(`42["chat message",{"t":${nowMicros()},"p":"${pad}"}]`);
        } else if (req.kind === "planned") {
          const { room, sender } = g.plan[(req.roomOffset + sent) % g.plan.length]!;
          sender.sendRaw(`42["room message",{"room":"${room}","text":"${nowMicros()}|${pad}"}]`);
        } else {
          const room = `${req.prefix}${(req.roomOffset + sent) % req.roomCount}`;
          c.sendRaw(`42["room message",{"room":"${room}","text":"${nowMicros()}|${pad}"}]`);
        }
        sent++;
      }
      if (sent >= max || elapsed >= req.durationMs) {
        // how late the last message went out against its slot in the schedule
        resolve({ sent, ms: elapsed, lagMs: Math.max(0, elapsed - req.durationMs) });
      } else {
        setTimeout(tick, 1);
      }
    };
    tick();
  });
}

function report(req: Extract<LoadgenRequest, { type: "report" }>): ReportResult {
  const g = group(req.group);
  return {
    connections: g.conns.filter((c) => c.state === "connected").length,
    received: g.received,
    unparsed: g.unparsed,
    closedUnexpectedly: g.closedUnexpectedly,
    latency: g.latency.toData(),
  };
}

function close(req: Extract<LoadgenRequest, { type: "close" }>): number {
  const g = groups.get(req.group);
  if (!g) return 0;
  for (const c of g.conns) c.terminate();
  groups.delete(req.group);
  return g.conns.length;
}

async function storm(req: Extract<LoadgenRequest, { type: "storm" }>): Promise<StormResult> {
  const latency = new Histogram();
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  const raw: SioWsClient[] = [];
  const real: ClientSocket[] = [];
  const started = performance.now();
  await runPool(req.count, req.concurrency, async () => {
    const t0 = performance.now();
    try {
      if (req.mode === "websocket") {
        const c = new SioWsClient({ host: req.host, port: req.port, localAddress: req.localAddress, connectTimeoutMs: req.timeoutMs });
        raw.push(c);
        await c.connected();
      } else {
        const s = ioClient(`http://${req.host}:${req.port}`, {
          forceNew: true,
          reconnection: false,
          timeout: req.timeoutMs,
          transports: ["polling", "websocket"],
        });
        real.push(s);
        await new Promise<void>((resolve, reject) => {
          s.once("connect", () => resolve());
          s.once("connect_error", (err: Error) => reject(err));
        });
      }
      ok++;
      latency.record((performance.now() - t0) * 1000);
    } catch (err) {
      failed++;
      noteError(errors, err);
    }
  });
  const ms = performance.now() - started;
  for (const c of raw) c.terminate();
  for (const s of real) s.disconnect();
  return { ok, failed, ms, connectLatency: latency.toData(), errors };
}

function usage(): UsageResult {
  const cpu = process.cpuUsage();
  return { cpuUserUs: cpu.user, cpuSystemUs: cpu.system, rss: process.memoryUsage.rss() };
}

async function handle(req: LoadgenRequest): Promise<unknown> {
  switch (req.type) {
    case "open":
      return open(req);
    case "join":
      return join(req);
    case "whoami":
      return whoami(req);
    case "identify":
      return identify(req);
    case "plan-rooms":
      return planRooms(req);
    case "reset":
      group(req.group).reset();
      return null;
    case "send":
      return send(req);
    case "report":
      return report(req);
    case "close":
      return close(req);
    case "storm":
      return storm(req);
    case "usage":
      return usage();
    case "exit":
      setImmediate(() => process.exit(0));
      return null;
  }
}

process.on("message", (msg: LoadgenEnvelope) => {
  handle(msg.req).then(
    (data) => reply({ id: msg.id, ok: true, data }),
    (err: unknown) => reply({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

function reply(r: LoadgenReply): void {
  process.send?.(r);
}

// Leave when the harness goes away, whatever the reason.
process.on("disconnect", () => process.exit(0));
