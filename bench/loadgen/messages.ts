/** The harness <-> load-generator IPC protocol: one request union, one reply shape. */
import type { HistogramData } from "../lib/histogram.js";

/**
 * Which message a group's receivers time: all-broadcast, room fan-out, or "planned": to the rooms
 * set up by a "plan-rooms" request, each sent from another worker or host than its members'.
 */
export type TrafficKind = "broadcast" | "room" | "planned";

export type LoadgenRequest =
  | {
      type: "open";
      group: string;
      host: string;
      port: number;
      count: number;
      localAddress?: string | undefined;
      concurrency: number;
      timeoutMs: number;
    }
  | { type: "join"; group: string; prefix: string; roomCount: number; indexBase: number; concurrency: number }
  | { type: "whoami"; group: string; sample: number }
  /** Asks every connection of the group where it landed; answers the count per "host/wN". */
  | { type: "identify"; group: string; concurrency: number }
  /**
   * After "identify": groups the connections by where they landed, leaves out the `exclude` keys,
   * and joins each landing's connections in rooms of `roomSize` (all members of a room on one
   * worker); later "planned" sends go to these rooms, each from a member of a room on the next
   * landing (another worker or host), or from one of its own members when there is one landing.
   */
  | { type: "plan-rooms"; group: string; prefix: string; roomSize: number; exclude: string[]; concurrency: number }
  | { type: "reset"; group: string }
  | {
      type: "send";
      group: string;
      kind: TrafficKind;
      /** Messages per second from this generator. */
      rate: number;
      durationMs: number;
      /** How many of the group's first connections take turns sending. */
      senders: number;
      payloadBytes: number;
      /** For rooms: messages go to prefix + (k % roomCount), k advancing. */
      prefix: string;
      roomCount: number;
      roomOffset: number;
    }
  | { type: "report"; group: string }
  | { type: "close"; group: string }
  | {
      type: "storm";
      mode: "websocket" | "polling";
      host: string;
      port: number;
      count: number;
      concurrency: number;
      timeoutMs: number;
      localAddress?: string | undefined;
    }
  | { type: "usage" }
  | { type: "exit" };

export interface OpenResult {
  ok: number;
  failed: number;
  ms: number;
  errors: string[];
}

export interface JoinResult {
  ok: number;
  failed: number;
  ms: number;
}

export interface Who {
  host: string;
  worker: number;
  pid: number;
}

/** Where a group's connections landed, by "host/wN". */
export type IdentifyResult = Record<string, { count: number; pid: number }>;

export interface PlanResult {
  rooms: number;
  members: number;
  joinFailed: number;
}

export interface SendResult {
  sent: number;
  ms: number;
  /** How far the send loop fell behind its schedule at the end (ms). */
  lagMs: number;
}

export interface ReportResult {
  connections: number;
  received: number;
  unparsed: number;
  closedUnexpectedly: number;
  latency: HistogramData;
}

export interface StormResult {
  ok: number;
  failed: number;
  ms: number;
  /** Time from starting a connection to its CONNECT reply. */
  connectLatency: HistogramData;
  errors: string[];
}

export interface UsageResult {
  cpuUserUs: number;
  cpuSystemUs: number;
  rss: number;
}

export type LoadgenReply =
  | { id: number; ok: true; data: unknown }
  | { id: number; ok: false; error: string };

export interface LoadgenEnvelope {
  id: number;
  req: LoadgenRequest;
}
