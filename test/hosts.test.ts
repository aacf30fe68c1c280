import assert from "node:assert/strict";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { record } from "./helpers/fleet";
import { startEmitter, startHosts, waitForFleet, type RedisMode } from "./helpers/hosts";
import { RedisServer } from "./helpers/redis";
import type { SockfleetHost } from "./helpers/sockfleet";
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
    let redis: RedisServer;
    let hosts: SockfleetHost[];

    before(async () => {
      redis = await RedisServer.start();
      hosts = await startHosts(redis.url, mode, 2, 2, args);
      await waitForFleet(hosts, 4);
    });
    after(async () => {
      for (const host of hosts ?? []) assert.equal(await host.stop(), 0);
      await redis?.stop();
    });

    adapterApiSuite(() => hosts.map((h) => h.url), 4);

    describe("a @socket.io/redis-emitter with default settings", () => {
      let clients: Client[] = [];
      afterEach(() => closeClients(clients.splice(0)));

      it("reaches every client of every host, a room's members only, and a namespace's clients", async () => {
        clients = await Promise.all(hosts.flatMap((h) => [connect(h.url), connect(h.url), connect(`${h.url}/custom`)]));
        const main = clients.filter((_, i) => i % 3 !== 2);
        const custom = clients.filter((_, i) => i % 3 === 2);
        const members = [main[0], main[main.length - 1]];
        for (const member of members) await request(member, "join", "emitted");
        const seen = record(clients, "event");
        const { emitter, close } = await startEmitter(redis.url);
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
        clients = await Promise.all(hosts.map((h) => connect(h.url)));
        for (const client of clients) await request(client, "join", "emitter-source");
        const { emitter, close } = await startEmitter(redis.url);
        try {
          emitter.in("emitter-source").socketsJoin("emitter-target");
          await waitUntil("both members to be in the target room", async () => (await request<unknown[]>(clients[0], "fetch", "emitter-target")).length === 2);
        } finally {
          await close();
        }
      });
    });
  });
}
