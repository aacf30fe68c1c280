import { request, type Client } from "./clients";

interface Numbered {
  stream: string;
  n: number;
}

/** Records the numbered "event" payloads a client receives (adapter-app fixture), by stream. */
export function numbered(client: Client): Map<string, number[]> {
  const streams = new Map<string, number[]>();
  client.on("event", (payload: Numbered) => {
    if (typeof payload?.n !== "number") return;
    streams.set(payload.stream, [...(streams.get(payload.stream) ?? []), payload.n]);
  });
  return streams;
}

/** The `seq` of every "event" broadcast a client receives (adapter-app fixture), in arrival order. */
export function sequences(client: Client): number[] {
  const seen: number[] = [];
  client.on("event", (payload: { seq?: unknown } | null) => {
    if (typeof payload?.seq === "number") seen.push(payload.seq);
  });
  return seen;
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Numbered broadcasts to all, to room "blue" and to the socket id `target` (captured while connected). */
export async function publishNumbered(publisher: Client, target: string, from: number, to: number): Promise<void> {
  for (let n = from; n <= to; n++) {
    await request(publisher, "broadcast", { stream: "all", n });
    await request(publisher, "to-room", "blue", { stream: "room", n });
    await request(publisher, "to-room", target, { stream: "direct", n });
  }
}
