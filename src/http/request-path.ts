/**
 * The path of a request target, without its query, or undefined when the target is not one a
 * server of ours can route. `new URL(target, base)` is not used: it throws on targets like `//[`
 * (read as a host) and would let one malformed request throw out of a handler.
 */
export function requestPath(target: string | undefined): string | undefined {
  if (target === undefined || target.length === 0) return undefined;
  // origin-form, the only form a client sends to an origin server: "/path?query".
  if (target.startsWith("/")) {
    const end = target.search(/[?#]/);
    return end === -1 ? target : target.slice(0, end);
  }
  // absolute-form ("http://host/path"), which HTTP/1.1 servers must accept too.
  try {
    const url = new URL(target);
    return url.protocol === "http:" || url.protocol === "https:" ? url.pathname : undefined;
  } catch {
    return undefined;
  }
}
