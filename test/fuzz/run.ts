import http from "node:http";
import { BAD_FRAMES, framingSession } from "./framing";
import { BAD_HEADS, headConnection } from "./heads";
import { PACKET_KINDS, PacketGenerator } from "./packets";
import { BAD_REQUESTS, badRequest, pollingSession } from "./polling-sender";
import { Prng } from "./prng";
import { Tally } from "./tally";
import type { Target } from "./target";
import { wsSession } from "./ws-sender";

/**
 * Concurrent senders per lane (transport). All draw from one packet budget, so the run ends when the
 * total is reached however fast each lane turns out to be; the mix follows from these counts.
 */
const LANES = {
  ws: 6,
  polling: 4,
  "ws-framing": 2,
  "polling-request": 2,
  head: 8,
  "admin-head": 1,
} as const;
type Lane = keyof typeof LANES;

/** The kinds each lane can send (a lane without an enabled kind is left out). */
const LANE_KINDS: Record<Lane, string[]> = {
  ws: PACKET_KINDS,
  polling: PACKET_KINDS,
  "ws-framing": Object.keys(BAD_FRAMES),
  "polling-request": Object.keys(BAD_REQUESTS),
  head: Object.keys(BAD_HEADS),
  "admin-head": Object.keys(BAD_HEADS),
};

/** A sender gives up after this many sessions in a row sent nothing (the server is unreachable). */
const MAX_EMPTY_SESSIONS = 50;
/** Hostile traffic comes from these loopback addresses, round robin; never 127.0.0.1 (the good clients'). */
const SOURCE_ADDRESSES = 6;

export interface FuzzSettings {
  seed: number;
  packets: number;
  /** Kind filters ("ws/bad-json", a lane "head", or a kind on every lane "bad-json"): a kind runs when it matches `only` (if set) and not `skip`. */
  only: string[];
  skip: string[];
  /** The run stops after this long even if the budget is not spent. */
  seconds: number;
}

const list = (value: string | undefined): string[] => (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);

export function settingsFromEnv(seed: number, defaults: { packets: number; seconds: number }): FuzzSettings {
  const packets = Number(process.env.FUZZ_PACKETS ?? defaults.packets);
  const seconds = Number(process.env.FUZZ_SECONDS ?? defaults.seconds);
  if (!Number.isInteger(packets) || packets < 1) throw new Error(`FUZZ_PACKETS must be a positive integer, got ${process.env.FUZZ_PACKETS}`);
  if (!(seconds > 0)) throw new Error(`FUZZ_SECONDS must be a positive number, got ${process.env.FUZZ_SECONDS}`);
  return { seed, packets, only: list(process.env.FUZZ_KINDS), skip: list(process.env.FUZZ_SKIP), seconds };
}

export interface FuzzResult {
  tally: Tally;
  ms: number;
  /** Senders that stopped because the server stopped answering. */
  gaveUp: string[];
  /** The deadline came before the budget was spent. */
  timedOut: boolean;
  /** Packets and sessions (connections, or requests) per lane. */
  lanes: Record<string, LaneStats>;
}

export interface LaneStats {
  packets: number;
  sessions: number;
  /** Summed time of the sessions, for the mean session time. */
  ms: number;
}

/** The run's packet budget, shared by every sender; a session reserves its packets up front and returns what it did not send. */
class Pool {
  constructor(private remaining: number) {}

  reserve(wanted: number): number {
    const granted = Math.max(0, Math.min(wanted, this.remaining));
    this.remaining -= granted;
    return granted;
  }

  giveBack(unused: number): void {
    this.remaining += unused;
  }
}

/**
 * Runs every hostile sender against the host until the packet budget is spent (or the deadline).
 * Each session draws from its own stream, derived from the seed, the sender and the session number,
 * so a session is reproducible whatever the other senders did meanwhile.
 */
