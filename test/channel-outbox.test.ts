import assert from "node:assert/strict";
import { connect, request } from "./helpers/clients";
import { withFleet } from "./helpers/hosts";
import { scrapeAdmin, total } from "./helpers/metrics";
import { sequences } from "./helpers/numbered";
import { waitUntil } from "./helpers/wait";

describe("what a host queues for Redis while it is unreachable", function () {
  this.timeout(45_000);
  const fleet = withFleet({ per: "each" });

  // Recovery on: broadcasts delivered alone wait to be appended to the shared log; off: pub/sub
  // messages wait in the bridge's outbox. Both are bounded by --max-channel-bytes as well as by count.
  for (const recovery of ["on", "off"] as const) {
    it(`holds at most --max-channel-bytes of 100 KB broadcasts, counts the ones it drops, and shares the ones it kept, in order, when Redis is back (recovery ${recovery})`, async () => {
      const maxBytes = 1_048_576;
      await fleet.start("bridge", 2, 1, ["--recovery", recovery, "--max-channel-bytes", String(maxBytes), "--admin-port", "0"]);
      const [sender, remote] = (fleet.clients = await Promise.all([connect(fleet.hosts[0].url), connect(fleet.hosts[1].url)]));
      const atRemote = sequences(remote);
      await fleet.redis.stop();
      await fleet.hosts[0].waitForLog((l) => l.msg === "redis tier status" && l.status === "degraded");
      const pad = "x".repeat(100_000);
      const sent = 30; // 3 MB, under the count bound of 1,000
      for (let seq = 1; seq <= sent; seq++) await request(sender, "broadcast", { seq, pad });
      // At most 10 of 100 KB fit in 1 MiB; the primary counts the rest as they reach it.
      const mostKept = Math.floor(maxBytes / 100_000);
      let hits = 0;
      await waitUntil(`${sent - mostKept} drops counted`, async () => {
        hits = total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_limit_hits_total", { limit: "max-channel-bytes" });
        return hits >= sent - mostKept;
      }, 10_000, 200);
      assert.ok(fleet.hosts[0].logs.some((l) => l.limit === "max-channel-bytes"), "the drop is logged");

      await fleet.redis.resume();
      const kept = sent - hits;
      assert.ok(kept >= 5, `${kept} broadcasts kept`);
      if (recovery === "on") {
        // The shared log is read from the stream: the other host gets what was kept, in order.
        await waitUntil(`${kept} queued broadcasts at the other host`, () => atRemote.length >= kept, 15_000);
        assert.deepEqual(atRemote, Array.from({ length: kept }, (_, i) => i + 1));
      } else {
        const flushed = await fleet.hosts[0].waitForLog((l) => l.msg === "redis back: publishing queued messages", 15_000);
        assert.ok((flushed.messages as number) <= kept + 5, `${String(flushed.messages)} messages published from the outbox`);
      }
    });
  }
});
