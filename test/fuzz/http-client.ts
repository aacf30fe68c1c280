import http from "node:http";

export interface Reply {
  status: number;
  body: string;
}

/**
 * One HTTP request on `agent`; resolves with the status and body, or undefined when the connection
 * failed or no answer came within `ms` (hostile requests may be dropped without one).
 */
export function httpRequest(
  agent: http.Agent,
  port: number,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: http.OutgoingHttpHeaders = {},
  ms = 5_000,
): Promise<Reply | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent, headers: { ...headers, ...(body !== undefined ? { "content-length": Buffer.byteLength(body) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", () => finish(undefined));
    });
    const timer = setTimeout(() => (req.destroy(), finish(undefined)), ms);
    let settled = false;
    function finish(reply: Reply | undefined): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(reply);
    }
    req.on("error", () => finish(undefined));
    req.end(body);
  });
}
