import { compareStreamIds } from "../recovery/offsets";

/** Tokens remembered per other bridge: covers a queue's worth of entries appended twice, and then some. */
const SEEN_TOKENS_LIMIT = 20_000;

/** What to do with another bridge's entry: deliver it, only log it (delivered here before), or skip it. */
export type Verdict = "deliver" | "record" | "skip";

/**
 * Tells a repeat among other bridges' shared-log entries. A bridge appends again what Redis may
 * have lost (after a restart) or what it delivered alone: flagged "r", with the first append's id
 * ("o") when it had one. A host that read the first one must not deliver the second.
 */
export class RepeatFilter {
  /** Per other bridge, the newest id of its broadcasts this host has read (originals' ids for ones appended again). */
  private readonly lastFrom = new Map<string, string>();
  /** Recent tokens read from each other bridge. */
  private readonly seenTokens = new Map<string, Set<number>>();
  /** Where this reader started following the log. */
  private floor?: string;

  follow(id: string): void {
    this.floor = id;
  }

  verdict(bridge: string, id: string, token: number, again: boolean, original: string | undefined): Verdict {
    if (original !== undefined) {
      const seen = this.lastFrom.get(bridge) ?? this.floor;
      if (seen !== undefined && compareStreamIds(original, seen) <= 0) return "record";
      this.lastFrom.set(bridge, original);
      return "deliver";
    }
    if (this.seenBefore(bridge, token, again)) return "skip";
    if (!again) this.lastFrom.set(bridge, id);
    return "deliver";
  }

  /** Only an entry appended again can repeat one read already; each bridge's recent tokens are remembered, a bounded number. */
  private seenBefore(bridge: string, token: number, again: boolean): boolean {
    let tokens = this.seenTokens.get(bridge);
    if (!tokens) this.seenTokens.set(bridge, (tokens = new Set()));
    if (again && tokens.has(token)) return true;
    tokens.add(token);
    if (tokens.size > SEEN_TOKENS_LIMIT) tokens.delete(tokens.values().next().value!);
    return false;
  }
}
