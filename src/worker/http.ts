import fs from "node:fs";
import http from "node:http";
import path from "node:path";

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
export class WorkerHttp {
  private staticDirs: string[] = [];

  constructor(private readonly status: HostStatus) {}

  serveStatic(dir: string): void {
    if (!path.isAbsolute(dir)) throw new Error(`serveStatic needs an absolute directory, got ${dir}`);
    this.staticDirs.push(dir);
  }

  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://localhost");
    // A closing worker sends keep-alive clients (a load balancer's probe) to reconnect, and so to another worker.
    if (this.status.closing()) res.setHeader("connection", "close");
    if (url.pathname === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (url.pathname === "/readyz") {
      // The host's readiness, not this worker's: during a rolling restart a draining worker may still
      // answer a probe on a kept-alive connection, and the host (every slot serving) is still ready.
      // When the host shuts down the primary pushes "not ready" first, so every worker answers 503.
      const ready = this.status.ready();
      return sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : this.status.closing() ? "draining" : "starting" });
    }
    if ((req.method === "GET" || req.method === "HEAD") && this.serveFile(url.pathname, req, res)) return;
    sendJson(res, 404, { error: "not found" });
  };

  private serveFile(pathname: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    let relative: string;
    try {
      relative = decodeURIComponent(pathname);
    } catch {
      return false;
    }
    if (relative.endsWith("/")) relative += "index.html";
    for (const dir of this.staticDirs) {
      const file = path.join(dir, relative);
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
      else fs.createReadStream(file).pipe(res);
      return true;
    }
    return false;
  }
}
