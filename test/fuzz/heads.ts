import net from "node:net";
import type { Prng } from "./prng";
import type { Target } from "./target";

/**
 * Bad HTTP request heads, written raw over TCP, each generator named for what is wrong with it. The
 * public port's heads pass through the primary's balancer to a worker's HTTP server; the admin
 * port's are served by the primary itself.
 */

const CRLF = "\r\n";
const URL_CHARS = "/[]%:@?#&=.;\\|^`{}<>\"' ~!$()*+,zZ09";
const hostLine = (rng: Prng): string => (rng.chance(0.9) ? `Host: 127.0.0.1${CRLF}` : "");
const end = (head: string): string => head + CRLF;

export const BAD_HEADS: Record<string, (rng: Prng) => Buffer> = {
  /** URLs that `new URL(path, base)` rejects: the known crash of issue 10. */
  "unparsable-url": (rng) => {
    const path = rng.pick(["//[", "//a:99999/", "//%zz", "//[::1", "//a b", "//:0/", "//@", "//a:-1/", "//[fe80::1%zz]/", "//\u00ff/"]);
    const tail = rng.chance(0.3) ? rng.pick(["healthz", "readyz", "metrics", "socket.io/?EIO=4&transport=polling", "index.html"]) : "";
    return Buffer.from(end(`${rng.pick(["GET", "HEAD", "POST"])} ${path}${tail} HTTP/1.1${CRLF}${hostLine(rng)}`), "latin1");
  },
  "random-url": (rng) => Buffer.from(end(`GET /${rng.string(rng.int(0, 300), URL_CHARS)} HTTP/1.1${CRLF}${hostLine(rng)}`), "latin1"),
  "absolute-url": (rng) => Buffer.from(end(`GET ${rng.pick(["http://[", "http://a:99999/", "http://%zz/", "http:////", "*", "ftp://x/", "http://127.0.0.1/healthz", "socket.io"])} HTTP/1.1${CRLF}${hostLine(rng)}`), "latin1"),
  "invalid-method": (rng) => Buffer.from(end(`${rng.pick(["G\u0000T", "get", "FOO", "GET\tX", "", " ", "M".repeat(rng.int(20, 5000)), "PRI", "CONNECT"])} /healthz HTTP/1.1${CRLF}${hostLine(rng)}`), "latin1"),
  "bad-version": (rng) => Buffer.from(end(`GET /healthz ${rng.pick(["HTTP/9.9", "HTTP/1.", "HTTP/0.9", "HTTPS/1.1", "", "HTTP/1.1 extra", "HTTP/01.1"])}${CRLF}${hostLine(rng)}`), "latin1"),
  "header-garbage": (rng) => {
    const bad = rng.pick([
      "NoColonHere",
      "Bad Name: x",
      ": empty-name",
      " Folded: continuation",
      "X-A: b\rX-B: c",
      "Content-Length: -1",
      "Content-Length: 5\r\nContent-Length: 6",
      "Transfer-Encoding: chunked\r\nContent-Length: 3",
      "Transfer-Encoding: gzip, chunked, xyz",
      "Host: [",
      "Host: a:99999",
      "Host: %zz",
      "Origin: \u00ff\u0001",
      "X-Forwarded-For: [, 999.1.1.1, ::ffff:zz",
      "Upgrade: websocket\r\nConnection: Upgrade",
      "Expect: 100-continue",
      "Cookie: " + "a=b; ".repeat(500),
    ]);
    return Buffer.from(end(`GET /${rng.pick(["healthz", "socket.io/?EIO=4&transport=polling", ""])} HTTP/1.1${CRLF}${hostLine(rng)}${bad}${CRLF}`), "latin1");
  },
  "huge-headers": (rng) => {
    const lines = rng.chance(0.5)
      ? Array.from({ length: rng.int(100, 3000) }, (_, i) => `X-H${i}: ${"v".repeat(rng.int(1, 40))}`).join(CRLF)
      : `X-Big: ${"b".repeat(rng.int(16_000, 200_000))}`;
    return Buffer.from(end(`GET /healthz HTTP/1.1${CRLF}${hostLine(rng)}${lines}${CRLF}`), "latin1");
  },
  "truncated-head": (rng) => {
    const full = `GET /socket.io/?EIO=4&transport=polling HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}X-Long: ${"z".repeat(rng.int(0, 100))}${CRLF}${CRLF}`;
    return Buffer.from(full.slice(0, rng.int(0, full.length - 3)), "latin1");
  },
  "nul-bytes": (rng) => {
    const head = Buffer.from(end(`GET /healthz HTTP/1.1${CRLF}${hostLine(rng)}X-A: b${CRLF}`), "latin1");
    for (let i = rng.int(1, 5); i > 0; i--) head[rng.int(0, head.length - 3)] = 0;
    return head;
  },
  "binary-garbage": (rng) => rng.bytes(rng.int(1, 4096)),
  "tls-hello": (rng) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), rng.bytes(rng.int(0, 500))]),
  "bad-chunked-body": (rng) => Buffer.from(`POST ${rng.pick(["/healthz", "/socket.io/?EIO=4&transport=polling&sid=x"])} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}${rng.pick(["zz\r\nabc\r\n", "ffffffffffffffff\r\nx", "5\r\nabc\r\n0\r\n\r\n", "-1\r\n"])}`, "latin1"),
  /** A valid request followed by garbage on the same connection: counted as two heads. */
  "pipelined-garbage": (rng) => Buffer.concat([
    Buffer.from(`GET /healthz HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}${CRLF}`, "latin1"),
    Buffer.from(end(`GET ${rng.pick(["//[", "//%zz", "/" + rng.string(30, URL_CHARS)])} HTTP/1.1${CRLF}${hostLine(rng)}`), "latin1"),
    rng.chance(0.5) ? rng.bytes(rng.int(1, 500)) : Buffer.alloc(0),
  ]),
};

/**
 * One connection carrying one bad head (two for pipelined garbage), written in one to three pieces,
 * then half-closed; waits for the server to close, or drops the connection after a moment.
 */
export async function headConnection(target: Target, sender: string, index: number, rng: Prng, prefix: "head" | "admin-head"): Promise<number> {
  const kinds = Object.keys(BAD_HEADS).filter((k) => target.enabled(`${prefix}/${k}`));
  if (kinds.length === 0) return 0;
  const kind = rng.pick(kinds);
  const head = BAD_HEADS[kind](rng);
  const pieces = rng.int(1, 3);
  const cuts = [0, ...Array.from({ length: pieces - 1 }, () => rng.int(0, head.length)).sort((a, b) => a - b), head.length];
  const port = prefix === "admin-head" ? target.adminPort : target.port;
  const count = kind === "pipelined-garbage" ? 2 : 1;
  let written = false;
  await new Promise<void>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: target.localAddress(index) });
    const timer = setTimeout(() => socket.destroy(), 3_000);
    socket.on("error", () => undefined);
    socket.on("data", () => undefined);
    socket.on("close", () => (clearTimeout(timer), resolve()));
    socket.on("connect", () => {
      for (let i = 0; i < pieces; i++) socket.write(head.subarray(cuts[i], cuts[i + 1]));
      socket.end(() => {
        written = true;
        target.tally.sent(sender, `${prefix}/${kind}`, head.toString("latin1"), count);
      });
    });
  });
  return written ? count : 0;
}
