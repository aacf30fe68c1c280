import type { Server } from "socket.io";

/** Clients are told to reconnect in batches at least this far apart. */
const TICK_MS = 50;

/** The part of an Engine.IO socket the drain uses. */
interface EngineClient {
  readonly readyState: string;
  close(): void;
}

/**
 * Tells a worker's clients to reconnect a few at a time instead of all at once, so a rolling
 * restart does not stampede the remaining workers (and the balancer) with every client of the
 * replaced worker in the same instant.
 *
 * Closing the Engine.IO connection (rather than `socket.disconnect()`) matters: the client sees
 * "transport close" and reconnects by itself; a Socket.IO disconnect packet ("io server
 * disconnect") would make it stay away.
 */
export class PacedDisconnect {
  private wake?: () => void;
  private hurried = false;

  /** Resolves, with how many were told, when every client connected at the start has been told to reconnect. */
  async run(io: Server, spreadMs: number): Promise<number> {
    // engine.clients is protected in the typings but is the documented way to reach every session.
    const clients = Object.values((io.engine as unknown as { clients: Record<string, EngineClient> }).clients);
    // Evenly over the whole spread, also with fewer clients than ticks: the last batch goes at
    // about spreadMs, so the hosts taking them see a steady trickle, not a burst.
    const ticks = Math.max(1, Math.min(clients.length, Math.floor(spreadMs / TICK_MS)));
    const perTick = Math.max(1, Math.ceil(clients.length / ticks));
    const pauseMs = spreadMs / ticks;
    let told = 0;
    for (let i = 0; i < clients.length; i += perTick) {
      for (const client of clients.slice(i, i + perTick)) {
        if (client.readyState !== "open") continue;
        client.close();
        told++;
      }
      if (i + perTick < clients.length) await this.pause(pauseMs);
    }
    return told;
  }

  /** The rest are told at once (the host is shutting down while this worker drains). */
  hurry(): void {
    this.hurried = true;
    this.wake?.();
  }

  private pause(ms: number): Promise<void> {
    if (this.hurried) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** Passes after the paced one, for clients whose handshake was under way when the drain began. */
const SWEEPS = 10;
const SWEEP_MS = 200;

/**
 * The whole host drains (scale-in): every client of this worker is told to reconnect, spread over
 * `spreadMs` (the host's balancer refuses new sessions, so they land on other hosts), then a few
 * more passes catch the sessions that opened meanwhile. Resolves with how many were told.
 */
export async function sendEveryClientAway(io: Server, pacer: PacedDisconnect, spreadMs: number, stopped: () => boolean): Promise<number> {
  let told = await pacer.run(io, spreadMs);
  for (let pass = 0; pass < SWEEPS && io.engine.clientsCount > 0 && !stopped(); pass++) {
    await new Promise((resolve) => setTimeout(resolve, SWEEP_MS));
    told += await pacer.run(io, 0);
  }
  return told;
}
