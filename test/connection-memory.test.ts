import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { SockfleetHost, sourceFixture } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";
import type { MemoryReport } from "../src/observability/memory-probe";

const APP = sourceFixture("memory-app.cjs");

interface Disconnect {
  id: string;
  reason?: string;
  removedListenerRan?: boolean;
}

/**
 * What each connection no longer keeps (the upgrade request, per-socket wrappers and closures)
 * and the behaviour those changes must not touch: the request fields apps read, an engine
 * middleware's response close, disconnect detection, once/off listeners and app-error catching.
 */
describe("per-connection memory of a worker", function () {
  this.timeout(60_000);
  let host: SockfleetHost;
  let dir: string;
  const clients: Client[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sf-memory-test-"));
    host = await SockfleetHost.start({
      workers: 1, app: APP, args: ["--admin-port", "0"],
      env: { SOCKFLEET_MEMORY_PROBE: dir, SOCKFLEET_MEMORY_PROBE_SNAPSHOT: "1" },
    });
  });
  afterEach(() => closeClients(clients.splice(0)));
  after(async () => {
    assert.equal(await host.stop(), 0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let seq = 0;
  /** Signals the worker and reads its heap snapshot: counts of objects by constructor and of closures. */
  async function snapshotCounts(): Promise<Map<string, number>> {
    const [pid] = host.workerPids();
    process.kill(pid!, "SIGUSR2");
    seq++;
    const file = path.join(dir, `${pid}.json`);
    const report = await waitUntil("the worker's memory report", () => {
      try {
        const r = JSON.parse(fs.readFileSync(file, "utf8")) as MemoryReport;
        return r.seq === seq ? r : undefined;
      } catch {
        return undefined;
      }
    }, 30_000, 100);
    const snap = JSON.parse(fs.readFileSync(report.snapshot!, "utf8")) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    fs.rmSync(report.snapshot!);
    const fields = snap.snapshot.meta.node_fields;
    const [typeAt, nameAt] = [fields.indexOf("type"), fields.indexOf("name")];
    const types = snap.snapshot.meta.node_types[0];
    const counts = new Map<string, number>();
    for (let i = 0; i < snap.nodes.length; i += fields.length) {
      const type = types[snap.nodes[i + typeAt]!]!;
      const key = type === "closure" ? "(closure)" : type === "object" ? snap.strings[snap.nodes[i + nameAt]!]! : undefined;
      if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  it("keeps no upgrade request, no upgrade response and fewer than 50 closures per WebSocket-only connection", async () => {
    const before = await snapshotCounts();
    for (let i = 0; i < 40; i++) clients.push(await connect(host.url, { transports: ["websocket"] }));
    const after = await snapshotCounts();
    const grew = (key: string): number => ((after.get(key) ?? 0) - (before.get(key) ?? 0)) / 40;
    assert.ok(grew("Socket") >= 2.9, `the snapshot sees the connections (${grew("Socket")} Socket objects each)`);
    assert.equal(grew("IncomingMessage"), 0, "IncomingMessage objects kept per connection");
    assert.equal(grew("WebSocketResponse"), 0, "WebSocketResponse objects kept per connection");
    // Before this change: about 80 (per-socket listener wrappers, bound methods and once() wrappers).
    assert.ok(grew("(closure)") < 50, `${grew("(closure)")} closures per connection`);
  });

  for (const transports of [["websocket"], ["polling", "websocket"]]) {
    it(`gives an engine middleware's WebSocket response its close event and the request's headers and URL (${transports.join(" then ")})`, async () => {
      const observer = await connect(host.url, { transports: ["websocket"] });
      clients.push(observer);
      const count = (await request<unknown[]>(observer, "closed-responses")).length;
      const client = await connect(host.url, { transports, extraHeaders: { "x-test": "mw", "x-watch-close": "1" } });
      await waitUntil("upgraded", () => client.io.engine.transport.name === "websocket" || undefined, 10_000);
      client.disconnect();
      const closed = await waitUntil("the response closed", async () => {
        const all = await request<Array<{ header?: string; url?: string }>>(observer, "closed-responses");
        return all.length > count ? all.slice(count) : undefined;
      }, 10_000, 50);
      assert.equal(closed.length, 1);
      assert.equal(closed[0]!.header, "mw");
      assert.match(closed[0]!.url ?? "", /^\/socket\.io\/\?/);
    });
  }

  it("keeps headers, URL and address in socket.request of a WebSocket-only client", async () => {
    const client = await connect(host.url, { transports: ["websocket"], extraHeaders: { "x-test": "req" } });
    clients.push(client);
    const seen = await request<Record<string, string>>(client, "request");
    assert.equal(seen.header, "req");
    assert.equal(seen.handshakeHeader, "req");
    assert.match(seen.url ?? "", /^\/socket\.io\/\?.*transport=websocket/);
    assert.match(seen.address ?? "", /127\.0\.0\.1$/);
  });

  it("detects a client whose TCP connection closes without a goodbye, and counts it closed", async () => {
    const observer = await connect(host.url, { transports: ["websocket"] });
    clients.push(observer);
    const closedBefore = total(await scrapeAdmin(host), "sockfleet_connections_closed_total");
    const client = await connect(host.url, { transports: ["websocket"], reconnection: false });
    const id = client.id;
    const clientsWith = await request<number>(observer, "clients");
    // The raw TCP socket under socket.io-client's ws: destroyed, as a vanished peer's would be.
    (client.io.engine.transport as unknown as { ws: { _socket: { destroy(): void } } }).ws._socket.destroy();
    const gone = await waitUntil("the server saw the disconnect", async () => {
      const all = await request<Disconnect[]>(observer, "disconnects");
      return all.find((d) => d.id === id);
    }, 20_000, 50);
    assert.equal(gone.reason, "transport close");
    assert.equal(await request<number>(observer, "clients"), clientsWith - 1);
    await waitUntil("closed counted", async () => total(await scrapeAdmin(host), "sockfleet_connections_closed_total") > closedBefore || undefined, 10_000);
    client.close();
  });

  it("runs a once listener once, never a listener removed with off, and the next disconnect handler after one that throws", async () => {
    const observer = await connect(host.url, { transports: ["websocket"] });
    clients.push(observer);
    const client = await connect(host.url, { transports: ["websocket"], query: { throwOnDisconnect: "1" } });
    client.emit("tick");
    client.emit("tick");
    client.emit("ignored");
    assert.equal(await request<number>(client, "ticks"), 1);
    assert.deepEqual(await request(client, "listeners"), { ignored: 0, tickIsApps: true });
    const id = client.id;
    const from = host.logs.length;
    client.disconnect();
    const seen = await waitUntil("the second disconnect handler ran", async () => {
      const all = await request<Disconnect[]>(observer, "disconnects");
      return all.some((d) => d.id === id) ? all.filter((d) => d.id === id) : undefined;
    }, 10_000, 50);
    assert.deepEqual(seen, [{ id, reason: "client namespace disconnect" }], "the removed listener never ran");
    const line = await host.waitForLog((l) => l.limit === "app-error" && l.event === "disconnect", 5_000, from);
    assert.match(JSON.stringify(line.err), /disconnect boom/);
  });
});
