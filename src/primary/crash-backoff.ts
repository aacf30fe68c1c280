/** Crashes of one slot within this window count towards its backoff and crash-loop limit. */
export const CRASH_WINDOW_MS = 60_000;
/**
 * More crashes than this within the window is a crash loop. Before the host was ever ready that is a
 * start-up failure (a broken app or deploy) and the slot gives up; afterwards crashes may be caused
 * by clients, and a host that stopped respawning would be an outage any client could trigger, so the
 * slot keeps being respawned at the longest backoff.
 */
export const MAX_CRASHES_IN_WINDOW = 10;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;

/** The crashes of one worker slot in the last window: how long to wait before respawning, and whether it loops. */
export class CrashBackoff {
  private times: number[] = [];

  /** Counts a crash at `now`: the crashes in the window with it, whether that is a loop, and the respawn delay. */
  crashed(now = Date.now()): { crashes: number; looping: boolean; delayMs: number } {
    this.times = this.times.filter((t) => now - t < CRASH_WINDOW_MS);
    this.times.push(now);
    const crashes = this.times.length;
    return { crashes, looping: crashes > MAX_CRASHES_IN_WINDOW, delayMs: Math.min(BACKOFF_BASE_MS * 2 ** (crashes - 1), BACKOFF_MAX_MS) };
  }

  /** More crashes than the crash-loop threshold in the last window. */
  looping(now = Date.now()): boolean {
    return this.times.filter((t) => now - t < CRASH_WINDOW_MS).length > MAX_CRASHES_IN_WINDOW;
  }
}
