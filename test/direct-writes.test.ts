import assert from "node:assert/strict";
import WebSocket from "ws";
import { wsFrameOf } from "../src/worker/direct-send";
import { BINARY_EVERY, padFor, SIDE_EVERY } from "./fixtures/direct-app";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { closeAllRaw, RawSocketIo } from "./helpers/raw-socketio";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

const COUNT = 600;
// Not a multiple of SIDE_EVERY or BINARY_EVERY: its delivery is the one write of the turn to each socket, often a direct one.
const VOLATILE_AT = 151;

/** What a client saw of the burst, one line per event (offsets left out, their presence kept). */
function record(client: Client, lines: string[], transports?: Set<string>): void {
  client.onAny((event: string, ...args: unknown[]) => {
    if (event === "e") {
      const [n, payload, offset] = args as [number, unknown, unknown];
      const body = Buffer.isBuffer(payload) ? payload.toString("hex") : (payload as { pad: string }).pad.length;
      lines.push(`e ${n} ${body} ${typeof offset}`);
      transports?.add(client.io.engine.transport.name);
    } else if (event === "side") lines.push(`side ${String(args[0])}`);
    else if (event === "v") lines.push(`v ${String(args[0])} ${String(args[1])}`);
  });
}

/**
 * The lines a socket.io-client sees for broadcasts `from`..COUNT: with the offset as last argument
 * (`offsets`, broadcasts sequenced with recovery on), or without it.
 */
function expected(from: number, offsets: boolean): string[] {
  const lines: string[] = [];
  for (let n = from; n <= COUNT; n++) {
    if (n % SIDE_EVERY === 0) lines.push(`side ${n}`);
    const body = n % BINARY_EVERY === 0 ? Buffer.from([n & 255, 0, 255]).toString("hex") : padFor(n).length;
    lines.push(`e ${n} ${body} ${offsets ? "string" : "undefined"}`);
  }
  return lines;
}

interface Seen {
  ws: string[];
  polling: string[];
  upgrader: string[];
  upgraderTransports: Set<string>;
  raw: (string | Buffer)[];
  direct: number;
}

/**
 * One burst on `host`: a WebSocket, a polling and a raw WebSocket client (no offsets) connected
 * before it, a client connecting polling-first while it runs (it upgrades mid-burst), and the
 * publisher asking for it.
 */
async function burst(host: SockfleetHost, remote = false): Promise<Seen> {
  const clients: Client[] = [];
  try {
    const seen: Seen = { ws: [], polling: [], upgrader: [], upgraderTransports: new Set(), raw: [], direct: 0 };
    const ws = await connect(host.url, { transports: ["websocket"] });
    const polling = await connect(host.url, { transports: ["polling"] });
    clients.push(ws, polling);
    const raw = await RawSocketIo.connect(host.port, "/", 10_000, { offsets: false });
    let publisher = await connect(host.url, { transports: ["websocket"] });
    clients.push(publisher);
    if (remote) {
      // On another worker than the WebSocket client: it hears the burst from elsewhere (the others may too).
      const wsPid = (await whoami(ws)).pid;
      for (let i = 0; i < 10 && (await whoami(publisher)).pid === wsPid; i++) clients.push((publisher = await connect(host.url, { transports: ["websocket"] })));
      assert.notEqual((await whoami(publisher)).pid, wsPid, "a publisher on another worker than the WebSocket client");
    }
    record(ws, seen.ws);
    record(polling, seen.polling);
    const directBefore = total(await scrapeAdmin(host), "sockfleet_direct_writes_total");
    const done = request<number>(publisher, "burst", { count: COUNT, perTurn: 3, volatileAt: VOLATILE_AT });
    const upgrader = await connect(host.url);
    clients.push(upgrader);
    record(upgrader, seen.upgrader, seen.upgraderTransports);
    assert.equal(await done, COUNT);
    const last = `e ${COUNT} `;
    const got = (lines: string[]): boolean => lines.some((l) => l.startsWith(last));
    await waitUntil("every client to receive the last broadcast", () => got(seen.ws) && got(seen.polling) && got(seen.upgrader) && raw.events("e").some((a) => a[0] === COUNT), 20_000);
    // The volatile emit sent 50 ms after broadcast VOLATILE_AT (the WebSocket client gets it; see the checks).
    await waitUntil("the later volatile emit on the WebSocket client", () => seen.ws.includes(`v ${VOLATILE_AT} later`), 5_000);
    assert.equal(await request(upgrader, "transport"), "websocket");
    seen.raw = raw.frames.filter((f) => typeof f !== "string" || (/^4[25]/.test(f) && !f.startsWith(`42["v"`)));
    seen.direct = total(await scrapeAdmin(host), "sockfleet_direct_writes_total") - directBefore;
    return seen;
  } finally {
    closeClients(clients);
    closeAllRaw();
  }
}

