import assert from "node:assert/strict";
import { connect, reconnectTo, whoami, type Client } from "./clients";
import { waitUntil } from "./wait";

/** A chat client recording every numbered message it receives, and how its reconnections went. */
export interface Subscriber {
  client: Client;
  member: boolean;
  all: number[];
  room: number[];
  recovered: number;
  fresh: number;
  /** The worker serving it now, and its host, learnt after each (re)connect. */
  pid?: number;
  host?: string;
  disconnects: string[];
  /** Disconnects, failed attempts and reconnections with their times (printed with CHAOS_DEBUG). */
  timeline: string[];
}

/** What a chaos run reports (the totals). */
export interface ChaosTotals {
  sent: number;
  /** Messages no subscriber received: lost on the publisher's side before they were broadcast. */
  neverBroadcast: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  recoveredSessions: number;
  freshSessions: number;
}

/**
 * Connects subscriber `index` of the chat app: half WebSocket-only, half polling first (then
 * upgraded); two in three join room "chaos". With `pick`, every reconnection attempt goes to the
 * URL it returns (a load balancer in front of several hosts).
 */
export async function subscribe(url: string, index: number, pick?: () => string): Promise<Subscriber> {
  const client = await connect(url, index % 2 ? { transports: ["websocket"] } : {});
  if (pick) reconnectTo(client, pick);
  const sub: Subscriber = { client, member: index % 3 !== 0, all: [], room: [], recovered: 0, fresh: 0, disconnects: [], timeline: [] };
  client.on("disconnect", (reason: string) => {
    sub.disconnects.push(reason);
    sub.timeline.push(`${new Date().toISOString()} ${reason}`);
  });
  client.on("connect_error", (err: Error) => sub.timeline.push(`${new Date().toISOString()} connect_error ${err.message}`));
  client.on("chat message", (payload: { seq?: number }) => typeof payload?.seq === "number" && sub.all.push(payload.seq));
  client.on("room message", (payload: { text?: string }) => sub.room.push(Number(payload?.text)));
  const locate = (): void => {
    client.timeout(5_000).emitWithAck("whoami").then((me: { pid: number; host: string }) => {
      sub.pid = me.pid;
      sub.host = me.host;
    }, () => undefined);
  };
  locate();
  client.on("connect", () => {
    locate();
    // Registered after the first connect: every "connect" seen here is a reconnection.
    if (client.recovered) sub.recovered++;
    else sub.fresh++;
    sub.timeline.push(`${new Date().toISOString()} ${client.recovered ? "recovered" : "fresh"} over ${client.io.engine.transport.name}`);
  });
  if (sub.member) await client.timeout(5_000).emitWithAck("join", "chaos");
  return sub;
}

/** A publisher that follows its worker across reconnections (rolls move it), so it can be spared. */
export async function publisherOn(url: string): Promise<{ client: Client; pid: () => number }> {
  const client = await connect(url, { transports: ["websocket"] });
  let pid = (await whoami(client)).pid;
  client.on("connect", () => {
    whoami(client).then((me) => (pid = me.pid), () => undefined);
  });
  return { client, pid: () => pid };
}

/**
 * Publishes `total` numbered messages to all and to room "chaos" at `rate` per second (bounded in
 * count and time), calling `at(seq)` after each so the test can strike at fixed points.
 */
export async function publish(publisher: Client, total: number, rate: number, at: (seq: number) => Promise<void> | void): Promise<void> {
  const started = Date.now();
  for (let seq = 1; seq <= total; seq++) {
    publisher.emit("chat message", { seq });
    publisher.emit("room message", { room: "chaos", text: String(seq) });
    await at(seq);
    const due = started + (seq * 1000) / rate;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
  }
}

function duplicatesAndGaps(got: number[], expected: Set<number>): { duplicated: number; lost: number; outOfOrder: number; missing: number[] } {
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  for (let i = 0; i < got.length; i++) {
    if (seen.has(got[i])) duplicated++;
    seen.add(got[i]);
    if (i > 0 && got[i] < got[i - 1]) outOfOrder++;
  }
  let lost = 0;
  const missing: number[] = [];
  for (const n of expected) {
    if (seen.has(n)) continue;
    lost++;
    if (missing.length < 5) missing.push(n);
  }
  return { duplicated, lost, outOfOrder, missing };
}

