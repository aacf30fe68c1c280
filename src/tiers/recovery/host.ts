import type { Config } from "../../config/schema";
import type { ToPrimary, ToWorker } from "../../ipc/messages";
import type { AdapterMessage } from "../cluster/relay";
import { RecoveryStore } from "./store";

const SWEEP_EVERY_MS = 1_000;

/**
 * Connection-state recovery on one host: the primary's store, fed by the workers' session
 * messages and by the relay's sequencing of broadcasts, answering restore requests.
 */
export class HostRecovery {
  readonly store: RecoveryStore;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    config: Config,
    private readonly isLive: (worker: number) => boolean,
    private readonly reply: (worker: number, message: ToWorker) => void,
  ) {
    this.store = new RecoveryStore({
      windowMs: config.recoveryWindow,
      maxPackets: config.recoveryMaxPackets,
      maxBytes: config.recoveryMaxBytes,
      maxSessions: 1_000_000,
    });
    this.sweeper = setInterval(() => this.store.sweep(), SWEEP_EVERY_MS).unref();
  }

  /** The relay's sequencer: logs a recoverable broadcast, returns its offset. */
  readonly sequence = (message: AdapterMessage): string => {
    const { packet, opts } = message.data as { packet: { data: unknown[] }; opts: { rooms: string[]; except: string[] } };
    return this.store.append({ nsp: message.nsp, rooms: opts.rooms, except: opts.except ?? [], data: packet.data });
  };

  /** Handles a worker's recovery message; returns false for other messages. */
  onMessage(worker: number, message: ToPrimary): boolean {
    switch (message.sf) {
      case "rooms-joined":
        this.store.joined(worker, message.nsp, message.sid, message.rooms, message.pid, message.data);
        return true;
      case "rooms-left":
        this.store.left(message.nsp, message.sid, message.rooms);
        return true;
      case "socket-ended":
        this.store.ended(message.nsp, message.sid);
        return true;
      case "session-persisted":
        this.store.persisted(message.nsp, message.sid, message.pid, message.rooms, message.data);
        return true;
      case "restore": {
        const session = this.store.restore(worker, message.nsp, message.pid, message.offset, this.isLive);
        this.reply(worker, { sf: "restored", id: message.id, session });
        return true;
      }
      default:
        return false;
    }
  }

  workerGone(worker: number): void {
    this.store.workerGone(worker);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
