/**
 * node-redis 4 (@redis/client 1.x) resets its RESP2 reply decoder when a connection drops, but the
 * reset leaves the state of a half-read array (and of a half-read length) behind. When Redis cuts
 * a subscriber in the middle of a message (client-output-buffer-limit does exactly that), the
 * reconnected connection's first replies are parsed as the rest of the old message: garbage is
 * handed to the subscriber's listener (@socket.io/redis-adapter then throws and the worker dies)
 * and the connection never becomes ready again (found here; see test/hosts-slow.test.ts).
 *
 * This completes the reset, once per process, for the decoder of the installed version; if its
 * shape is not the one known here, it changes nothing and says so. The bridge does not depend on
 * it: it replaces a subscriber that dropped instead of reconnecting it.
 */
interface Resp2Decoder {
  arraysInProcess: unknown[];
  initializeArray: boolean;
  arrayItemType: unknown;
  bulkStringRemainingLength: number | undefined;
  integer: number;
  isNegativeInteger: boolean | undefined;
  reset(): void;
}

let applied: boolean | undefined;

/** Returns whether the decoder's reset is now complete. */
export function completeDecoderReset(): boolean {
  if (applied !== undefined) return applied;
  applied = false;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const decoder = require("@redis/client/dist/lib/client/RESP2/decoder").default as { prototype: Resp2Decoder } | undefined;
    const reset = decoder?.prototype?.reset;
    if (typeof reset !== "function") return false;
    decoder!.prototype.reset = function completeReset(this: Resp2Decoder): void {
      reset.call(this);
      if (!Array.isArray(this.arraysInProcess)) return;
      this.arraysInProcess = [];
      this.initializeArray = false;
      this.arrayItemType = undefined;
      this.bulkStringRemainingLength = undefined;
      this.integer = 0;
      this.isNegativeInteger = undefined;
    };
    applied = true;
  } catch {
    // Another node-redis layout: nothing to complete.
  }
  return applied;
}