export async function runFuzz(port: number, adminPort: number, settings: FuzzSettings, abort: () => boolean): Promise<FuzzResult> {
  const matches = (kind: string, prefixes: string[]): boolean => prefixes.some((p) => kind === p || kind.startsWith(p.endsWith("/") ? p : p + "/") || kind.split("/")[1] === p);
  const enabled = (kind: string): boolean => (settings.only.length === 0 || matches(kind, settings.only)) && !matches(kind, settings.skip);
  const tally = new Tally();
  const started = Date.now();
  const deadline = started + settings.seconds * 1000;
  let timedOut = false;
  const stopped = (): boolean => {
    if (Date.now() > deadline) timedOut = true;
    return timedOut || abort();
  };
  const base: Target = {
    port,
    adminPort,
    packets: new PacketGenerator(() => false),
    enabled,
    tally,
    sids: [],
    localAddress: (index) => `127.0.0.${2 + (index % SOURCE_ADDRESSES)}`,
    stopped,
  };
  const gaveUp: string[] = [];
  const agents: http.Agent[] = [];
  const senders: Promise<void>[] = [];
  const pool = new Pool(settings.packets);
  const laneStats: FuzzResult["lanes"] = {};
  let index = 0;
  for (const lane of (Object.keys(LANES) as Lane[]).filter((l) => LANE_KINDS[l].some((k) => enabled(`${l}/${k}`)))) {
    const target: Target = { ...base, packets: new PacketGenerator((k) => enabled(`${lane}/${k}`)) };
    const stats = (laneStats[lane] = { packets: 0, sessions: 0, ms: 0 });
    for (let i = 0; i < LANES[lane]; i++) {
      const name = `${lane}#${i}`;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: base.localAddress(index) } as http.AgentOptions);
      agents.push(agent);
      const session = sessionFor(lane, target, name, index++, agent);
      senders.push(loop(name, pool, settings.seed, stopped, session, stats).then((ok) => void (ok || gaveUp.push(name))));
    }
  }
  await Promise.all(senders);
  for (const agent of agents) agent.destroy();
  return { tally, ms: Date.now() - started, gaveUp, timedOut, lanes: laneStats };
}

type Session = (rng: Prng, budget: number) => Promise<number>;

function sessionFor(lane: Lane, target: Target, name: string, index: number, agent: http.Agent): Session {
  switch (lane) {
    case "ws":
      return (rng, budget) => wsSession(target, name, index, rng, budget);
    case "polling":
      return (rng, budget) => pollingSession(target, name, agent, rng, budget);
    case "ws-framing":
      return (rng) => framingSession(target, name, index, rng);
    case "polling-request":
      return (rng) => badRequest(target, name, agent, rng);
    case "head":
      return (rng) => headConnection(target, name, index, rng, "head");
    case "admin-head":
      return (rng) => headConnection(target, name, index, rng, "admin-head");
  }
}

/** A session of one packet (a bad head, a bad request, a bad frame run) reserves this many, at most. */
const SMALL_SESSION = 8;

/** Runs sessions of one sender until the pool is empty; false when it gave up on an unreachable server. */
async function loop(name: string, pool: Pool, seed: number, stopped: () => boolean, session: Session, stats: LaneStats): Promise<boolean> {
  let empty = 0;
  for (let n = 0; !stopped(); n++) {
    const rng = Prng.derive(seed, `${name}@${n}`);
    // Half the sessions are short, so that kinds which end a session (one per session) are not rare.
    const size = rng.chance(0.5) ? rng.int(1, 20) : rng.int(50, 400);
    const budget = pool.reserve(name.startsWith("ws#") || name.startsWith("polling#") ? size : SMALL_SESSION);
    if (budget === 0) return true;
    const started = Date.now();
    const sent = await session(rng, budget);
    stats.ms += Date.now() - started;
    pool.giveBack(Math.max(0, budget - sent));
    stats.packets += sent;
    stats.sessions++;
    empty = sent > 0 ? 0 : empty + 1;
    if (empty >= MAX_EMPTY_SESSIONS) return false;
  }
  return true;
}
