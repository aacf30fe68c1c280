/*
 * The offset formats a client can bring back: a host-local offset (`<epoch>:<seq base 36>`, parsed
 * by the replay log that handed it out), an id of the fleet's shared log (a Redis stream id), or
 * none at all.
 */

/**
 * The offset of a restore request that brought none: replay from where the session began.
 *
 * socket.io-client learns an offset only from a broadcast, so a client that received none before
 * it lost its connection reconnects with its pid alone (see worker/guard/guarded-parser.ts). It
 * received nothing of the log since its session began, so that position splits the log as exactly
 * as an offset would.
 */
export const FROM_SESSION_START = "";

/** Whether `offset` is an id of the shared log (a Redis stream id, "<ms>-<n>"). */
export function isStreamId(offset: string): boolean {
  return /^\d{1,16}-\d{1,16}$/.test(offset);
}

/** Orders two Redis stream ids. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split("-");
  const [bMs, bSeq] = b.split("-");
  return Number(aMs) - Number(bMs) || Number(aSeq) - Number(bSeq);
}
