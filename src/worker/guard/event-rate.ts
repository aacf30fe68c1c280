/** Settings of the per-connection event rate limit (README "Security and limits"). */
export interface RateSettings {
  /** Sustained events per second; 0 = off. */
  perSecond: number;
  /** Bucket size: events a client may send at once after being quiet. */
  burst: number;
  /** A client over the rate this long (ms) is disconnected. */
  graceMs: number;
}

/** What the bucket says about one event. */
export type RateVerdict = "pass" | "drop" | "drop-first" | "disconnect";

/**
 * A token bucket over the events of one client connection, with "episodes": an episode starts
 * at the first dropped event and ends when the bucket has refilled completely (the client sent
 * less than the rate for burst/rate seconds). The client is told once per episode
 * ("drop-first"); a drop more than `graceMs` into an episode means it kept sending faster than
 * the rate all along ("disconnect").
 */
export class EventRate {
  private tokens: number;
  private last: number;
  private episodeStart: number | undefined;

  constructor(
    private readonly settings: RateSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = settings.burst;
    this.last = now();
  }

  take(): RateVerdict {
    const now = this.now();
    const { perSecond, burst, graceMs } = this.settings;
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) * perSecond) / 1000);
    this.last = now;
    if (this.episodeStart !== undefined && this.tokens >= burst) this.episodeStart = undefined;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return "pass";
    }
    if (this.episodeStart === undefined) {
      this.episodeStart = now;
      return "drop-first";
    }
    return now - this.episodeStart >= graceMs ? "disconnect" : "drop";
  }
}
