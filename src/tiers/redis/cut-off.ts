import type { Logger } from "../../observability/logger";

/** After the subscriber drops, how long to wait before asking whether Redis is still there. */
const CHECK_AFTER_MS = 200;

/** The publishing connection of the same process, to tell "Redis closed us" from "Redis is gone". */
export interface Publisher {
  client: { ping(): Promise<unknown> };
  up(): boolean;
  /** Times it went down so far: a Redis that restarted drops it too. */
  downs(): number;
}

/**
 * A subscribing connection dropped. If the publishing connection to the same Redis stayed up and
 * still answers a moment later, Redis itself closed the subscriber: for a subscriber that is what
 * `client-output-buffer-limit pubsub` does to a reader too slow for what is published (a stopped
 * or swamped process, a stalled network). Everything published to it meanwhile is lost. Logs it
 * as such and calls `onCutOff`.
 */
export function checkCutOff(pub: Publisher, log: Logger, details: Record<string, unknown>, onCutOff: () => void = () => undefined): void {
  const downs = pub.downs();
  const timer = setTimeout(() => {
    if (!pub.up() || pub.downs() !== downs) return;
    pub.client
      .ping()
      .then(() => {
        if (pub.downs() !== downs) return;
        log.warn(
          { reason: "client-output-buffer-limit", ...details },
          "redis closed a subscriber connection while the publishing one stayed up: its output buffer passed client-output-buffer-limit pubsub (this process read too slowly); messages published meanwhile are lost",
        );
        onCutOff();
      })
      .catch(() => undefined); // Redis itself is gone: "redis unreachable" says so.
  }, CHECK_AFTER_MS);
  timer.unref();
}
