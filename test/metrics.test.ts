import assert from "node:assert/strict";
import { closeClients, connectMany, request, whoami, type Client } from "./helpers/clients";
import { record } from "./helpers/fleet";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { parse, total, values, type Sample } from "./helpers/metrics";
import { waitUntil } from "./helpers/wait";

describe("metrics on the admin port", function () {
  this.timeout(60_000);
  const WORKERS = 3;
  const CLIENTS = 12;
  let host: SockfleetHost;
  let adminUrl: string;
  let clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: WORKERS, args: ["--admin-port", "0"] });
    const ready = host.logs.find((l) => l.msg === "ready")!;
    assert.equal(ready.adminAddress, "127.0.0.1");
    adminUrl = `http://127.0.0.1:${ready.adminPort as number}`;
  });
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  async function scrape(): Promise<Sample[]> {
    const res = await fetch(`${adminUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    return parse(await res.text());
  }

  it("counts every client of every worker in one scrape, per worker", async () => {
    clients = await connectMany(host.url, CLIENTS, { transports: ["websocket"] });
    const perWorker = new Map<string, number>();
    for (const client of clients) {
      const { worker } = await whoami(client);
      perWorker.set(String(worker), (perWorker.get(String(worker)) ?? 0) + 1);
    }
    const samples = await scrape();
    const connected = values(samples, "sockfleet_connected_clients");
    assert.equal(connected.length, WORKERS, "one series per worker");
    for (const sample of connected) assert.equal(sample.value, perWorker.get(sample.labels.worker) ?? 0, `worker ${sample.labels.worker}`);
    assert.equal(total(samples, "sockfleet_connected_clients"), CLIENTS);
    assert.equal(total(samples, "sockfleet_connections_opened_total"), CLIENTS);
    assert.equal(total(samples, "sockfleet_events_received_total", { event: "whoami" }), CLIENTS);
    assert.equal(total(samples, "sockfleet_balancer_sessions"), CLIENTS);
    assert.equal(total(samples, "sockfleet_workers"), WORKERS);
    assert.equal(total(samples, "sockfleet_host_ready"), 1);
    assert.equal(total(samples, "sockfleet_scrape_missing_workers"), 0);
  });

  it("counts a broadcast once per recipient and the messages the primary relayed between workers", async () => {
    clients = await connectMany(host.url, CLIENTS, { transports: ["websocket"] });
    const before = await scrape();
    const seen = record(clients, "chat message");
    clients[0].emit("chat message", "hello");
    await waitUntil("every client to receive the broadcast", () => [...seen.values()].every((got) => got.length === 1));
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}): number => total(after, name, labels) - total(before, name, labels);
    assert.equal(delta("sockfleet_events_received_total", { event: "chat message" }), 1);
    assert.equal(delta("sockfleet_events_emitted_total", { event: "chat message" }), CLIENTS);
    // The worker that got the event publishes the broadcast once; the primary relays it to the others.
    assert.ok(delta("sockfleet_relay_messages_total", { kind: "broadcast" }) >= 1, "the broadcast crossed to the other workers");
    // Connection-state recovery: one more broadcast in the replay log, every client's session tracked.
    assert.equal(delta("sockfleet_recovery_log_packets"), 1);
    assert.equal(total(after, "sockfleet_recovery_sessions", { state: "connected" }), CLIENTS);
  });

  it("counts closed connections once the clients leave", async () => {
    const opened = total(await scrape(), "sockfleet_connections_opened_total");
    const closedBefore = total(await scrape(), "sockfleet_connections_closed_total");
    clients = await connectMany(host.url, 4, { transports: ["websocket"] });
    closeClients(clients);
    await waitUntil("4 more closed connections", async () => total(await scrape(), "sockfleet_connections_closed_total") - closedBefore === 4);
    const samples = await scrape();
    assert.equal(total(samples, "sockfleet_connections_opened_total"), opened + 4);
    assert.equal(total(samples, "sockfleet_connected_clients"), 0);
  });

  it("reports heap and event-loop lag for every worker and the primary", async () => {
    const samples = await scrape();
    const heapOf = new Set(values(samples, "nodejs_heap_size_used_bytes").map((s) => s.labels.worker));
    const lagOf = new Set(values(samples, "nodejs_eventloop_lag_seconds").map((s) => s.labels.worker));
    assert.equal(heapOf.size, WORKERS + 1);
    assert.ok(heapOf.has("primary"));
    assert.deepEqual([...lagOf].sort(), [...heapOf].sort());
    assert.equal(total(samples, "sockfleet_worker_restarts_total"), 0);
  });

  it("answers /healthz and /readyz on the admin port, and does not serve /metrics on the public port", async () => {
    assert.equal((await fetch(`${adminUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${adminUrl}/readyz`)).status, 200);
    assert.equal((await host.fetch("/metrics")).status, 404);
  });
});

describe("metrics across restarts", function () {
  this.timeout(60_000);

  it("counts crashed and rolled workers, and scrapes while a roll replaces them", async () => {
    const host = await SockfleetHost.start({ workers: 2, args: ["--admin-port", "0", "--drain-time", "200"] });
    try {
      const adminUrl = `http://127.0.0.1:${host.logs.find((l) => l.msg === "ready")!.adminPort as number}`;
      const metrics = async (): Promise<Sample[]> => parse(await (await fetch(`${adminUrl}/metrics`)).text());
      const [client] = await connectMany(host.url, 1, { transports: ["websocket"] });
      const victim = (await request<{ pid: number }>(client, "whoami")).pid;
      process.kill(victim, "SIGKILL");
      await waitUntil("the crash to be counted", async () => total(await metrics(), "sockfleet_worker_restarts_total", { reason: "crash" }) === 1);
      await waitUntil("the replacement", () => host.workerPids().length === 2, 15_000);
      const from = host.logs.length;
      process.kill(host.pid, "SIGHUP");
      // Scrapes during the roll must keep answering, with the draining worker or without it.
      while (!host.logs.slice(from).some((l) => l.msg === "rolling restart complete")) {
        const res = await fetch(`${adminUrl}/metrics`);
        assert.equal(res.status, 200);
        await res.text();
      }
      const samples = await metrics();
      assert.equal(total(samples, "sockfleet_worker_restarts_total", { reason: "roll" }), 2);
      assert.equal(total(samples, "sockfleet_scrape_missing_workers"), 0);
      closeClients([client]);
    } finally {
      await host.stop();
    }
  });
});

