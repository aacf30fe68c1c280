import net from "node:net";

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends one inline command to a RESP server and returns its bulk-string (or simple) reply. */
export function respCommand(port: number, args: readonly string[], timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis ${args[0]}: timeout`));
    }, timeoutMs);
    const done = (err: Error | undefined, value?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value ?? "");
    };
    sock.on("error", (err) => done(err));
    sock.on("connect", () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
    });
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      const buf = Buffer.concat(chunks);
      const head = buf.indexOf("\r\n");
      if (head < 0) return;
      const kind = String.fromCharCode(buf[0]!);
      const line = buf.subarray(1, head).toString();
      if (kind === "+" || kind === ":") done(undefined, line);
      else if (kind === "-") done(new Error(line));
      else if (kind === "$") {
        const len = Number(line);
        if (len < 0) done(undefined, "");
        else if (buf.length >= head + 2 + len) done(undefined, buf.subarray(head + 2, head + 2 + len).toString());
      } else done(new Error(`unexpected reply ${kind}`));
    });
  });
}
