import { closeClients, connect, connectMany, type Client } from "./clients";
import { waitUntil } from "./wait";

/** What clients saw while traffic ran. */
export interface TrafficReport {
  clients: number;
  /** Disconnects seen by the long-lived clients. */
  disconnects: number;
  /** Disconnect reasons with their counts, and the most disconnects one client saw. */
  reasons: Record<string, number>;
  mostDisconnectsOfOneClient: number;
  /** Pid of the worker serving each long-lived client at the end (0 if it did not answer whoami). */
  servedBy: number[];
  /** Longest time from a disconnect to the next connect, in ms (0 without disconnects). */
  longestReconnectMs: number;
  /** Reconnections that recovered their session (connection-state recovery: same id, missed packets replayed). */
  recovered: number;
  /**
   * Chat broadcasts sent; those no client received at all (the publisher's emit raced its own
   * disconnect: socket.io-client sends without acks, so such an emit is lost before the server
   * has it, as the chaos test also counts apart); and (client, broadcast) pairs never delivered
   * among the broadcasts the server had.
   */
  broadcasts: number;
  unpublished: number;
  missedBroadcasts: number;
  /** Long-lived clients that were disconnected and are not connected again. */
  stillDisconnected: number;
  /** Failed reconnection attempts of the long-lived clients (a refused or failed connect). */
  connectErrors: string[];
  /** Fresh connections opened during the traffic, and the ones that failed. */
  freshConnects: number;
  freshFailures: string[];
  /** Requests with acknowledgement answered, and the ones that failed while the client was connected. */
  answered: number;
  /** Readiness probes sent, and the ones that did not answer 200. */
  probes: number;
  probeFailures: string[];
}

export interface TrafficOptions {
  /** Long-lived clients, half over WebSocket, half long-polling. */
  clients: number;
  /** Event each client emits with an acknowledgement, every `requestEveryMs`. */
  requestEvent?: string;
  requestEveryMs?: number;
  /** A fresh client connects (and leaves) this often; 0 for none. */
  freshEveryMs?: number;
  /** One client broadcasts a numbered "chat message" this often (the chat app relays it to all); 0 for none. */
  broadcastEveryMs?: number;
  /** /readyz is probed this often on a new connection; 0 for none. */
  probeEveryMs?: number;
}

/**
 * Real clients doing real work against a host while something (a rolling restart) happens: every
 * client keeps sending requests, fresh clients keep arriving, a load balancer keeps probing /readyz.
 * The long-lived clients use socket.io-client's default reconnection delays, as browsers do.
 */
export class Traffic {
  private readonly report: TrafficReport;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly down = new Map<Client, number>();
  private long: Client[] = [];
  private stopped = false;
  private readonly delivered = new Map<Client, Set<number>>();

  private constructor(
    private readonly url: string,
    private readonly options: TrafficOptions,
  ) {
    this.report = {
      clients: options.clients,
      disconnects: 0,
      reasons: {},
      mostDisconnectsOfOneClient: 0,
      recovered: 0,
      broadcasts: 0,
      unpublished: 0,
      missedBroadcasts: 0,
      servedBy: [],
      longestReconnectMs: 0,
      stillDisconnected: 0,
      connectErrors: [],
      freshConnects: 0,
      freshFailures: [],
      answered: 0,
      probes: 0,
      probeFailures: [],
    };
  }

  static async start(url: string, options: TrafficOptions): Promise<Traffic> {
    const traffic = new Traffic(url, options);
    await traffic.begin();
    return traffic;
  }

  /** Resolves once every client has received a broadcast (so it holds an offset to recover from). */
  everyClientHeardABroadcast(ms = 10_000): Promise<boolean> {
    return waitUntil("a broadcast at every client", () => [...this.delivered.values()].every((got) => got.size > 0), ms);
  }

  get connectedClients(): number {
    return this.long.filter((c) => c.connected).length;
  }