for (const recovery of ["on", "off"]) {
  describe(`delivery counts with --recovery ${recovery}`, function () {
    this.timeout(60_000);
    const CLIENTS = 6;
    let host: SockfleetHost;
    let clients: Client[] = [];

    before(async () => {
      host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app"), args: ["--admin-port", "0", "--recovery", recovery] });
      clients = await connectMany(host.url, CLIENTS, { transports: ["websocket"] });
    });
    after(async () => {
      closeClients(clients);
      assert.equal(await host.stop(), 0);
    });

    it("counts a broadcast once per recipient and a direct emit once", async () => {
      const adminUrl = `http://127.0.0.1:${host.logs.find((l) => l.msg === "ready")!.adminPort as number}`;
      const scrape = async (): Promise<Sample[]> => parse(await (await fetch(`${adminUrl}/metrics`)).text());
      const before = await scrape();
      const events = record(clients, "event");
      const echoes = record(clients, "echo");
      await request(clients[0], "broadcast", "to all");
      await request(clients[1], "echo", "to me");
      await waitUntil("every client to receive the broadcast, and the echo", () => [...events.values()].every((got) => got.length === 1) && echoes.get(clients[1])!.length === 1);
      const after = await scrape();
      const delta = (event: string): number => total(after, "sockfleet_events_emitted_total", { event }) - total(before, "sockfleet_events_emitted_total", { event });
      assert.equal(delta("event"), CLIENTS);
      assert.equal(delta("echo"), 1);
    });
  });
}
