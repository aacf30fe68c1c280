import assert from "node:assert/strict";
import { closeClients, connect, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { closeAllRaw, RawSocketIo } from "./helpers/raw-socketio";
import { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

const RATE = 100;
const BURST = 200;
const GRACE = 4_000;

describe("the event rate of one client (max-events-per-second, max-events-burst, rate-limit-grace)", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  const clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({
      workers: 2,
      args: ["--admin-port", "0", "--max-events-per-second", String(RATE), "--max-events-burst", String(BURST), "--rate-limit-grace", String(GRACE)],
    });
  });
  afterEach(() => {
    closeClients(clients.splice(0));
    closeAllRaw();
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("drops a flood at 10x the rate, tells the flooder once, disconnects it after the grace, while a canary's broadcasts keep arriving promptly on both workers", async () => {
    // Receivers on both workers; the flooder shares a worker with one of them.
    for (let i = 0; i < 6; i++) clients.push(await connect(host.url, { transports: ["websocket"] }));
    const pids = new Map<Client, number>();
    for (const c of clients) pids.set(c, (await whoami(c)).pid);
    assert.equal(new Set(pids.values()).size, 2, "receivers on both workers");
    const flooder = await RawSocketIo.connect(host.port);
    const flooderPid = await flooder.whoamiPid();

    const canary = clients[0];
    const latencies: number[] = [];
    let floodSeen = 0;
    let canaryRateLimited = 0;
    canary.on("sockfleet:rate-limited", () => canaryRateLimited++);
    for (const c of clients.slice(1)) {
      c.on("chat message", (payload: { canary?: number }) => {
        if (typeof payload?.canary === "number") latencies.push(Date.now() - payload.canary);
        else if (c === clients[1]) floodSeen++;
      });
    }
    const canaryTimer = setInterval(() => canary.emit("chat message", { canary: Date.now() }), 50);

    // 10x the rate: 10 events every 10 ms, bounded by the grace plus 3 s.
    const started = Date.now();
    let sent = 0;
    const flood = setInterval(() => {
      for (let i = 0; i < 10; i++) flooder.emitRaw("chat message", `{"flood":${sent++}}`);
    }, 10);
    try {
      await flooder.waitClosed(GRACE + 3_000);
    } finally {
      clearInterval(flood);
    }
    const closedAfter = Date.now() - started;
    await waitUntil("the canary's last broadcasts", () => latencies.length >= 5 * 10, 5_000);
    clearInterval(canaryTimer);

    const notices = flooder.events("sockfleet:rate-limited");
    assert.deepEqual(notices, [[{ limit: RATE, burst: BURST, graceMs: GRACE }]], "told once, with the documented payload");
    assert.ok(closedAfter >= GRACE && closedAfter < GRACE + 2_500, `disconnected after the grace, not ${closedAfter} ms`);
    // What got through: the burst plus the rate while it flooded, give or take a second of slack.
    assert.ok(floodSeen <= BURST + (RATE * closedAfter) / 1000 + RATE, `${floodSeen} of ${sent} flood events relayed`);
    assert.ok(floodSeen > 0);
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)];
    const max = sorted[sorted.length - 1];
    console.log(`      flood: ${sent} sent, ${floodSeen} relayed, closed after ${closedAfter} ms; canary latency p50 ${p50} ms, max ${max} ms over ${sorted.length} deliveries`);
    assert.ok(p50 < 100 && max < 1_000, `canary latency p50 ${p50} ms, max ${max} ms`);
    assert.equal(canaryRateLimited, 0, "the canary at 20 events/s is never limited");
    for (const [c, pid] of pids) assert.equal((await whoami(c)).pid, pid, "no worker restarted");
    assert.ok(pids.size > 0 && [...pids.values()].includes(flooderPid));

    const samples = await scrapeAdmin(host);
    assert.ok(total(samples, "sockfleet_limit_hits_total", { limit: "max-events-per-second" }) >= sent - floodSeen - 50);
    assert.equal(total(samples, "sockfleet_limit_hits_total", { limit: "rate-limit-grace" }), 1);
  });

  it("tells a client again after it slowed down and then flooded once more, without disconnecting a client that slowed down in time", async () => {
    const raw = await RawSocketIo.connect(host.port);
    const burst = (n: number): void => {
      for (let i = 0; i < n; i++) raw.emitRaw("chat message", `${i}`);
    };
    burst(BURST * 2);
    await waitUntil("the first notice", () => raw.events("sockfleet:rate-limited").length === 1 || undefined, 5_000);
    // Quiet until the bucket is full again (burst / rate seconds), which ends the episode. This
    // pause is the behaviour under test (the client slowing down), not a synchronisation.
    await new Promise((resolve) => setTimeout(resolve, (BURST / RATE) * 1000 + 300));
    burst(BURST * 2);
    await waitUntil("the second notice", () => raw.events("sockfleet:rate-limited").length === 2 || undefined, 5_000);
    assert.equal(raw.closed, false);
  });
});
