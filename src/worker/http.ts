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
  /** Every worker of this host is serving. */
  ready(): boolean;
  /** This worker is shutting down. */
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
    if (url.pathname === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (url.pathname === "/readyz") {
      const ready = this.status.ready() && !this.status.closing();
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
