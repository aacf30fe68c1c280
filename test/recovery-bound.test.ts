import assert from "node:assert/strict";
import v8 from "node:v8";
import { RecoveryStore } from "../src/tiers/recovery/store";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { MB, rssOf } from "./helpers/rss";
import { scrapeAdmin, total } from "./helpers/metrics";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";
import { nested } from "./fixtures/flood-app";

describe("the replay log's byte bound", function () {
  this.timeout(60_000);

  it("counts at least the serialized bytes of every retained broadcast, however deep its payload, and keeps them under --recovery-max-bytes", () => {
    const maxBytes = 1_000_000;
    const shapes = [
      { name: "a big string 40 arrays deep", data: (i: number) => ["deep", nested(40, 50_000, i)] },
      { name: "3,000 arrays deep", data: (i: number) => ["deep", nested(3_000, 10, i)] },
      { name: "objects 20 deep with many keys", data: (i: number) => ["deep", nested(20, 10, i), Object.fromEntries(Array.from({ length: 2_000 }, (_, k) => [`k${k}`, [[[[[[[[[[k]]]]]]]]]]]))] },
    ];
    for (const shape of shapes) {
      const store = new RecoveryStore({ windowMs: 60_000, maxPackets: 100_000, maxBytes, maxSessions: 100 });
      const real = v8.serialize(shape.data(0)).length;
      for (let i = 0; i < 120; i++) store.append({ nsp: "/", rooms: [], except: [], data: shape.data(i) as unknown[] });
      const { packets, bytes } = store.stats();
      assert.ok(bytes <= maxBytes, `${shape.name}: ${bytes} bytes reported, bound ${maxBytes}`);
      assert.ok(bytes >= packets * real, `${shape.name}: ${bytes} bytes reported for ${packets} packets of ${real} serialized bytes each`);
      assert.ok(packets < 120, `${shape.name}: the bound evicted some of 120 broadcasts of ${real} bytes`);
    }
  });

  describe("on a host", () => {
    let host: SockfleetHost | undefined;
    let clients: Client[] = [];
    afterEach(async () => {
      closeClients(clients);
      clients = [];
      await host?.stop();
    });

    it("reports log bytes that cover what it retains, and keeps the primary's memory bounded, when the app broadcasts 2 x 300 payloads nested 40 deep", async () => {
      const maxBytes = 2_000_000;
      host = await SockfleetHost.start({ workers: 2, app: compiledFixture("flood-app"), args: ["--recovery-max-bytes", String(maxBytes), "--admin-port", "0"] });
      const client = await connect(host.url, { transports: ["websocket"] });
      clients.push(client);
      // 40 arrays deep around 2,000 small arrays: about 200 KB of heap decoded, 36 KB serialized; 300 of them, twice.
      const depth = 40;
      const width = 2_000;
      const size = v8.serialize(["deep", 0, nested(depth, 0, 0, width)]).length;
      const heap = 200_000;
      const perRound = 25;
      const rounds = 12;
      const rss: number[] = [rssOf(host.pid)];
      for (const half of [0, 1]) {
        for (let round = 0; round < rounds; round++) {
          await request(client, "deep", { depth, bytes: 0, count: perRound, width, room: "nobody" });
        }
        const relayed = (half + 1) * rounds * perRound;
        await waitUntil(`${relayed} broadcasts relayed`, async () => total(await scrapeAdmin(host!), "sockfleet_relay_messages_total", { kind: "broadcast" }) >= relayed, 20_000, 200);
        rss.push(rssOf(host.pid));
      }
      const samples = await scrapeAdmin(host);
      const bytes = total(samples, "sockfleet_recovery_log_bytes");
      const packets = total(samples, "sockfleet_recovery_log_packets");
      const half = (rounds * perRound * heap) / MB;
      console.log(`      replay log: ${packets} packets of ${size} serialized bytes retained, ${(bytes / MB).toFixed(2)} MB reported; primary RSS ${rss.map((r) => (r / MB).toFixed(0)).join(" -> ")} MB after 0, ${half}, ${2 * half} MB (decoded) broadcast`);
      // Garbage makes the first half's growth noisy; a log that retains what it should not keeps growing in the second, by about twice what was broadcast.
      const grown = rss[2] - rss[1];
      assert.ok(bytes <= maxBytes, `reported ${bytes} bytes, bound ${maxBytes}`);
      assert.ok(bytes >= packets * size, `reported ${bytes} bytes for ${packets} packets of ${size} bytes`);
      assert.ok(grown < half * MB, `primary RSS grew by ${(grown / MB).toFixed(1)} MB over the second ${half} MB (decoded)`);
    });
  });
});