/**
 * Waits until every subscriber is connected and has the last message (or was told it has a fresh
 * session), then counts. What was broadcast is every number some subscriber received: a number
 * nobody received never left the publisher's worker, and anything broadcast must reach every
 * subscriber that kept (recovered) its session. Throws with details when some never catch up.
 */
export async function settle(subscribers: Subscriber[], total: number, serverProblems: () => string[], ms = 30_000): Promise<{ totals: ChaosTotals; troubled: string[] }> {
  const done = (s: Subscriber): boolean => s.fresh > 0 || (s.all.includes(total) && (!s.member || s.room.includes(total)));
  const broadcastSets = (): [Set<number>, Set<number>] => [
    new Set(subscribers.flatMap((s) => s.all)),
    new Set(subscribers.filter((s) => s.member).flatMap((s) => s.room)),
  ];
  await waitUntil("every subscriber to catch up", () => subscribers.every((s) => s.client.connected && done(s)), ms, 50).catch((err: Error) => {
    const behind = subscribers.filter((s) => !(s.client.connected && done(s)));
    const [broadcastAll, broadcastRoom] = broadcastSets();
    const describe = (s: Subscriber): string => {
      const all = duplicatesAndGaps(s.all, broadcastAll);
      const room = duplicatesAndGaps(s.room, s.member ? broadcastRoom : new Set());
      const firstMissing = Array.from({ length: total }, (_, i) => i + 1).find((n) => !s.all.includes(n));
      return JSON.stringify({ id: s.client.id, disconnects: s.disconnects, transport: s.client.io.engine?.transport?.name, firstMissing, connected: s.client.connected, pid: s.pid, recovered: s.recovered, fresh: s.fresh, all: { n: s.all.length, last: s.all.at(-1), ...all }, room: { n: s.room.length, ...room } });
    };
    throw new Error(`${err.message}; ${behind.length} behind: ${behind.map(describe).join("\n")}\nserver warnings: ${serverProblems().join("\n")}`);
  });

  const [broadcastAll, broadcastRoom] = broadcastSets();
  const troubled: string[] = [];
  const totals: ChaosTotals = {
    sent: total * 2,
    neverBroadcast: total - broadcastAll.size + (total - broadcastRoom.size),
    expected: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    recoveredSessions: 0,
    freshSessions: 0,
  };
  for (const s of subscribers) {
    totals.recoveredSessions += s.recovered;
    totals.freshSessions += s.fresh;
    if (s.fresh > 0) continue; // a fresh session is announced to the client, never a silent gap
    for (const [got, expected] of [[s.all, broadcastAll], [s.room, s.member ? broadcastRoom : new Set<number>()]] as const) {
      const { duplicated, lost, outOfOrder, missing } = duplicatesAndGaps(got, expected);
      totals.expected += expected.size;
      totals.delivered += got.length;
      totals.lost += lost;
      totals.duplicated += duplicated;
      totals.outOfOrder += outOfOrder;
      if (duplicated + lost + outOfOrder > 0) {
        troubled.push(JSON.stringify({ stream: got === s.all ? "all" : "room", duplicated, lost, missing, outOfOrder, disconnects: s.disconnects, recovered: s.recovered, sample: got.filter((n, i) => i > 0 && n <= got[i - 1]).slice(0, 5), ...(process.env.CHAOS_DEBUG ? { timeline: s.timeline, around: got.slice(Math.max(0, got.findIndex((n, i) => i > 0 && n <= got[i - 1]) - 5), got.findIndex((n, i) => i > 0 && n <= got[i - 1]) + 5) } : {}) }));
      }
    }
  }
  return { totals, troubled };
}

/** What recovery promises every subscriber that kept its session: every broadcast, once, in order. */
export function assertExactlyOnce(totals: ChaosTotals): void {
  assert.equal(totals.lost, 0);
  assert.equal(totals.duplicated, 0);
  assert.equal(totals.outOfOrder, 0);
  assert.equal(totals.delivered, totals.expected);
}
