/** The harness <-> load-generator IPC protocol: one request union, one reply shape. */
import type { HistogramData } from "../lib/histogram.js";

/** Which message a group's receivers time: all-broadcast or room fan-out. */
export type TrafficKind = "broadcast" | "room";

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
