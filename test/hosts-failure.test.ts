import assert from "node:assert/strict";
import { connect, request, whoami } from "./helpers/clients";
import { startHosts, waitForFleet, withFleet } from "./helpers/hosts";
import { killTree } from "./helpers/processes";
import { sequences } from "./helpers/numbered";
import type { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

/** /readyz, bounded: an unanswered one (seen once in CI, the host then not exiting on SIGTERM) fails here, naming the host. */
async function readiness(host: SockfleetHost): Promise<{ code: number; body: { status: string; redis?: string } }> {
  const res = await fetch(`${host.url}/readyz`, { signal: AbortSignal.timeout(5_000) }).catch((err: unknown) => {
    throw new Error(`${host.url}/readyz unanswered: ${(err as Error).message}`);
  });
  return { code: res.status, body: (await res.json()) as { status: string; redis?: string } };
}

describe("the hosts tier when Redis or a host fails", function () {
  this.timeout(40_000);
  // Registered before withFleet's hooks, so it runs first: when a test fails, what each host logged last.
  afterEach(function () {
    if (this.currentTest?.state !== "failed") return;
    for (const host of fleet.hosts) console.log(`      ${host.url} (pid ${host.pid}) logged last:\n${host.logs.slice(-20).map((l) => `        ${JSON.stringify(l)}`).join("\n")}`);
  });
  const fleet = withFleet({ per: "each" });

  for (const mode of ["bridge", "adapter"] as const) {
  it(`starts without Redis, serves its host with the Redis tier reported degraded, and joins the fleet when Redis appears (${mode} mode)`, async () => {
    await fleet.redis.stop();
    fleet.hosts = await startHosts(fleet.redis.url, mode, 2, 2, ["--redis-connect-timeout", "500"]);
    for (const host of fleet.hosts) {
      const { code, body } = await readiness(host);
      assert.equal(code, 200);
      assert.deepEqual(body, { status: "ready", redis: "degraded" });
    }
    await fleet.redis.resume();
    for (const host of fleet.hosts) {
      await waitUntil(`${host.url} to report Redis connected`, async () => (await readiness(host).catch(() => undefined))?.body.redis === "connected");
    }
    await waitForFleet(fleet.hosts, 4);
  });
  }

  it("keeps delivering inside a host while Redis restarts, resumes across hosts within 2 s, and delivers there what was sent meanwhile, once, in order (bridge mode)", async () => {
    await fleet.start("bridge");
    const [sender, local, remote] = (fleet.clients = await Promise.all([connect(fleet.hosts[0].url), connect(fleet.hosts[0].url), connect(fleet.hosts[1].url)]));
    assert.equal((await whoami(remote)).host, "host-b");
    const atLocal = sequences(local);
    const atRemote = sequences(remote);
    let seq = 0;
    const traffic = setInterval(() => void request(sender, "broadcast", { seq: ++seq }).catch(() => undefined), 20);
    try {
      await waitUntil("cross-host traffic to flow", () => atRemote.length >= 5);
      await fleet.redis.stop();
      const cut = seq;
      await waitUntil("local delivery to go on while Redis is down", () => atLocal.some((s) => s > cut + 25));
      await fleet.redis.resume();
      const back = Date.now();
      const resumedAt = seq;
      await waitUntil("cross-host delivery to resume", () => atRemote.some((s) => s > resumedAt), 2_000, 10);
      const resumedWithin = Date.now() - back;
      assert.ok(resumedWithin <= 2_000, `resumed after ${resumedWithin} ms`);
    } finally {
      clearInterval(traffic);
    }
    const last = seq;
    await waitUntil("the last message to reach both hosts", () => atLocal.includes(last) && atRemote.includes(last));
    assert.deepEqual(atLocal, Array.from({ length: last }, (_, i) => i + 1), "local delivery never stopped nor repeated");
    // Broadcasts made while Redis was down were queued and appended once it was back; those in
    // flight when it went were appended again (readers skip a second copy): all, once, in order.
    assert.deepEqual(atRemote, Array.from({ length: last }, (_, i) => i + 1), "the other host got every broadcast once, in order");
  });

  // With recovery on (the default) broadcasts queue to be appended to the shared log; with it off
  // they queue as plain pub/sub messages. Same bound, same accounting.
  for (const recovery of ["on", "off"] as const) {
  it(`queues at most 1,000 cross-host broadcasts while Redis is down, counts the ones it drops, and shares the rest when it is back (bridge mode, recovery ${recovery})`, async () => {
    // The sender fires 1,500 broadcasts as fast as it can, 100 at a time: no event rate limit.
    await fleet.start("bridge", 2, 2, ["--recovery", recovery, "--max-events-per-second", "0"]);
    const [sender, remote] = (fleet.clients = await Promise.all([connect(fleet.hosts[0].url), connect(fleet.hosts[1].url)]));
    const atRemote = sequences(remote);
    await fleet.redis.stop();
    await fleet.hosts[0].waitForLog((l) => l.msg === "redis tier status" && l.status === "degraded");
    const from = fleet.hosts[0].logs.length;
    for (let batch = 0; batch < 15; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => request(sender, "broadcast", { seq: batch * 100 + i + 1 })));
    }
    await fleet.redis.resume();
    const flushedMsg = recovery === "on" ? "redis back: sharing broadcasts delivered on this host alone" : "redis back: publishing queued messages";
    const flushed = await fleet.hosts[0].waitForLog((l) => l.msg === flushedMsg, 10_000, from);
    assert.equal(flushed.messages, 1_000);
    if (recovery === "on") assert.equal(flushed.dropped, 500);
    else {
      const status = await fleet.hosts[0].waitForLog((l) => l.msg === "redis tier status" && l.status === "connected", 10_000, from);
      assert.ok((status.dropped as number) >= 500, `dropped ${String(status.dropped)}`);
    }
    // With recovery on, the other host reads the queued broadcasts from the stream: it gets all
    // 1,000, late but in order, even if its own connection came back after this host appended them.
    // (Pub/sub, with recovery off, promises no such thing: a host whose subscriber reconnects after
    // the flush misses it, which CI showed.)
    if (recovery === "on") {
      await waitUntil("the queued broadcasts to reach the other host", () => atRemote.length >= 1_000);
      await new Promise((resolve) => setTimeout(resolve, 300)); // a duplicate would arrive right behind
      assert.deepEqual(atRemote, Array.from({ length: 1_000 }, (_, i) => i + 1));
    }
  });
  }

  it("notices a SIGKILLed host within the heartbeat timeout and settles a cross-host fetchSockets waiting on it (bridge mode)", async () => {
    await fleet.start("bridge");
    const [asker, other] = (fleet.clients = await Promise.all([connect(fleet.hosts[0].url), connect(fleet.hosts[0].url), connect(fleet.hosts[1].url)]));
    const dead = fleet.hosts.pop()!;
    await killTree(dead.child);
    const started = Date.now();
    const sockets = (await asker.timeout(10_000).emitWithAck("fetch", null)) as Array<{ id: string }>;
    const settledAfter = Date.now() - started;
    assert.deepEqual(sockets.map((s) => s.id).sort(), [asker.id, other.id].sort());
    // Bridge heartbeat timeout (3 s) plus one check, well before the cluster adapter's 5 s request timeout.
    assert.ok(settledAfter < 4_500, `settled after ${settledAfter} ms`);
    await fleet.hosts[0].waitForLog((l) => l.msg === "host left");
  });
});
