import assert from "node:assert/strict";
import { connect, reconnectTo, request, whoami } from "./helpers/clients";
import { withFleet } from "./helpers/hosts";
import { numbered, publishNumbered, range } from "./helpers/numbered";
import { killTree } from "./helpers/processes";
import { redisCommand } from "./helpers/redis";
import { nextEvent, waitUntil } from "./helpers/wait";

describe("recovery across hosts of a client that received no broadcast (bridge mode)", function () {
  this.timeout(60_000);
  const fleet = withFleet({ per: "each", hosts: { mode: "bridge", count: 2, workers: 2 } });

  for (const before of [0, 2]) {
    it(`recovers it on another host after its host was SIGKILLed, with everything sent meanwhile, once (${before} broadcasts before it connected)`, async () => {
      const [a, b] = fleet.hosts;
      const publisher = await connect(b.url, { transports: ["websocket"] });
      fleet.clients.push(publisher);
      // Broadcasts the client never sees: the fleet's shared log has moved on before it connects.
      // A watcher on host A tells when host A has delivered them (the publisher's ack only says
      // host B published them), so none can reach the client live after it connects.
      const watcher = await connect(a.url, { transports: ["websocket"] });
      fleet.clients.push(watcher);
      const watched = numbered(watcher);
      for (let n = 0; n < before; n++) await request(publisher, "broadcast", { stream: "earlier", n });
      await waitUntil("host A delivered the earlier broadcasts", () => (watched.get("earlier")?.length ?? 0) >= before || undefined);
      const quiet = await connect(a.url, { transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 200, randomizationFactor: 0 });
      fleet.clients.push(quiet);
      assert.equal((await whoami(quiet)).host, "host-a");
      await request(quiet, "join", "blue");
      reconnectTo(quiet, () => b.url);
      const id = quiet.id!;
      const streams = numbered(quiet);

      // Host A shares its sessions through Redis in batches (every 20 ms), the session first and its
      // join later: wait until the shared copy has the room (msgpack keeps the name as plain bytes).
      const pid = (quiet as unknown as { _pid: string })._pid;
      await waitUntil("the session shared in Redis with its room", async () => {
        const keys = (await redisCommand(fleet.redis.port, "KEYS", "*sockfleet#sessions#*")) as string[];
        for (const key of keys) if (String(await redisCommand(fleet.redis.port, "HGET", key, pid)).includes("blue")) return true;
        return undefined;
      });
      const reconnected = nextEvent(quiet, "connect", 20_000);
      await killTree(fleet.hosts.shift()!.child);
      await publishNumbered(publisher, id, 1, 5);
      await reconnected;
      assert.equal(quiet.recovered, true, "recovered, not a new session");
      assert.equal(quiet.id, id);
      assert.equal((await whoami(quiet)).host, "host-b");
      await publishNumbered(publisher, id, 6, 7);
      await waitUntil("all 7 on every stream", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 7));
      for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 7), stream);
      assert.equal(streams.get("earlier"), undefined);
    });
  }
});
