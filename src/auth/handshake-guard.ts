import type { Namespace, Server } from "socket.io";
import type { LimitReporter } from "../observability/limits";
import type { JwtVerifier } from "./jwt-verifier";

/** The connect_error message of a refused handshake, exactly: clients match on it. */
export const UNAUTHORIZED = "unauthorized";

/**
 * Makes every namespace connection present a valid JWT in the handshake's `auth.token`. Socket.IO
 * authenticates per namespace (each CONNECT packet carries its own `auth`), so the check is a
 * middleware on every namespace, not on the Engine.IO handshake: a client that connected to one
 * namespace cannot open another without a token. The claims become `socket.data.user`.
 *
 * Install before the app module runs, so the check is the first middleware of "/" and of every
 * namespace the app creates with `io.of(name)` (the app's own middlewares then see
 * `socket.data.user`). `exempt` namespaces (the Admin UI's, which has its own credentials) are
 * left alone.
 */
export function requireJwt(io: Server, verifier: JwtVerifier, limits: LimitReporter, exempt: (name: string) => boolean): void {
  const guard = (nsp: Namespace): void => {
    if (exempt(nsp.name)) return;
    nsp.use((socket, next) => {
      void verifier.verify((socket.handshake.auth as { token?: unknown } | undefined)?.token).then((outcome) => {
        if (outcome.ok) {
          socket.data.user = outcome.claims;
          return next();
        }
        limits.hit(
          "unauthorized",
          { reason: outcome.reason, ...(outcome.detail ? { detail: outcome.detail } : {}), nsp: nsp.name, address: socket.handshake.address },
          "connection refused: no valid JWT",
        );
        // data.reason lets a client tell "get a fresh token" (expired) from "give up".
        next(Object.assign(new Error(UNAUTHORIZED), { data: { reason: outcome.reason } }));
      });
    });
  };
  io.on("new_namespace", guard);
  guard(io.of("/"));
}
