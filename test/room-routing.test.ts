import assert from "node:assert/strict";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { connectAcross, record, type Spread } from "./helpers/fleet";
import { startEmitter, withFleet } from "./helpers/hosts";
import { scrapeAdmin, total } from "./helpers/metrics";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

/** Joins then broadcasts per run of the join race: bounded, and enough to lose some if it could. */
const RACES = 100;

for (const recovery of ["on", "off"]) {
  describe(`room broadcasts inside a host of 3 workers (--recovery ${recovery})`, function () {
    this.timeout(120_000);
    let host: SockfleetHost;
    let spread: Spread;
    let extra: Client[] = [];

    before(async () => {
      host = await SockfleetHost.start({ workers: 3, app: compiledFixture("adapter-app"), args: ["--recovery", recovery, "--admin-port", "0"] });
    });
    beforeEach(async () => {
      spread = await connectAcross([host.url], 3);
      assert.equal(spread.byPid.size, 3, "every worker serves clients");
    });
    afterEach(() => {
      closeClients(spread.all);
      closeClients(extra);
      extra = [];
    });
    after(async () => {
      assert.equal(await host.stop(), 0);
    });

    /** One client of each of three distinct workers. */
    function threeWorkers(): [Client, Client, Client] {
      const [a, b, c] = [...spread.byPid.values()].map((clients) => clients[0]);
      return [a, b, c];
    }
    const workerOf = (client: Client): string => String(spread.whoami.get(client)!.worker);
    const pidOf = (client: Client): number => spread.whoami.get(client)!.pid;

    it("delivers every broadcast another worker emits right after a first join, however late the join's announcement", async () => {
      const [member, , other] = threeWorkers();
      const seen = record([member], "event");
      const sent: string[] = [];
      for (let i = 0; i < RACES; i++) {
        const payload = `race-${recovery}-${i}`;
        sent.push(payload);
        // A fresh room each time: the first member of it on its worker, as in the sharded adapter's failure.
        await request(member, "join-and-relay", `race-room-${i}`, pidOf(other), payload, 20);
      }
      await waitUntil("the member to get every broadcast", () => seen.get(member)!.length >= RACES, 30_000);
      assert.deepEqual([...seen.get(member)!].sort(), [...sent].sort());
    });

    it("gives a new member the broadcasts emitted after its join in the order they were emitted, room ones caught up among the others", async () => {
      const [member, , other] = threeWorkers();
      const seen = record([member], "event");
      for (let round = 0; round < 10; round++) {
        const prefix = `burst-${recovery}-${round}`;
        await request(member, "join-and-burst", `burst-room-${round}`, pidOf(other), prefix, 40, 20);
        const mine = (): unknown[] => seen.get(member)!.filter((p) => typeof p === "string" && p.startsWith(`${prefix}-`));
        await waitUntil("the member to get the whole burst", () => mine().length >= 40);
        assert.deepEqual(mine(), Array.from({ length: 40 }, (_, i) => `${prefix}-${i}`));
      }
    });

    if (recovery === "on") {
      it("recovers a new member whose worker is SIGKILLed after a join race with every broadcast once, in order", async () => {
        const [, publisher] = threeWorkers();
        const member = await connect(host.url, { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
        extra.push(member);
        const victim = (await request<{ pid: number }>(member, "whoami")).pid;
        const sender = pidOf(publisher) !== victim ? publisher : [...spread.byPid.entries()].find(([pid]) => pid !== victim)![1][0];
        const seen = record([member], "event");
        const burst = (prefix: string): unknown[] => seen.get(member)!.filter((p) => typeof p === "string" && p.startsWith(`${prefix}-`));
        await request(member, "join-and-burst", "kill-room", spread.whoami.get(sender)!.pid, "before", 40, 20);
        await waitUntil("the first burst", () => burst("before").length >= 40);
        const disconnected = nextEvent(member, "disconnect", 5_000);
        const reconnected = nextEvent(member, "connect", 15_000);
        process.kill(victim, "SIGKILL");
        await disconnected;
        await request(sender, "burst", "kill-room", "away", 40);
        await reconnected;
        assert.equal(member.recovered, true);
        await waitUntil("the burst sent while away", () => burst("away").length >= 40);
        await request(sender, "burst", "kill-room", "back", 40);
        await waitUntil("the burst sent once back", () => burst("back").length >= 40);
        for (const prefix of ["before", "away", "back"]) assert.deepEqual(burst(prefix), Array.from({ length: 40 }, (_, i) => `${prefix}-${i}`), prefix);
        // The next test wants all three workers again.
        await waitUntil("the killed worker to be replaced", async () => (await fetch(`${host.url}/readyz`)).status === 200 || undefined, 20_000);
      });
    }

    it("keeps delivering to a worker whose sockets join a room every event-loop turn", async () => {
      const [member, sender] = threeWorkers();
      const events: string[] = [];
      member.on("event", (payload: unknown) => events.push(String(payload)));
      const over = nextEvent(member, "storm-over", 30_000).then(() => events.push("storm-over"));
      await request(member, "join-storm", 3_000);
      await request(sender, "broadcast", "during-storm");
      await over;
      await waitUntil("the broadcast", () => events.includes("during-storm"));
      assert.ok(events.indexOf("during-storm") < events.indexOf("storm-over"), `got ${events.join(", ")}: the broadcast waited for the joins to stop`);
    });

    it("delivers a broadcast to a socket id from another worker right after the socket connected", async () => {
      const [sender] = threeWorkers();
      for (let i = 0; i < 20; i++) {
        const client = await connect(host.url);
        extra.push(client);
        const got = record([client], "event");
        await request(sender, "to-room", client.id, `to-id-${i}`);
        await waitUntil("the socket to get the broadcast to its id", () => got.get(client)!.length === 1);
        assert.deepEqual(got.get(client), [`to-id-${i}`]);
      }
    });

    it("sends a room broadcast only to the workers holding a member", async () => {
      const [member, sender, bystander] = threeWorkers();
      await request(member, "join", "routed-room");
      const metric = "sockfleet_room_broadcasts_total";
      const before = await scrapeAdmin(host);
      const seen = record([member], "event");
      for (let i = 0; i < 20; i++) await request(sender, "to-room", "routed-room", i);
      await waitUntil("the member to get every room broadcast", () => seen.get(member)!.length === 20);
      const after = await scrapeAdmin(host);
      const delta = (client: Client, outcome: string): number =>
        total(after, metric, { worker: workerOf(client), outcome }) - total(before, metric, { worker: workerOf(client), outcome });
      assert.equal(delta(bystander, "routed"), 0, "the worker without members got none");
      assert.equal(delta(bystander, "skipped"), 20);
      assert.equal(delta(member, "routed"), 20);
    });

    it("stops sending a room's broadcasts to a worker once its last member left", async () => {
      const [member, sender] = threeWorkers();
      await request(member, "join", "left-room");
      await request(sender, "sockets-leave", "left-room", null);
      const metric = "sockfleet_room_broadcasts_total";
      const skippedFor = async (): Promise<number> => total(await scrapeAdmin(host), metric, { worker: workerOf(member), outcome: "skipped" });
      // The leave reaches the primary on its own time: broadcasts until one skips the worker.
      const skipped0 = await skippedFor();
      await waitUntil("a broadcast to skip the member's worker", async () => {
        await request(sender, "to-room", "left-room", "after-leave");
        return (await skippedFor()) > skipped0 || undefined;
      });
      const routed = async (): Promise<number> => total(await scrapeAdmin(host), metric, { worker: workerOf(member), outcome: "routed" });
      const routed0 = await routed();
      for (let i = 0; i < 10; i++) await request(sender, "to-room", "left-room", i);
      assert.equal(await routed(), routed0);
    });
  });
}

for (const recovery of ["on", "off"]) {
  describe(`room broadcasts from another host right after a join (2 hosts x 2 workers, bridge mode, --recovery ${recovery})`, function () {
    this.timeout(120_000);
    const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 2, workers: 2, args: ["--recovery", recovery] }, cleanExit: true });

    it("delivers every broadcast a worker of the other host emits right after a first join", async () => {
      const [member, remote] = await Promise.all(fleet.hosts.map((h) => connect(h.url)));
      fleet.clients.push(member, remote);
      const remotePid = (await request<{ pid: number }>(remote, "whoami")).pid;
      const seen = record([member], "event");
      const sent: string[] = [];
      for (let i = 0; i < RACES / 2; i++) {
        const payload = `remote-race-${recovery}-${i}`;
        sent.push(payload);
        await request(member, "join-and-relay", `remote-race-room-${i}`, remotePid, payload, 20);
      }
      await waitUntil("the member to get every broadcast", () => seen.get(member)!.length >= sent.length, 30_000);
      assert.deepEqual([...seen.get(member)!].sort(), [...sent].sort());
    });

    it("delivers a @socket.io/redis-emitter broadcast to a room emitted right after its first join", async () => {
      const member = await connect(fleet.hosts[0].url);
      fleet.clients.push(member);
      const seen = record([member], "event");
      const { emitter, close } = await startEmitter(fleet.redis.url);
      try {
        for (let i = 0; i < 20; i++) {
          await request(member, "join", `emitted-race-${i}`);
          emitter.to(`emitted-race-${i}`).emit("event", i);
        }
        await waitUntil("the member to get every emitted broadcast", () => seen.get(member)!.length >= 20);
      } finally {
        await close();
      }
      assert.deepEqual(seen.get(member), Array.from({ length: 20 }, (_, i) => i));
    });
  });
}
