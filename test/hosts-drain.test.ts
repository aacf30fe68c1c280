import assert from "node:assert/strict";
import { connect, reconnectTo, request, whoami, type Client } from "./helpers/clients";
import { withFleet } from "./helpers/hosts";
import { range, sequences } from "./helpers/numbered";
import type { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

const CLIENTS = 20;
const DRAIN_MS = 2_000;

function adminUrl(host: SockfleetHost, pathname: string): string {
  const ready = host.logs.find((l) => l.msg === "ready");
  assert.ok(ready?.adminPort, "the host was started with --admin-port");
  return `http://127.0.0.1:${ready.adminPort as number}${pathname}`;
}

/** Scale-in: POST /drain moves a host's clients to the other hosts, sessions and all. */
describe("draining a host", function () {
  this.timeout(90_000);
  const fleet = withFleet({ per: "each", hosts: { mode: "bridge", count: 2, workers: 1, args: ["--admin-port", "0", "--host-drain-time", String(DRAIN_MS)] } });

  it("moves every client of the drained host, WebSocket and long-polling, to the other host with its session recovered and no broadcast lost, and the host stays up, not ready", async () => {
    const [a, b] = fleet.hosts;
    const publisher = await connect(b.url, { transports: ["websocket"] });
    fleet.clients.push(publisher);
    const movers: Client[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      // Half long-polling: their requests keep reaching host A's worker until they are told to go.
      const transports = i % 2 === 0 ? ["websocket"] : ["polling"];
      const client = await connect(a.url, { transports, reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
      fleet.clients.push(client);
      movers.push(client);
      assert.equal((await whoami(client)).host, "host-a");
      reconnectTo(client, () => b.url);
    }
    const ids = movers.map((c) => c.id);
    const seen = movers.map((c) => sequences(c));
    // A client that was sent nothing has no offset to recover from (see PITFALLS).
    await request(publisher, "broadcast", { seq: 1 });
    await waitUntil("the first broadcast everywhere", () => seen.every((s) => s.length === 1));

    const moved = new Set<number>();
    movers.forEach((client, i) => client.io.once("reconnect", () => moved.add(i)));
    const started = Date.now();
    const res = await fetch(adminUrl(a, "/drain"), { method: "POST" });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { status: "draining", spreadMs: DRAIN_MS });
    const readyz = await fetch(adminUrl(a, "/readyz"));
    assert.equal(readyz.status, 503);
    // New sessions are refused at once (the client would retry another host).
    await assert.rejects(connect(a.url, { reconnection: false, transports: ["polling"] }, 5_000), /connect to .* failed/);

    // Broadcasts keep coming while the clients move.
    let seq = 1;
    const publishing = (async () => {
      while (Date.now() - started < DRAIN_MS + 1_000) {
        await request(publisher, "broadcast", { seq: ++seq });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await waitUntil("every client to reconnect", () => moved.size === CLIENTS || undefined, 30_000, 20);
    const movedMs = Date.now() - started;
    await publishing;
    for (const [i, client] of movers.entries()) {
      assert.equal(client.recovered, true, `client ${i} recovered its session`);
      assert.equal(client.id, ids[i]);
      assert.equal((await whoami(client)).host, "host-b");
    }
    await waitUntil("every broadcast on every client", () => seen.every((s) => s.length >= seq), 10_000);
    for (const s of seen) assert.deepEqual(s, range(1, seq));

    const drained = await a.waitForLog((l) => l.msg === "host drained: it serves no clients and stays not ready until stopped", 15_000);
    assert.equal(drained.clients, CLIENTS);
    const after = await fetch(adminUrl(a, "/readyz"));
    assert.equal(after.status, 503);
    assert.deepEqual(await after.json(), { status: "drained" });
    assert.equal(a.child.exitCode, null, "the drained host stays up until stopped");
    // The spread is the setting's: the last client left no sooner than most of it had passed.
    assert.ok(movedMs >= DRAIN_MS * 0.8, `clients moved within ${movedMs} ms`);
    console.log(`      drain of ${CLIENTS} clients (half long-polling), --host-drain-time ${DRAIN_MS}: all on host B after ${movedMs} ms, host drained after ${drained.durationMs as number} ms, ${seq} broadcasts each, none lost`);
    assert.equal(await a.stop(), 0);
    fleet.hosts.shift();
  });

  it("drains on SIGUSR2 too (pm2 sendSignal SIGUSR2): a host without clients is drained at once and stays up, not ready", async () => {
    const [a, b] = fleet.hosts;
    process.kill(a.pid, "SIGUSR2");
    await a.waitForLog((l) => l.msg === "host drained: it serves no clients and stays not ready until stopped", 10_000);
    const readyz = await fetch(adminUrl(a, "/readyz"));
    assert.equal(readyz.status, 503);
    assert.deepEqual(await readyz.json(), { status: "drained" });
    // Asking again answers the state; the other host is untouched.
    const again = await fetch(adminUrl(a, "/drain"), { method: "POST" });
    assert.deepEqual(await again.json(), { status: "drained", spreadMs: DRAIN_MS });
    assert.equal((await fetch(adminUrl(b, "/readyz"))).status, 200);
    assert.equal(a.child.exitCode, null);
  });

  it("answers 405 to GET /drain and leaves the host ready", async () => {
    const res = await fetch(adminUrl(fleet.hosts[0], "/drain"));
    assert.equal(res.status, 405);
    assert.equal((await fetch(adminUrl(fleet.hosts[0], "/readyz"))).status, 200);
  });
});
