/**
 * Resolves once `work` has, or after `ms` (calling `onTimeout`), whichever comes first. For waits
 * that answer or fail with their connection anyway (a SUBSCRIBE): the bound guards what is held
 * meanwhile (a worker's traffic) against a bug.
 */
export function boundedWait(work: Promise<unknown>, ms: number, onTimeout: () => void): Promise<void> {
  let guard: NodeJS.Timeout | undefined;
  return Promise.race([
    work.then(() => undefined),
    new Promise<void>((resolve) => {
      guard = setTimeout(() => {
        onTimeout();
        resolve();
      }, ms);
      guard.unref();
    }),
  ]).finally(() => clearTimeout(guard));
}
