import assert from "node:assert/strict";
import { connect, request } from "./helpers/clients";
import { record } from "./helpers/fleet";
import { startEmitter, withFleet, type RedisMode } from "./helpers/hosts";
import { waitUntil } from "./helpers/wait";
import { adapterApiSuite } from "./suites/adapter-api";

// Bridge mode with --recovery off routes room broadcasts to the hosts holding members (tiers/redis/host-routes.ts).
const setups: Array<{ mode: RedisMode; args: string[]; label: string }> = [
  { mode: "bridge", args: [], label: "bridge mode" },
  { mode: "bridge", args: ["--recovery", "off"], label: "bridge mode, --recovery off" },
  { mode: "adapter", args: [], label: "adapter mode" },
];

for (const { mode, args, label } of setups) {
  describe(`the Socket.IO adapter API across 2 hosts x 2 workers over Redis (${label})`, function () {
    this.timeout(30_000);
    const fleet = withFleet({ per: "all", hosts: { mode, count: 2, workers: 2, args }, cleanExit: true });

    adapterApiSuite(() => fleet.hosts.map((h) => h.url), 4);

    describe("a @socket.io/redis-emitter with default settings", () => {
      it("reaches every client of every host, a room's members only, and a namespace's clients", async () => {
        fleet.clients = await Promise.all(fleet.hosts.flatMap((h) => [connect(h.url), connect(h.url), connect(`${h.url}/custom`)]));
        const main = fleet.clients.filter((_, i) => i % 3 !== 2);
        const custom = fleet.clients.filter((_, i) => i % 3 === 2);
        const members = [main[0], main[main.length - 1]];
        for (const member of members) await request(member, "join", "emitted");
        const seen = record(fleet.clients, "event");
        const { emitter, close } = await startEmitter(fleet.redis.url);
        try {
          emitter.emit("event", "to all");
          emitter.to("emitted").emit("event", "to room");
          emitter.of("/custom").emit("event", "to namespace");
          await waitUntil("every client to get what was meant for it", () =>
            main.every((c) => seen.get(c)!.length === (members.includes(c) ? 2 : 1)) && custom.every((c) => seen.get(c)!.length === 1),
          );
        } finally {
          await close();
        }
        for (const client of main) assert.deepEqual(seen.get(client), members.includes(client) ? ["to all", "to room"] : ["to all"]);
        for (const client of custom) assert.deepEqual(seen.get(client), ["to namespace"]);
      });

      it("makes a room's members on every host join another room", async () => {
        fleet.clients = await Promise.all(fleet.hosts.map((h) => connect(h.url)));
        for (const client of fleet.clients) await request(client, "join", "emitter-source");
        const { emitter, close } = await startEmitter(fleet.redis.url);
        try {
          emitter.in("emitter-source").socketsJoin("emitter-target");
          await waitUntil("both members to be in the target room", async () => (await request<unknown[]>(fleet.clients[0], "fetch", "emitter-target")).length === 2);
        } finally {
          await close();
        }
      });
    });
  });
}
