/**
 * A counting TCP proxy in front of a redis-server: it forwards bytes both ways and counts the
 * pub/sub messages Redis delivers to its clients (RESP2 `message`, `pmessage`, `smessage` pushes)
 * and the stream entries it returns (sockfleet's shared log: every entry starts with field "b";
 * @socket.io/redis-streams-adapter's with field "uid").
 * Used only in the accounting pass, never while latency is measured (it adds a hop).
 */
import net from "node:net";

const MARKERS = [
  Buffer.from("*3\r\n$7\r\nmessage\r\n"),
  Buffer.from("*4\r\n$8\r\npmessage\r\n"),
  Buffer.from("*3\r\n$8\r\nsmessage\r\n"),
  Buffer.from("\r\n$1\r\nb\r\n$"),
  // @socket.io/redis-streams-adapter's entries start with field "uid"
  Buffer.from("\r\n$3\r\nuid\r\n$"),
];
const TAIL = Math.max(...MARKERS.map((m) => m.length)) - 1;

/** What each marker counts, in MARKERS order. */
export const TAP_KINDS = ["message", "pmessage", "smessage", "stream entry (b)", "stream entry (uid)"] as const;

function countIn(buf: Buffer, into?: number[]): number {
  let n = 0;
  MARKERS.forEach((m, k) => {
    let c = 0;
    for (let at = buf.indexOf(m); at >= 0; at = buf.indexOf(m, at + m.length)) c++;
    if (into) into[k] = (into[k] ?? 0) + c;
    n += c;
  });
  return n;
}

export class RedisTap {
  delivered = 0;
  /** `delivered` by kind (TAP_KINDS). */
  readonly byKind: number[] = TAP_KINDS.map(() => 0);
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, "127.0.0.1");
      this.sockets.add(client).add(upstream);
      let tail = Buffer.alloc(0);
      upstream.on("data", (d: Buffer) => {
        const joined = tail.length > 0 ? Buffer.concat([tail, d]) : d;
        // count only markers that end inside this chunk, so none is counted twice
        const before = [...this.byKind];
        countIn(joined, this.byKind);
        const inTail = TAP_KINDS.map(() => 0);
        countIn(tail, inTail);
        this.byKind.forEach((_, k) => (this.byKind[k]! -= inTail[k]!));
        this.delivered += this.byKind.reduce((a, x, k) => a + x - before[k]!, 0);
        tail = Buffer.from(joined.subarray(Math.max(0, joined.length - TAIL)));
        client.write(d);
      });
      client.pipe(upstream);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  listen(): Promise<void> {
    return new Promise((resolve) =>
      this.server.listen(0, "127.0.0.1", () => {
        const a = this.server.address();
        this.port = typeof a === "object" && a !== null ? a.port : 0;
        resolve();
      }),
    );
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
