import { isSockfleetMessage, sendToPrimary, type ToPrimary, type ToWorker } from "./messages";

type Reply = Extract<ToWorker, { id: number }>;
type Request = Extract<ToPrimary, { id: number }>;

/**
 * Request/response from a worker to its primary over IPC, matched by id. Replies are delivered
 * synchronously inside the IPC message event, so a caller can act on one in the primary's order
 * relative to the other messages of the channel (the recovery adapter relies on it).
 */
export class PrimaryRequests {
  private nextId = 0;
  private readonly waiting = new Map<number, { settle: (reply: Reply) => void; timer: NodeJS.Timeout }>();

  constructor() {
    process.on("message", (message: unknown) => {
      if (!isSockfleetMessage(message) || !("id" in message)) return;
      const entry = this.waiting.get(message.id);
      if (!entry) return;
      this.waiting.delete(message.id);
      clearTimeout(entry.timer);
      entry.settle(message as Reply);
    });
  }

  /** Sends `build(id)` and calls `onReply` with the answer, or `onTimeout` after `ms`. */
  send(build: (id: number) => Request | null, onReply: (reply: Reply) => void, onTimeout: () => void, ms: number): number {
    const id = ++this.nextId;
    const timer = setTimeout(() => {
      this.waiting.delete(id);
      onTimeout();
    }, ms);
    this.waiting.set(id, { settle: onReply, timer });
    const request = build(id);
    if (request) sendToPrimary(request);
    return id;
  }

  /** Registers a reply handler for an id the caller sends itself (inside another message). */
  expect(onReply: (reply: Reply) => void, onTimeout: () => void, ms: number): number {
    return this.send(() => null, onReply, onTimeout, ms);
  }
}

let shared: PrimaryRequests | undefined;

/** One per worker process, created on first use: every namespace's adapter shares it. */
export function primaryRequests(): PrimaryRequests {
  shared ??= new PrimaryRequests();
  return shared;
}
