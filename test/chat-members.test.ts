import assert from "node:assert/strict";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { connectAcross, record, type Spread } from "./helpers/fleet";
import { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

interface Member {
  id: string;
  name: string | null;
  host: string | null;
  worker: number | null;
}

describe("the chat app's names, members and presence on 2 workers", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  let spread: Spread;
  /** One client on each worker. */
  let a: Client;
  let b: Client;

  before(async () => {
    host = await SockfleetHost.start({ workers: 2 });
  });
  beforeEach(async () => {
    spread = await connectAcross([host.url], 2, 1);
    [a, b] = [...spread.byPid.values()].map((clients) => clients[0]);
  });
  afterEach(() => closeClients(spread.all));
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("acknowledges a name of 1 to 32 characters with true and refuses others with an error", async () => {
    assert.equal(await request(a, "set name", "ann"), true);
    assert.equal(await request(a, "set name", "x".repeat(32)), true);
    for (const bad of ["", "x".repeat(33), 42, null]) {
      const reply = await request<{ error?: string }>(a, "set name", bad);
      assert.match(reply.error ?? "", /name must be a string of 1 to 32 characters/, `for ${JSON.stringify(bad)}`);
    }
  });

  it("signs room messages and object chat messages of a named socket with from, and leaves strings as they are", async () => {
    await request(a, "set name", "ann");
    await request(a, "join", "lobby");
    await request(b, "join", "lobby");
    const rooms = record([b], "room message");
    const chats = record([b], "chat message");
    await request(a, "room message", { room: "lobby", text: "hi" });
    a.emit("chat message", { text: "to all", from: "mallory" });
    a.emit("chat message", "a string");
    await waitUntil("all three", () => rooms.get(b)!.length === 1 && chats.get(b)!.length === 2);
    assert.deepEqual(rooms.get(b), [{ room: "lobby", text: "hi", from: "ann" }]);
    assert.deepEqual(chats.get(b), [{ text: "to all", from: "ann" }, "a string"]);
  });

  it("refuses a chat message whose text is over 2000 characters with an error acknowledgement", async () => {
    const reply = await request<{ error?: string }>(a, "chat message", { text: "t".repeat(2001) });
    assert.match(reply.error ?? "", /text must be a string of at most 2000 characters/);
    assert.equal(await request(a, "chat message", { text: "t".repeat(2000) }), true);
  });

  it("answers members with every member of the room on every worker, with name, host and worker", async () => {
    await request(a, "set name", "ann");
    await request(a, "join", "lobby");
    await request(b, "join", "lobby");
    const members = await request<Member[]>(b, "members", "lobby");
    const byId = new Map(members.map((m) => [m.id, m]));
    assert.equal(members.length, 2);
    assert.equal(byId.get(a.id!)?.name, "ann");
    assert.equal(byId.get(b.id!)?.name, null);
    const workers = new Set(members.map((m) => m.worker));
    assert.equal(workers.size, 2, "one member on each worker");
    assert.ok(members.every((m) => typeof m.host === "string"));
  });

  it("answers members of a room the socket is not in, or an invalid room, with an error", async () => {
    assert.match((await request<{ error: string }>(a, "members", "elsewhere")).error, /join the room first/);
    assert.match((await request<{ error: string }>(a, "members", "")).error, /room must be/);
  });

  it("tells a room's members on every worker of joins, renames, leaves and disconnects with presence", async () => {
    await request(a, "join", "presence-room");
    const seen = record([a], "presence");
    await request(b, "join", "presence-room");
    await request(b, "set name", "bob");
    await request(b, "leave", "presence-room");
    await request(b, "join", "presence-room");
    b.disconnect();
    // a's own join may reach it after recording began (a broadcast waits for its offset): not b's.
    const aboutB = (): unknown[] => seen.get(a)!.filter((p) => !JSON.stringify(p).includes(a.id!));
    await waitUntil("five presence events", () => aboutB().length >= 5);
    const member = { id: (aboutB()[0] as { joined: { id: string } }).joined.id };
    assert.deepEqual(aboutB(), [
      { room: "presence-room", joined: { id: member.id, name: null } },
      { room: "presence-room", joined: { id: member.id, name: "bob" } },
      { room: "presence-room", left: { id: member.id, name: "bob" } },
      { room: "presence-room", joined: { id: member.id, name: "bob" } },
      { room: "presence-room", left: { id: member.id, name: "bob" } },
    ]);
  });

  it("sends no presence for joining a room the socket is already in, nor to sockets outside the room", async () => {
    const outsider = await connect(host.url, { transports: ["websocket"] });
    try {
      await request(a, "join", "quiet-room");
      const seen = record([a, outsider], "presence");
      const fence = record([a], "room message");
      await request(b, "join", "quiet-room");
      await request(b, "join", "quiet-room");
      await request(b, "join", "another-room");
      // Broadcasts reach a client in the order they were sent: the fence comes after any presence.
      await request(b, "room message", { room: "quiet-room", text: "fence" });
      await waitUntil("the fence", () => fence.get(a)!.length === 1);
      const aboutB = seen.get(a)!.filter((p) => !JSON.stringify(p).includes(a.id!));
      assert.deepEqual(aboutB, [{ room: "quiet-room", joined: { id: b.id, name: null } }]);
      assert.deepEqual(seen.get(outsider), []);
    } finally {
      closeClients([outsider]);
    }
  });
});
