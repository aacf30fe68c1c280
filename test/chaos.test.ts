import assert from "node:assert/strict";
import { closeClients, connect, whoami, type Client } from "./helpers/clients";
import { isAlive } from "./helpers/processes";
import { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

/** Seconds of publishing; `npm run chaos` runs a longer version. */
const SECONDS = Number(process.env.CHAOS_SECONDS ?? 6);
const RATE = Number(process.env.CHAOS_RATE ?? 100);
const SUBSCRIBERS = Number(process.env.CHAOS_SUBSCRIBERS ?? 12);
const KILLS = Number(process.env.CHAOS_KILLS ?? Math.max(3, Math.round(SECONDS / 2)));

interface Subscriber {
  client: Client;
  member: boolean;
  all: number[];
  room: number[];
  recovered: number;
  fresh: number;
  /** The worker serving it now, learnt after each (re)connect. */
  pid?: number;
}

function duplicatesAndGaps(got: number[], expected: number): { duplicated: number; lost: number; outOfOrder: number } {
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  for (let i = 0; i < got.length; i++) {
    if (seen.has(got[i])) duplicated++;
    seen.add(got[i]);
    if (i > 0 && got[i] < got[i - 1]) outOfOrder++;
  }
  let lost = 0;
  for (let n = 1; n <= expected; n++) if (!seen.has(n)) lost++;
  return { duplicated, lost, outOfOrder };
}

describe("chaos: connection-state recovery while workers are killed", function () {
  this.timeout((SECONDS + 90) * 1000);

  it(`delivers every broadcast exactly once, in order, to every recovered subscriber (${SECONDS} s, ${KILLS} kills)`, async () => {
    const host = await SockfleetHost.start({ workers: 3 });
    const subscribers: Subscriber[] = [];
    const clients: Client[] = [];
    try {
      const publisher = await connect(host.url, { transports: ["websocket"] });
      clients.push(publisher);
      const safe = (await whoami(publisher)).pid; // the publisher's worker is spared, so every send counts

      for (let i = 0; i < SUBSCRIBERS; i++) {
        // Half WebSocket-only, half polling first (then upgraded); half in the room.
        const client = await connect(host.url, i % 2 ? { transports: ["websocket"] } : {});
        clients.push(client);
        const sub: Subscriber = { client, member: i % 3 !== 0, all: [], room: [], recovered: 0, fresh: 0 };
        client.on("chat message", (payload: { seq?: number }) => typeof payload?.seq === "number" && sub.all.push(payload.seq));
        client.on("room message", (payload: { text?: string }) => sub.room.push(Number(payload?.text)));
        let first = true;
        const locate = (): void => {
          client.timeout(5_000).emitWithAck("whoami").then((me: { pid: number }) => (sub.pid = me.pid), () => undefined);
        };
        locate();
        client.on("connect", () => {
          locate();
          if (first) return void (first = false);
          if (client.recovered) sub.recovered++;
          else sub.fresh++;
        });
        if (sub.member) await client.timeout(5_000).emitWithAck("join", "chaos");
        subscribers.push(sub);
      }

      const total = SECONDS * RATE;
      const killAt = new Set(Array.from({ length: KILLS }, (_, k) => Math.round(((k + 1) * total) / (KILLS + 1))));
      let kills = 0;
      const started = Date.now();
      for (let seq = 1; seq <= total; seq++) {
        publisher.emit("chat message", { seq });
        publisher.emit("room message", { room: "chaos", text: String(seq) });
        if (killAt.has(seq)) {
          // Kill a worker that serves subscribers (any other worker if none does); mostly SIGKILL,
          // every third one a graceful SIGTERM.
          const serving = subscribers.map((s) => s.pid).filter((pid): pid is number => pid !== undefined && pid !== safe && isAlive(pid));
          const victims = serving.length > 0 ? serving : host.workerPids().filter((pid) => pid !== safe);
          const victim = victims[Math.floor(Math.random() * victims.length)];
          if (victim !== undefined && isAlive(victim)) {
            process.kill(victim, kills % 3 === 2 ? "SIGTERM" : "SIGKILL");
            kills++;
          }
        }
        // Steady rate, bounded in time: sleep until this message's slot.
        const due = started + (seq * 1000) / RATE;
        if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      }

      const done = (s: Subscriber): boolean => s.fresh > 0 || (s.all.includes(total) && (!s.member || s.room.includes(total)));
      await waitUntil("every subscriber to catch up", () => subscribers.every((s) => s.client.connected && done(s)), 30_000, 50).catch((err: Error) => {
        const behind = subscribers.filter((s) => !(s.client.connected && done(s)));
        const describe = (s: Subscriber): string => {
          const all = duplicatesAndGaps(s.all, total);
          const room = duplicatesAndGaps(s.room, s.member ? total : 0);
          const firstMissing = Array.from({ length: total }, (_, i) => i + 1).find((n) => !s.all.includes(n));
          return JSON.stringify({ transport: s.client.io.engine?.transport?.name, firstMissing, safe, connected: s.client.connected, pid: s.pid, recovered: s.recovered, fresh: s.fresh, all: { n: s.all.length, last: s.all.at(-1), ...all }, room: { n: s.room.length, ...room } });
        };
        const problems = host.logs.filter((l) => (l.level ?? 0) >= 40 && l.msg !== "worker crashed").slice(0, 10);
        throw new Error(`${err.message}; ${behind.length} behind: ${behind.map(describe).join("\n")}\nserver warnings: ${problems.map((l) => JSON.stringify(l)).join("\n")}`);
      });

      const totals = { sent: total * 2, expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, kills, recoveredSessions: 0, freshSessions: 0 };
      for (const s of subscribers) {
        totals.recoveredSessions += s.recovered;
        totals.freshSessions += s.fresh;
        if (s.fresh > 0) continue; // a fresh session is announced to the client, never a silent gap
        for (const [got, expected] of [[s.all, total], [s.room, s.member ? total : 0]] as const) {
          const { duplicated, lost, outOfOrder } = duplicatesAndGaps(got, expected);
          totals.expected += expected;
          totals.delivered += got.length;
          totals.lost += lost;
          totals.duplicated += duplicated;
          totals.outOfOrder += outOfOrder;
        }
      }
      console.log(`      chaos totals: ${JSON.stringify(totals)}`);
      assert.ok(kills >= Math.min(KILLS, 1), "workers were killed");
      assert.ok(totals.recoveredSessions > 0, "some sessions were recovered");
      assert.equal(totals.lost, 0);
      assert.equal(totals.duplicated, 0);
      assert.equal(totals.outOfOrder, 0);
      assert.equal(totals.delivered, totals.expected);
    } finally {
      closeClients(clients);
      await host.stop();
    }
  });
});