  private async begin(): Promise<void> {
    const defaults = { reconnectionDelay: 1000, reconnectionDelayMax: 5000 };
    const half = Math.ceil(this.options.clients / 2);
    this.long = [
      ...(await connectMany(this.url, half, { ...defaults, transports: ["websocket"] })),
      ...(await connectMany(this.url, this.options.clients - half, { ...defaults, transports: ["polling"] })),
    ];
    for (const client of this.long) {
      const got = new Set<number>();
      this.delivered.set(client, got);
      client.on("chat message", (payload: { seq?: unknown }) => {
        if (typeof payload?.seq === "number") got.add(payload.seq);
      });
      let mine = 0;
      client.on("disconnect", (reason: string) => {
        this.report.disconnects++;
        const key = `${client.io.engine?.transport?.name ?? "?"}: ${reason}`;
        this.report.reasons[key] = (this.report.reasons[key] ?? 0) + 1;
        this.report.mostDisconnectsOfOneClient = Math.max(this.report.mostDisconnectsOfOneClient, ++mine);
        this.down.set(client, Date.now());
      });
      client.on("connect", () => {
        const since = this.down.get(client);
        if (since === undefined) return;
        this.down.delete(client);
        if (client.recovered) this.report.recovered++;
        this.report.longestReconnectMs = Math.max(this.report.longestReconnectMs, Date.now() - since);
      });
      client.io.on("reconnect_error", (err: Error) => this.report.connectErrors.push(err.message));
    }
    const event = this.options.requestEvent ?? "whoami";
    const every = this.options.requestEveryMs ?? 250;
    this.timers.push(
      setInterval(() => {
        for (const client of this.long) {
          if (!client.connected) continue;
          // A request in flight when its worker drains may go unanswered; the client reconnects. Only answers count.
          client.timeout(5_000).emit(event, (err: Error | null) => {
            if (!err) this.report.answered++;
          });
        }
      }, every),
    );
    if (this.options.broadcastEveryMs) {
      this.timers.push(
        setInterval(() => {
          // socket.io-client buffers an emit while disconnected and sends it on reconnection.
          this.long[0].emit("chat message", { seq: this.report.broadcasts++ });
        }, this.options.broadcastEveryMs),
      );
    }
    if (this.options.freshEveryMs) this.timers.push(setInterval(() => void this.fresh(), this.options.freshEveryMs));
    if (this.options.probeEveryMs) this.timers.push(setInterval(() => void this.probe(), this.options.probeEveryMs));
  }

  private async fresh(): Promise<void> {
    if (this.stopped) return;
    this.report.freshConnects++;
    const transports = this.report.freshConnects % 2 === 0 ? ["websocket"] : ["polling"];
    try {
      const client = await connect(this.url, { transports, reconnection: false }, 10_000);
      closeClients([client]);
    } catch (err) {
      this.report.freshFailures.push((err as Error).message);
    }
  }

  private async probe(): Promise<void> {
    if (this.stopped) return;
    this.report.probes++;
    try {
      // A new connection each time, as a load balancer's health check would open.
      const res = await fetch(`${this.url}/readyz`, { headers: { connection: "close" }, signal: AbortSignal.timeout(5_000) });
      if (res.status !== 200) this.report.probeFailures.push(`status ${res.status}: ${await res.text()}`);
    } catch (err) {
      this.report.probeFailures.push((err as Error).message);
    }
  }

  /** Stops the traffic, waits up to `ms` for every client to be connected again, and reports. */
  async stop(ms = 10_000): Promise<TrafficReport> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    const deadline = Date.now() + ms;
    while (this.long.some((c) => !c.connected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.report.stillDisconnected = this.long.filter((c) => !c.connected).length;
    if (this.report.broadcasts > 0) {
      const last = this.report.broadcasts - 1;
      const published = (): Set<number> => new Set([...this.delivered.values()].flatMap((got) => [...got]));
      // Missing ones are counted below, not thrown.
      await waitUntil("every published broadcast at every client", () => {
        const all = published();
        return all.has(last) && [...this.delivered.values()].every((got) => got.size === all.size);
      }, 5_000).catch(() => undefined);
      const all = published();
      for (let seq = 0; seq <= last; seq++) {
        if (!all.has(seq)) this.report.unpublished++;
        else for (const got of this.delivered.values()) if (!got.has(seq)) this.report.missedBroadcasts++;
      }
    }
    // Which worker serves each client now (the chat app's whoami); 0 when it does not answer.
    this.report.servedBy = await Promise.all(
      this.long.map((c) => c.timeout(5_000).emitWithAck("whoami").then((me: { pid: number }) => me.pid, () => 0)),
    );
    const report = structuredClone(this.report);
    closeClients(this.long);
    return report;
  }
}
