import http from "node:http";
import type { AddressInfo } from "node:net";
import { requestPath } from "../http/request-path";
import type { Logger } from "../observability/logger";
import type { DrainState } from "../primary/host-drain";

/** What the admin listener serves; wired by the primary. */
export interface AdminRoutes {
  /** The whole host's metrics in Prometheus text format. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Every worker slot serves and the host is not shutting down. */
  ready(): boolean;
  /** The host is shutting down. */
  closing(): boolean;
  /** Starts draining the host (idempotent): see primary/host-drain.ts. */
  drain(): { state: DrainState; spreadMs: number };
  drainState(): DrainState;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/**
 * The admin listener of a host, served by the primary itself (never by a worker, so it answers
 * even while every worker restarts): /metrics for Prometheus, /healthz and /readyz for probes.
 * It binds to loopback unless configured otherwise: metrics describe the fleet and must not be
 * reachable from the internet by default.
 */
export class AdminServer {
  private readonly server: http.Server;

  constructor(
    private readonly routes: AdminRoutes,
    private readonly logger: Logger,
  ) {
    // Never let a request's failure escape: an unhandled rejection here would end the primary.
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err, method: req.method, url: req.url?.slice(0, 200) }, "admin request failed");
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
        else res.destroy();
      });
    });
  }

  /** Listens; rejects with the listen error (port taken, address not local) for the caller to report. */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = requestPath(req.url);
    if (pathname === undefined) return sendJson(res, 400, { error: "bad request target" });
    // The one state-changing route: POST only, so a crawler or a prefetching browser cannot drain a host.
    if (pathname === "/drain") {
      if (req.method !== "POST") return sendJson(res, 405, { error: "method not allowed: POST /drain" });
      req.resume();
      if (this.routes.closing()) return sendJson(res, 409, { error: "the host is shutting down" });
      const { state, spreadMs } = this.routes.drain();
      return sendJson(res, 202, { status: state, spreadMs });
    }
    if (req.method !== "GET" && req.method !== "HEAD") return sendJson(res, 405, { error: "method not allowed" });
    switch (pathname) {
      case "/healthz":
        return sendJson(res, 200, { status: "ok" });
      case "/readyz": {
        const ready = this.routes.ready();
        const drain = this.routes.drainState();
        const status = ready ? "ready" : this.routes.closing() ? "draining" : drain !== "serving" ? drain : "starting";
        return sendJson(res, ready ? 200 : 503, { status });
      }
      case "/metrics":
        try {
          const { contentType, body } = await this.routes.metrics();
          res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
          res.end(body);
        } catch (err) {
          this.logger.error({ err }, "metrics scrape failed");
          sendJson(res, 500, { error: "metrics unavailable" });
        }
        return;
      default:
        return sendJson(res, 404, { error: "not found" });
    }
  }
}
