import assert from "node:assert/strict";
import { closeClients, connect, request, type Client } from "./helpers/clients";
import { connectAcross, record, type Spread } from "./helpers/fleet";
import { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

describe("the reference chat app on 2 workers", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  let spread: Spread;
  let extra: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--max-http-buffer-size", "10000"] });
  });
  beforeEach(async () => {
    spread = await connectAcross([host.url], 2);
    assert.equal(spread.byPid.size, 2);
  });
  afterEach(() => {
    closeClients(spread.all);
    closeClients(extra);
    extra = [];
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("relays a chat message with any JSON payload to every client on every worker", async () => {
    const seen = record(spread.all, "chat message");
    const payload = { text: "hi", n: [1, 2, { deep: null }] };
    spread.all[0].emit("chat message", payload);
    await waitUntil("everyone to get the message", () => [...seen.values()].every((got) => got.length === 1));
    for (const got of seen.values()) assert.deepEqual(got, [payload]);
  });

  it("acknowledges join and leave with true and delivers room messages to members only", async () => {
    const [a, b, c] = spread.all;
    assert.equal(await request(a, "join", "lobby"), true);
    assert.equal(await request(b, "join", "lobby"), true);
    const seen = record(spread.all, "room message");
    const chat = record(spread.all, "chat message");
    c.emit("room message", { room: "lobby", text: "hello lobby" });
    await waitUntil("members to get it", () => seen.get(a)!.length === 1 && seen.get(b)!.length === 1);
    // A chat message to everyone, sent after, proves the room message was not also sent to the others.
    c.emit("chat message", "fence");
    await waitUntil("the fence", () => [...chat.values()].every((got) => got.length === 1));
    assert.deepEqual(seen.get(a), [{ room: "lobby", text: "hello lobby" }]);
    assert.deepEqual(seen.get(c), []);
    assert.deepEqual(seen.get(spread.all[3]), []);

    assert.equal(await request(b, "leave", "lobby"), true);
    c.emit("room message", { room: "lobby", text: "again" });
    await waitUntil("a to get the second", () => seen.get(a)!.length === 2);
    c.emit("chat message", "fence 2");
    await waitUntil("the second fence", () => [...chat.values()].every((got) => got.length === 2));
    assert.equal(seen.get(b)!.length, 1);
  });

  it("answers whoami with the host, worker and pid that serve the client", async () => {
    const me = spread.whoami.get(spread.all[0])!;
    assert.equal(typeof me.host, "string");
    assert.equal(typeof me.worker, "number");
    assert.ok(host.workerPids().includes(me.pid));
  });

  it("rejects invalid room names with an error acknowledgement", async () => {
    const client = spread.all[0];
    for (const room of ["", "x".repeat(65), 42, null, { room: "a" }]) {
      const reply = await request<{ error?: string }>(client, "join", room);
      assert.match(reply.error ?? "", /room must be a string of 1 to 64 characters/, `for ${JSON.stringify(room)}`);
    }
    assert.match((await request<{ error: string }>(client, "leave", "y".repeat(65))).error, /room must be/);
    assert.equal(await request(client, "join", "x".repeat(64)), true);
  });

  it("rejects invalid room messages with an error acknowledgement and delivers nothing", async () => {
    const [client, member] = spread.all;
    await request(member, "join", "r");
    const seen = record([member], "room message");
    const bad = [null, "text", { room: "r" }, { room: "r", text: 5 }, { room: "r", text: "t".repeat(2001) }, { room: "", text: "t" }];
    for (const message of bad) {
      const reply = await request<{ error?: string }>(client, "room message", message);
      assert.ok(reply.error, `expected an error for ${JSON.stringify(message).slice(0, 40)}`);
    }
    assert.equal(await request(client, "room message", { room: "r", text: "t".repeat(2000) }), true);
    await waitUntil("the valid one", () => seen.get(member)!.length === 1);
    assert.equal((seen.get(member)![0] as { text: string }).text.length, 2000);
  });

  it("ignores join, leave and whoami without an acknowledgement instead of crashing", async () => {
    const client = spread.all[0];
    client.emit("join", "no-ack");
    client.emit("whoami");
    client.emit("room message", "garbage");
    client.emit("leave");
    assert.ok((await request<{ pid: number }>(client, "whoami")).pid > 0);
    assert.equal(host.workerPids().length, 2);
  });

  it("drops a client whose message exceeds maxHttpBufferSize without disturbing the others", async () => {
    const victim = await connect(host.url, { transports: ["websocket"], reconnection: false });
    extra.push(victim);
    const victimPid = (await request<{ pid: number }>(victim, "whoami")).pid;
    const gone = new Promise<string>((resolve) => victim.once("disconnect", resolve));
    victim.emit("chat message", "x".repeat(20_000));
    assert.equal(await gone, "transport close");
    const seen = record(spread.all, "chat message");
    spread.all[0].emit("chat message", "still here");
    await waitUntil("the others to keep chatting", () => [...seen.values()].every((got) => got.length === 1));
    assert.ok(host.workerPids().includes(victimPid), "the worker survived");
    for (const got of seen.values()) assert.deepEqual(got, ["still here"]);
  });

  it("closes a client that sends a malformed packet without disturbing the others", async () => {
    const victim = await connect(host.url, { transports: ["websocket"], reconnection: false });
    extra.push(victim);
    const gone = new Promise<string>((resolve) => victim.once("disconnect", resolve));
    // Engine.IO "message" packet with a payload that is not a valid Socket.IO packet.
    (victim.io.engine as unknown as { write(data: string): void }).write("9{not json");
    assert.ok(["transport close", "io server disconnect", "parse error"].includes(await gone));
    const seen = record(spread.all, "chat message");
    spread.all[1].emit("chat message", "unaffected");
    await waitUntil("the others to keep chatting", () => [...seen.values()].every((got) => got.length === 1));
    assert.equal(host.workerPids().length, 2);
  });

  it("serves the chat page and the Socket.IO client bundle", async () => {
    const page = await host.fetch("/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await page.text(), /socket\.io\/socket\.io\.js/);
    const bundle = await host.fetch("/socket.io/socket.io.js");
    assert.equal(bundle.status, 200);
    assert.ok((await bundle.text()).length > 10_000);
    assert.equal((await host.fetch("/../package.json")).status, 404);
    assert.equal((await host.fetch("/%2e%2e/%2e%2e/package.json")).status, 404);
  });

  it("refuses a browser handshake from a foreign origin and accepts its own", async () => {
    const foreign = await fetch(`${host.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: "https://evil.example" } });
    assert.equal(foreign.status, 403);
    const own = await fetch(`${host.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: host.url } });
    assert.equal(own.status, 200);
  });
});
