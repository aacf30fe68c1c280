import assert from "node:assert/strict";
import { closeClients, connect, request, type Client } from "../helpers/clients";
import { connectAcross, record, type Spread } from "../helpers/fleet";
import { waitUntil } from "../helpers/wait";

/**
 * The Socket.IO adapter API, exercised across every worker (and every host) of a fleet running
 * test/fixtures/adapter-app. `urls` returns one URL per host; clients are spread over all of them.
 * The same suite runs for one host (cores tier) and for several hosts (hosts tier).
 */
export function adapterApiSuite(urls: () => string[], expectedWorkers: number): void {
  let spread: Spread;
  let extra: Client[] = [];

  beforeEach(async () => {
    spread = await connectAcross(urls(), expectedWorkers);
    assert.equal(spread.byPid.size, expectedWorkers, "every worker serves clients");
  });
  afterEach(() => {
    closeClients(spread.all);
    closeClients(extra);
    extra = [];
  });

  const first = (): Client => spread.all[0];
  const pidOf = (client: Client): number => spread.whoami.get(client)!.pid;

  /** Emits a broadcast to all and waits until every client has it: later checks can rely on order. */
  async function fence(): Promise<void> {
    const seen = record(spread.all, "event");
    const marker = `fence-${Math.random()}`;
    await request(first(), "broadcast", marker);
    await waitUntil("the fence to reach every client", () => [...seen.values()].every((got) => got.includes(marker)));
    for (const client of spread.all) client.off("event");
  }

  it("broadcasts to all clients of every worker", async () => {
    const seen = record(spread.all, "event");
    await request(first(), "broadcast", { n: 1 });
    await waitUntil("every client to get the broadcast", () => [...seen.values()].every((got) => got.length === 1));
    for (const got of seen.values()) assert.deepEqual(got, [{ n: 1 }]);
  });

  it("broadcasts to a room only its members, whichever worker holds them", async () => {
    const members = [...spread.byPid.values()].map((clients) => clients[0]);
    for (const member of members) await request(member, "join", "room-a");
    const seen = record(spread.all, "event");
    await request(spread.all[spread.all.length - 1], "to-room", "room-a", "hello room");
    await waitUntil("every member to get the room message", () => members.every((m) => seen.get(m)!.length === 1));
    await fence();
    for (const [client, got] of seen) assert.deepEqual(got.filter((x) => x === "hello room"), members.includes(client) ? ["hello room"] : []);
  });

  it("broadcasts to everyone except a room's members", async () => {
    const members = [...spread.byPid.values()].map((clients) => clients[0]);
    for (const member of members) await request(member, "join", "room-x");
    const seen = record(spread.all, "event");
    await request(members[0], "except-room", "room-x", "not for x");
    const others = spread.all.filter((c) => !members.includes(c));
    await waitUntil("every non-member to get it", () => others.every((c) => seen.get(c)!.includes("not for x")));
    await fence();
    for (const member of members) assert.ok(!seen.get(member)!.includes("not for x"));
  });

  it("broadcasts locally to the clients of the emitting worker only", async () => {
    const emitter = first();
    const seen = record(spread.all, "event");
    await request(emitter, "local", "local only");
    const local = spread.all.filter((c) => pidOf(c) === pidOf(emitter));
    await waitUntil("local clients to get it", () => local.every((c) => seen.get(c)!.includes("local only")));
    await fence();
    for (const client of spread.all) {
      assert.equal(seen.get(client)!.includes("local only"), pidOf(client) === pidOf(emitter), `client on ${pidOf(client)}`);
    }
  });

  it("collects one acknowledgement per client of every worker for a broadcast with acks", async () => {
    spread.all.forEach((client, i) => client.on("question", (ack: (answer: unknown) => void) => ack(i)));
    const { error, answers } = await request<{ error: string | null; answers: number[] }>(first(), "ask-all", 3_000);
    assert.equal(error, null);
    assert.deepEqual([...answers].sort((a, b) => a - b), spread.all.map((_, i) => i));
  });

  it("carries binary acknowledgements across workers", async () => {
    spread.all.forEach((client, i) => client.on("question", (ack: (answer: unknown) => void) => ack(Buffer.from([i, 255]))));
    const { error, answers } = await request<{ error: string | null; answers: Uint8Array[] }>(first(), "ask-all", 3_000);
    assert.equal(error, null);
    const decoded = answers.map((a) => [...new Uint8Array(a)]).sort((a, b) => a[0] - b[0]);
    assert.deepEqual(decoded, spread.all.map((_, i) => [i, 255]));
  });

  it("times out a broadcast with acks when a client never answers, keeping the answers it got", async () => {
    const silent = spread.all[spread.all.length - 1];
    spread.all.forEach((client, i) => {
      if (client !== silent) client.on("question", (ack: (answer: unknown) => void) => ack(i));
    });
    const started = Date.now();
    const { error, answers } = await request<{ error: string | null; answers: number[] }>(first(), "ask-all", 500);
    assert.match(error ?? "", /timed out|timeout/i);
    assert.equal(answers.length, spread.all.length - 1);
    assert.ok(Date.now() - started < 4_000);
  });

  it("fetches the sockets of every worker with their rooms and data", async () => {
    const member = spread.all[spread.all.length - 1];
    await request(member, "join", "fetch-room");
    const all = await request<Array<{ id: string; rooms: string[]; data: { worker: number; pid: number } }>>(first(), "fetch", null);
    assert.deepEqual(all.map((s) => s.id).sort(), spread.all.map((c) => c.id).sort());
    const inRoom = await request<Array<{ id: string; rooms: string[] }>>(first(), "fetch", "fetch-room");
    assert.deepEqual(inRoom.map((s) => s.id), [member.id]);
    assert.ok(inRoom[0].rooms.includes("fetch-room"));
    assert.equal(new Set(all.map((s) => s.data.pid)).size, spread.byPid.size);
  });

  it("makes sockets on every worker join and leave a room", async () => {
    await request(first(), "sockets-join", "everyone", null);
    // The Redis adapter applies socketsJoin on its own worker too only when the request comes back
    // from Redis, so even a fetch from the same worker must wait for it.
    await waitUntil("every socket to join", async () => (await request<unknown[]>(first(), "fetch", "everyone")).length === spread.all.length);
    // Issued from another worker than the fetch below, so nothing orders the two: wait for it.
    await request(spread.all[1], "sockets-leave", "everyone", null);
    await waitUntil("every socket to leave", async () => (await request<unknown[]>(first(), "fetch", "everyone")).length === 0);
  });

  it("disconnects a room's members on every worker", async () => {
    const members = [...spread.byPid.values()].map((clients) => clients[0]);
    for (const member of members) await request(member, "join", "doomed");
    const reasons = members.map((m) => new Promise<string>((resolve) => m.once("disconnect", resolve)));
    const bystander = spread.all.find((c) => !members.includes(c))!;
    await request(bystander, "disconnect-room", "doomed");
    assert.deepEqual(await Promise.all(reasons), members.map(() => "io server disconnect"));
    assert.ok(bystander.connected);
  });

  it("counts a room's members on every worker with presence", async () => {
    const members = [...spread.byPid.values()].flatMap((clients) => clients.slice(0, 2));
    for (const member of members) await request(member, "join", "presence-room");
    const asker = spread.all.find((c) => !members.includes(c)) ?? first();
    assert.equal(await request(asker, "presence-count", "presence-room"), members.length);
    assert.equal(await request(asker, "presence-count", "nobody-here"), 0);
  });

  it("pages through a room's members on every worker with presence, each once, by socket id", async () => {
    for (const client of spread.all) await request(client, "join", "presence-page");
    const got: Array<{ id: string; host: string; worker: number; data: { pid: number } }> = [];
    let after: string | undefined;
    for (let page = 0; page < spread.all.length; page++) {
      const reply = await request<{ members: typeof got; next?: string }>(first(), "presence-members", "presence-page", after, 2);
      assert.ok(reply.members.length <= 2);
      got.push(...reply.members);
      after = reply.next;
      if (after === undefined) break;
    }
    assert.equal(after, undefined, "the last page has no next");
    assert.deepEqual(got.map((m) => m.id), spread.all.map((c) => c.id).sort());
    for (const member of got) {
      const client = spread.all.find((c) => c.id === member.id)!;
      const me = spread.whoami.get(client)!;
      assert.deepEqual([member.host, member.worker, member.data.pid], [me.host, me.worker, me.pid]);
    }
    assert.deepEqual(await request(first(), "presence-members", "presence-page", undefined, 5000), { error: "presence limit must be an integer from 1 to 1000, got 5000" });
  });

  it("tells the app of its sockets' room joins and leaves, whichever worker makes them", async () => {
    const member = spread.all[spread.all.length - 1];
    const changes = record([member], "presence-change");
    await request(member, "join", "watched-1");
    await request(first(), "sockets-leave", "watched-1", null);
    await waitUntil("the join and the leave to be told", () => changes.get(member)!.length === 2);
    assert.deepEqual(changes.get(member), [
      { nsp: "/", room: "watched-1", id: member.id, joined: true },
      { nsp: "/", room: "watched-1", id: member.id, joined: false },
    ]);
  });

  it("delivers serverSideEmit to every other worker, not back to the emitter", async () => {
    const seen = record(spread.all, "sse");
    const emitter = first();
    await request(emitter, "server-side-emit", { hi: "workers" });
    const others = spread.all.filter((c) => pidOf(c) !== pidOf(emitter));
    await waitUntil("clients of the other workers to see it", () => others.every((c) => seen.get(c)!.length === 1));
    await fence();
    for (const client of spread.all.filter((c) => pidOf(c) === pidOf(emitter))) assert.deepEqual(seen.get(client), []);
  });

  it("collects one serverSideEmit acknowledgement per other worker", async () => {
    const emitter = first();
    const { error, replies } = await request<{ error: string | null; replies: Array<{ at: { pid: number } }> }>(emitter, "server-side-emit-ack", 42);
    assert.equal(error, null);
    const pids = replies.map((r) => r.at.pid).sort();
    assert.deepEqual(pids, [...spread.byPid.keys()].filter((pid) => pid !== pidOf(emitter)).sort());
  });

  it("broadcasts in a custom namespace across workers", async () => {
    const namespaced = await Promise.all(urls().flatMap((url) => Array.from({ length: expectedWorkers * 2 / urls().length }, () => connect(`${url}/custom`))));
    extra = namespaced;
    const pids = new Set(await Promise.all(namespaced.map((c) => request<{ pid: number }>(c, "whoami").then((me) => me.pid))));
    assert.equal(pids.size, expectedWorkers);
    const seen = record(namespaced, "event");
    const rootSeen = record(spread.all, "event");
    await request(namespaced[0], "broadcast", "ns hello");
    await waitUntil("every namespaced client to get it", () => [...seen.values()].every((got) => got.length === 1));
    await fence();
    for (const got of rootSeen.values()) assert.ok(!got.includes("ns hello"));
  });

  it("delivers binary payloads intact to clients of every worker", async () => {
    const payload = { bytes: Buffer.from([0, 1, 2, 253, 254, 255]), nested: [Buffer.alloc(1024, 7)] };
    const seen = record(spread.all, "event");
    await request(first(), "broadcast", payload);
    await waitUntil("every client to get the binary broadcast", () => [...seen.values()].every((got) => got.length === 1));
    for (const [, got] of seen) {
      const { bytes, nested } = got[0] as { bytes: ArrayBuffer; nested: ArrayBuffer[] };
      assert.deepEqual([...new Uint8Array(bytes)], [0, 1, 2, 253, 254, 255]);
      assert.equal(new Uint8Array(nested[0]).length, 1024);
      assert.ok(new Uint8Array(nested[0]).every((b) => b === 7));
    }
  });
}
