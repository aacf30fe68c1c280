import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { requestPath } from "../http/request-path";
import type { Logger } from "../observability/logger";
import type { RedisTierStatus } from "../tiers/redis/client";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

export interface HostStatus {
  /** Every worker of this host is serving (a slot whose worker is being replaced counts as serving). */
  ready(): boolean;
  /** This worker is shutting down or draining. */
  closing(): boolean;
  /** State of the Redis hosts tier, undefined when it is not configured. */
  redis(): RedisTierStatus | undefined;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(text);
}

/**
 * The worker's own HTTP routes: health probes and the app's static files. Socket.IO requests
 * never reach this handler (Socket.IO intercepts its path first).
 */
/** A directory served under a path prefix ("/" for the app's files). */
interface Mount {
  prefix: string;
  dir: string;
  /** Served for the prefix's index.html instead of the file (see ops/admin-ui.ts). */
  index?: string;
}

export class WorkerHttp {
  private mounts: Mount[] = [];

  constructor(
    private readonly status: HostStatus,
    private readonly logger: Logger,
    /** A request this handler could not make sense of (counted as a limit hit by the caller). */
    private readonly onMalformed: (details: Record<string, unknown>) => void = () => undefined,
  ) {}

  serveStatic(dir: string): void {
    this.mount("/", dir);
  }

  /** Serves the files of an absolute directory under `prefix` (ending in "/"). */
  mount(prefix: string, dir: string, index?: string): void {
    if (!path.isAbsolute(dir)) throw new Error(`serveStatic needs an absolute directory, got ${dir}`);
    if (!prefix.startsWith("/") || !prefix.endsWith("/")) throw new Error(`a mount prefix starts and ends with "/", got ${prefix}`);
    this.mounts.push({ prefix, dir, index });
  }

  /** Never throws: a request is answered, whatever its target, method or headers. */
  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    try {
      this.route(req, res);
    } catch (err) {
      this.logger.error({ err, method: req.method, url: req.url?.slice(0, 200) }, "HTTP handler failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    }
  };

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const pathname = requestPath(req.url);
    if (pathname === undefined) {
      this.onMalformed({ method: req.method, url: req.url?.slice(0, 200) });
      return sendJson(res, 400, { error: "bad request target" });
    }
    // A closing worker sends keep-alive clients (a load balancer's probe) to reconnect, and so to another worker.
    if (this.status.closing()) res.setHeader("connection", "close");
    if (pathname === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (pathname === "/readyz") {
      // The host's readiness, not this worker's: during a rolling restart a draining worker may still
      // answer a probe on a kept-alive connection, and the host (every slot serving) is still ready.
      // When the host shuts down the primary pushes "not ready" first, so every worker answers 503.
      const ready = this.status.ready();
      const body: Record<string, unknown> = { status: ready ? "ready" : this.status.closing() ? "draining" : "starting" };
      // A host cut off from Redis still serves its own clients, so it stays ready (200); the
      // body says the hosts tier is degraded, for dashboards and alerts.
      const redis = this.status.redis();
      if (redis !== undefined) body.redis = redis;
      return sendJson(res, ready ? 200 : 503, body);
    }
    if (req.method === "GET" || req.method === "HEAD") {
      // "/admin" -> "/admin/": the pages under a prefix load their files by relative URLs.
      if (this.mounts.some((m) => m.prefix === `${pathname}/`)) {
        res.writeHead(301, { location: `${pathname}/` });
        return void res.end();
      }
      if (this.serveFile(pathname, req, res)) return;
    }
    sendJson(res, 404, { error: "not found" });
  }

  private serveFile(pathname: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname);
    } catch {
      return false;
    }
    if (relative.endsWith("/")) relative += "index.html";
    // Longest prefix first: "/admin/" before the app's "/".
    for (const { prefix, dir, index } of [...this.mounts].sort((a, b) => b.prefix.length - a.prefix.length)) {
      if (!relative.startsWith(prefix)) continue;
      const inside = relative.slice(prefix.length - 1);
      if (index !== undefined && inside === "/index.html") {
        res.writeHead(200, { "content-type": CONTENT_TYPES[".html"], "content-length": Buffer.byteLength(index) });
        res.end(req.method === "HEAD" ? undefined : index);
        return true;
      }
      const file = path.join(dir, inside);
      // path.join normalises "..", so anything outside dir is a traversal attempt.
      if (!file.startsWith(dir + path.sep)) continue;
      let stat: fs.Stats;
      try {
        stat = fs.statSync(file);
      } catch {
        continue;
      }
      if (!stat.isFile()) continue;
      res.writeHead(200, {
        "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream",
        "content-length": stat.size,
      });
      if (req.method === "HEAD") res.end();
      // A file that vanishes or fails mid-read must end this response, not the process.
      else fs.createReadStream(file).on("error", () => res.destroy()).pipe(res);
      return true;
    }
    return false;
  }
}
