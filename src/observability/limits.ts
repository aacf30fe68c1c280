import { Counter, type Registry } from "prom-client";
import type { Logger } from "./logger";

/**
 * The limits of README "Security and limits", by the name of the setting that bounds them (the
 * flag without its dashes), plus the refusals that have no setting of their own.
 */
export type LimitName =
  | "max-connections"
  | "max-connections-per-ip"
  | "head-timeout"
  | "max-head-bytes"
  | "max-pending-heads"
  | "max-events-per-second"
  | "rate-limit-grace"
  | "max-buffered-bytes"
  | "max-event-args"
  | "max-event-depth"
  | "max-attachments"
  | "max-rooms-per-socket"
  | "max-namespaces-per-client"
  | "max-channel-bytes"
  | "malformed-request"
  | "unauthorized"
  | "join-refused"
  | "app-error";

/** What code that enforces a limit needs of the reporter (so it can be handed a stand-in). */
export type LimitHits = Pick<LimitReporter, "hit">;

/** One log line per limit per window at most: a flood must not flood the log too. */
export const LIMIT_LOG_WINDOW_MS = 10_000;

/**
 * Counts every time a limit bites (`sockfleet_limit_hits_total{limit}`) and logs it, rate-limited
 * per limit: the first hit of a window is logged with its details, the hits suppressed meanwhile are
 * counted in the next line (`suppressed`). One reporter per process, in that process's registry.
 */
export class LimitReporter {
  private readonly hits: Counter<"limit">;
  private readonly windows = new Map<LimitName, { until: number; suppressed: number }>();

  constructor(
    registry: Registry,
    private readonly logger: Logger,
    private readonly windowMs = LIMIT_LOG_WINDOW_MS,
  ) {
    this.hits = new Counter({
      name: "sockfleet_limit_hits_total",
      help: 'Times a limit of README "Security and limits" refused, dropped or disconnected something, by limit (the setting\'s flag name).',
      labelNames: ["limit"],
      registers: [registry],
    });
  }

  /** `limit` bit; `details` (client address, socket id, sizes) go into the log line. */
  hit(limit: LimitName, details: Record<string, unknown> = {}, message = "limit reached"): void {
    this.hits.inc({ limit });
    const now = Date.now();
    const window = this.windows.get(limit);
    if (window && now < window.until) {
      window.suppressed++;
      return;
    }
    const suppressed = window?.suppressed ?? 0;
    this.windows.set(limit, { until: now + this.windowMs, suppressed: 0 });
    this.logger.warn({ limit, ...details, ...(suppressed > 0 ? { suppressed } : {}) }, message);
  }
}