/** Splits off the volatile emits, whose place among the broadcasts depends on timing. */
function withoutVolatile(lines: string[]): { rest: string[]; volatile: string[] } {
  return { rest: lines.filter((l) => !l.startsWith("v ")), volatile: lines.filter((l) => l.startsWith("v ")) };
}

/**
 * The checks of one configuration: the same burst on a host with direct writes on and one with
 * them off (both started with `args`), `offsets` telling whether the broadcasts are sequenced.
 */
function compareBursts(what: string, args: string[], options: { workers: number; offsets: boolean; remote?: boolean }): void {
  describe(what, function () {
    this.timeout(90_000);
    let on: SockfleetHost;
    let off: SockfleetHost;
    const common = ["--admin-port", "0", "--max-events-per-second", "0", ...args];

    before(async () => {
      [on, off] = await Promise.all([
        SockfleetHost.start({ workers: options.workers, app: compiledFixture("direct-app"), args: common }),
        SockfleetHost.start({ workers: options.workers, app: compiledFixture("direct-app"), args: [...common, "--direct-writes", "off"] }),
      ]);
    });
    after(async () => {
      assert.equal(await on?.stop(), 0);
      assert.equal(await off?.stop(), 0);
    });

    it("delivers the same packets in the same order to WebSocket, polling, raw and upgrading clients as engine.io's path, writing most WebSocket deliveries directly", async () => {
      const fast = await burst(on, options.remote);
      const normal = await burst(off, options.remote);
      for (const [name, seen] of [["direct writes on", fast], ["direct writes off", normal]] as const) {
        assert.deepEqual(withoutVolatile(seen.ws).rest, expected(1, options.offsets), `${name}: the WebSocket client`);
        assert.deepEqual(withoutVolatile(seen.polling).rest, expected(1, options.offsets), `${name}: the polling client`);
        const upgrader = withoutVolatile(seen.upgrader).rest;
        // It hears the burst from some broadcast on ("side" n precedes "e" n in the same tick).
        const first = Number(/^\w+ (\d+)/.exec(upgrader[0] ?? "")?.[1]);
        assert.deepEqual(upgrader, expected(first, options.offsets), `${name}: the client that upgraded during the burst`);
        assert.ok(seen.upgraderTransports.has("websocket"), `${name}: the upgrading client received broadcasts over WebSocket`);
        // Written while earlier sockets of the same delivery loop had a write pending: dropped, on both paths.
        for (const [client, lines] of [["WebSocket", seen.ws], ["polling", seen.polling]] as const) {
          const { volatile } = withoutVolatile(lines);
          assert.ok(!volatile.some((l) => l.endsWith("same-tick")), `${name}: ${client} client got a volatile emit made while a write was pending: ${volatile.join(", ")}`);
        }
        // A polling client is writable only while a request of its waits, so it may miss that one too.
        assert.ok(withoutVolatile(seen.ws).volatile.includes(`v ${VOLATILE_AT} later`), `${name}: the WebSocket client got the later volatile emit`);
      }
      // The raw client (no offsets) sees byte-identical frames either way.
      assert.equal(fast.raw.length, normal.raw.length);
      assert.deepEqual(fast.raw, normal.raw);
      assert.equal(fast.raw.filter(Buffer.isBuffer).length, Math.floor(COUNT / BINARY_EVERY));
      // Most of the 4 x 600 deliveries to WebSocket clients go direct; none with the switch off.
      assert.ok(fast.direct > COUNT, `direct writes with --direct-writes on: ${fast.direct}`);
      assert.equal(normal.direct, 0);
    });
  });
}

describe("direct writes: a broadcast's frame written straight to idle WebSocket clients", function () {
  it("builds the same frame bytes as ws for every length class and leaves binary packets to engine.io", () => {
    for (const text of ["", "2[\"e\",1]", "é".repeat(62), "x".repeat(124), "x".repeat(125), "x".repeat(65_534), "é".repeat(32_768), "x".repeat(70_000)]) {
      const payload = Buffer.from("4" + text);
      const reference = Buffer.concat((WebSocket as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender.frame(payload, { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true }) as unknown as Buffer[]);
      assert.deepEqual(wsFrameOf([text]), reference, `frame of a ${payload.length}-byte message`);
    }
    assert.equal(wsFrameOf(["51-[\"e\",{\"_placeholder\":true,\"num\":0}]", Buffer.from([1])]), undefined);
    assert.equal(wsFrameOf([Buffer.from("x")]), undefined);
  });

  compareBursts("sequenced broadcasts (recovery on), with local and volatile ones among them", [], { workers: 1, offsets: true });
  compareBursts("broadcasts with --recovery off (none sequenced)", ["--recovery", "off"], { workers: 1, offsets: false });
  compareBursts("broadcasts from another worker with --recovery off (remote, no offset)", ["--recovery", "off"], { workers: 2, offsets: false, remote: true });
});
