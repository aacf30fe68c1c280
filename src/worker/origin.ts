import type http from "node:http";
import { ANY_ORIGIN } from "../config/warnings";

type AllowRequest = (req: http.IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void) => void;

/**
 * Same-origin by default: a browser request whose Origin is neither the server's own host nor in
 * the allowlist is refused. CORS alone would not do: WebSocket upgrades are not subject to it, so
 * without this check any site could open a socket with a visitor's cookies.
 * Requests without an Origin header (non-browser clients) are allowed.
 */
export function originGuard(allowlist: readonly string[]): AllowRequest {
  const allowed = new Set(allowlist);
  if (allowed.has(ANY_ORIGIN)) return (_req, callback) => callback(null, true);
  return (req, callback) => {
    const origin = req.headers.origin;
    if (!origin || allowed.has(origin)) return callback(null, true);
    let sameHost = false;
    try {
      sameHost = new URL(origin).host === req.headers.host;
    } catch {
      sameHost = false;
    }
    callback(sameHost ? null : "origin not allowed", sameHost);
  };
}
