import assert from "node:assert/strict";
import { closeClients, whoami } from "./helpers/clients";
import { scrapeAdmin, total, values, type Sample } from "./helpers/metrics";
import { cpuSeconds, mb, rssBytes } from "./helpers/rss";
import { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";
import { CrashWatch } from "./fuzz/crashes";
import { ChatExchange } from "./fuzz/good-clients";
import { runSeed } from "./fuzz/prng";
import { runFuzz, settingsFromEnv } from "./fuzz/run";

/**
 * The short pass runs in CI; `npm run fuzz` runs a long one (FUZZ_PACKETS, FUZZ_SECONDS). FUZZ_SEED
 * replays a run; FUZZ_KINDS / FUZZ_SKIP (comma-separated kinds or lanes, e.g. "ws/bad-json,head")
 * narrow it down to find the input behind a failure.
 */
const seed = runSeed();
// The time is a budget for a loaded machine, not a speed goal: the pass takes about 15 s on an idle 2-core box.
const settings = settingsFromEnv(seed, { packets: 100_000, seconds: 150 });
/** Good clients: half long-polling, half WebSocket, each sending this many numbered messages a second. */
const GOOD_TRANSPORTS: ("polling" | "websocket")[] = ["polling", "websocket", "polling", "websocket", "polling", "websocket"];
const GOOD_RATE = 20;
/** Recovery window of the host under test (default 120 s), shorter than the settle wait below. */
const RECOVERY_WINDOW_MS = 10_000;
/** RSS may stay this far above its baseline once the run is over (heaps do not shrink to where they started). */
const RSS_SLACK = 100 * 1024 * 1024;

describe("fuzz: generated hostile input against a running host", function () {
  this.timeout((settings.seconds + 90) * 1000);

  it(`serves well-behaved clients without a restart, a lost message or lasting memory growth while ${settings.packets} bad packets and request heads arrive (seed ${seed})`, async () => {
    console.log(`      fuzz seed ${seed} (FUZZ_SEED=${seed} replays it), ${settings.packets} packets${settings.only.length ? `, only ${settings.only}` : ""}${settings.skip.length ? `, skipping ${settings.skip}` : ""}`);
    // Hostile sessions that drop are kept for connection-state recovery for the recovery window (by
    // design, bounded); a short window lets the memory check see past that retention within the settle.
    const host = await SockfleetHost.start({ workers: 2, args: ["--admin-port", "0", "--recovery-window", String(RECOVERY_WINDOW_MS)] });
    const adminPort = host.logs.find((l) => l.msg === "ready")!.adminPort as number;
    const watch = new CrashWatch(host);
    const exchange = await ChatExchange.connect(host.url, GOOD_TRANSPORTS);
    try {
      const workerPids = host.workerPids().sort();
      assert.equal(workerPids.length, 2);
      assert.deepEqual([...new Set(exchange.clients.map((c) => c.pid))].sort(), workerPids, "good clients on both workers");
      const pids = [host.pid, ...workerPids];
      const baseline = new Map(pids.map((pid) => [pid, rssBytes(pid)!]));
      const cpuBefore = pids.map((pid) => cpuSeconds(pid) ?? 0);
      const heapBefore = heaps(await scrapeAdmin(host));

      exchange.start(GOOD_RATE);
      const result = await runFuzz(host.port, adminPort, settings, () => watch.crashed()).finally(() => exchange.stop());
      const lanes = Object.entries(result.lanes).map(([lane, l]) => `${lane} ${l.packets} in ${l.sessions} (${(l.ms / l.sessions).toFixed(0)} ms each)`).join(", ");
      console.log(`      ${result.tally.total} packets in ${(result.ms / 1000).toFixed(1)} s (per lane, packets in sessions: ${lanes}); by kind:\n${indent(result.tally.format())}`);
      const cpu = pids.map((pid, i) => `${i === 0 ? "primary" : "worker"} ${((cpuSeconds(pid) ?? NaN) - cpuBefore[i]).toFixed(1)} s`).join(", ");
      console.log(`      good messages sent: ${exchange.totalSent}; CPU used meanwhile: ${cpu}; RSS right after: ${pids.map((pid) => `${pid} ${mb(baseline.get(pid))} -> ${mb(rssBytes(pid))}`).join(", ")}`);
      const warnings = new Map<string, number>();
      for (const l of host.logs) if ((l.level ?? 0) >= 40) warnings.set(String(l.msg), (warnings.get(String(l.msg)) ?? 0) + 1);
      if (warnings.size > 0) console.log(`      host warnings and errors by message: ${JSON.stringify(Object.fromEntries(warnings))}`);
      if (watch.crashed()) console.log(`      CRASHES:\n${watch.report(result.tally)}`);

      assert.equal(watch.crashed(), false, "no process crashed (see CRASHES above)");
      assert.deepEqual(result.gaveUp, [], "every hostile sender could reach the host throughout");
      assert.equal(result.timedOut, false, `the ${settings.packets} packets were sent within ${settings.seconds} s`);
      assert.ok(result.tally.total >= settings.packets, `at least ${settings.packets} packets sent (got ${result.tally.total})`);

      await waitUntil("every good message delivered", () => exchange.problems().length === 0, 15_000).catch((err: Error) => {
        throw new Error(`${err.message}:\n${exchange.problems().slice(0, 12).join("\n")}`);
      });
      assert.deepEqual(exchange.clients.flatMap((c) => c.disconnects.map((r) => `${c.name}: ${r}`)), [], "no good client was disconnected");

      const samples = await scrapeAdmin(host);
      assert.equal(total(samples, "sockfleet_worker_restarts_total", { reason: "crash" }), 0, "no worker restarted");
      assert.deepEqual(host.workerPids().sort(), workerPids, "the same two workers serve");
      for (const client of exchange.clients) assert.equal((await whoami(client.socket)).pid, client.pid, `${client.name} still on its worker`);

      const settled = await waitUntil(
        "RSS of every process back within 100 MB of its baseline",
        () => {
          const now = pids.map((pid) => rssBytes(pid) ?? Infinity);
          return now.every((rss, i) => rss < baseline.get(pids[i])! + RSS_SLACK) ? now : undefined;
        },
        30_000,
        250,
      ).catch(async (err: Error) => {
        // The heap figures tell a leak (heap or external memory still up) from pages not yet returned.
        const rss = pids.map((pid) => `${pid} ${mb(baseline.get(pid))} -> ${mb(rssBytes(pid))}`).join(", ");
        throw new Error(`${err.message}: ${rss}; heap used + external before: ${heapBefore}, now: ${heaps(await scrapeAdmin(host))}`);
      });
      console.log(`      RSS settled: ${pids.map((pid, i) => `${i === 0 ? "primary" : "worker"} ${mb(baseline.get(pid))} -> ${mb(settled[i])}`).join(", ")}`);
      console.log(`      heap used + external before: ${heapBefore}, now: ${heaps(await scrapeAdmin(host))}`);

      assert.equal((await host.fetch("/healthz")).status, 200, "the public port answers /healthz");
      assert.equal((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status, 200, "the admin port answers /healthz");
    } finally {
      closeClients(exchange.clients.map((c) => c.socket));
      // A failed stop is reported, not thrown: it must not hide the assertion that failed first.
      await host.stop().catch((err: Error) => console.log(`      stopping the host: ${err.message}`));
    }
  });
});

/** Heap used and external memory of each process, from the host's Node.js default metrics. */
function heaps(samples: Sample[]): string {
  return values(samples, "nodejs_heap_size_used_bytes")
    .map((s) => `${s.labels.worker} ${mb(s.value)} + ${mb(total(samples, "nodejs_external_memory_bytes", { worker: s.labels.worker }))}`)
    .join(", ");
}

const indent = (text: string): string => text.split("\n").map((l) => `        ${l}`).join("\n");
