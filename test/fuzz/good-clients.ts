import { connect, whoami, type Client } from "../helpers/clients";

interface ChatPayload {
  fuzz: string;
  from: string;
  n: number;
}

export interface GoodClient {
  name: string;
  socket: Client;
  pid: number;
  /** Sender name -> numbers received from it, in arrival order. */
  received: Map<string, number[]>;
  disconnects: string[];
}

/**
 * Well-behaved chat clients: each sends numbered "chat message"s at a modest rate and records the
 * numbered messages it receives (the chat app broadcasts them to everyone). Hostile senders may
 * broadcast "chat message"s too; only payloads carrying this run's tag count.
 */
export class ChatExchange {
  readonly clients: GoodClient[] = [];
  readonly sent = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private readonly tag = `fuzz-${process.pid}-${Date.now()}`;

  static async connect(url: string, transports: ("polling" | "websocket")[]): Promise<ChatExchange> {
    const exchange = new ChatExchange();
    for (const [i, transport] of transports.entries()) {
      const socket = await connect(url, { transports: [transport], reconnection: true });
      const { pid } = await whoami(socket);
      const client: GoodClient = { name: `${transport}#${i}`, socket, pid, received: new Map(), disconnects: [] };
      socket.on("chat message", (payload: ChatPayload) => {
        if (payload?.fuzz !== exchange.tag) return;
        const got = client.received.get(payload.from);
        if (got) got.push(payload.n);
        else client.received.set(payload.from, [payload.n]);
      });
      socket.on("disconnect", (reason: string) => client.disconnects.push(reason));
      exchange.clients.push(client);
    }
    return exchange;
  }

  /** Every client sends `perSecond` numbered messages a second until stop(). */
  start(perSecond: number): void {
    this.timer = setInterval(() => {
      for (const client of this.clients) {
        const n = (this.sent.get(client.name) ?? 0) + 1;
        this.sent.set(client.name, n);
        client.socket.emit("chat message", { fuzz: this.tag, from: client.name, n } satisfies ChatPayload);
      }
    }, 1000 / perSecond);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** For each receiver and sender whose messages did not all arrive exactly once in order, what it got. */
  problems(): string[] {
    const out: string[] = [];
    for (const receiver of this.clients) {
      for (const [sender, count] of this.sent) {
        const got = receiver.received.get(sender) ?? [];
        const inOrder = got.length === count && got.every((n, i) => n === i + 1);
        if (!inOrder) out.push(`${receiver.name} got ${got.length} of ${count} from ${sender}${describeGaps(got, count)}`);
      }
    }
    return out;
  }

  get totalSent(): number {
    return [...this.sent.values()].reduce((a, b) => a + b, 0);
  }
}

function describeGaps(got: number[], count: number): string {
  const seen = new Set(got);
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !seen.has(n));
  const duplicates = got.length - seen.size;
  const outOfOrder = got.findIndex((n, i) => i > 0 && n <= got[i - 1]);
  return `: ${missing.length} missing (first ${missing.slice(0, 5).join(", ")}), ${duplicates} duplicates${outOfOrder >= 0 ? `, out of order at ${outOfOrder}` : ""}`;
}
