import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { AUDIENCE, ISSUER, limitHits, mint, SECRET, secretKey } from "./helpers/jwt";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

const key = secretKey(SECRET);

describe("authorisation in apps: join authorisers and the chat app's use of the claims", function () {
  this.timeout(60_000);
  let clients: Client[] = [];
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });

  async function open(host: SockfleetHost, auth: Record<string, unknown>, options: Parameters<typeof connect>[1] = {}): Promise<Client> {
    const socket = await connect(host.url, { auth, ...options });
    clients.push(socket);
    return socket;
  }

  describe("join authorisers (ctx.authorizeJoin)", () => {
    let host: SockfleetHost;
    before(async () => {
      host = await SockfleetHost.start({
        workers: 2,
        app: compiledFixture("auth-app"),
        args: ["--auth-jwt-secret", SECRET, "--auth-jwt-issuer", ISSUER, "--auth-jwt-audience", AUDIENCE, "--admin-port", "0"],
      });
    });
    after(async () => {
      await host?.stop();
    });

    const member = (): Promise<string> => mint({ sub: "m", role: "member" }, { key, issuer: ISSUER, audience: AUDIENCE });
    const vip = (): Promise<string> => mint({ sub: "v", role: "vip" }, { key, issuer: ISSUER, audience: AUDIENCE });

    it("refuses a join an authoriser denies: socket.join rejects with JoinRefusedError, the socket stays out, the refusal is counted", async () => {
      const socket = await open(host, { token: await member() }, { transports: ["websocket"] });
      const before = await limitHits(host, "join-refused");
      assert.deepEqual(await request(socket, "join", "vip-lounge"), { error: "JoinRefusedError", rooms: ["vip-lounge"] });
      assert.deepEqual(await request(socket, "join", "async-no"), { error: "JoinRefusedError", rooms: ["async-no"] });
      assert.deepEqual(await request(socket, "rooms"), [socket.id]);
      await waitUntil("two more join-refused hits", async () => (await limitHits(host, "join-refused")) >= before + 2);
      await host.waitForLog((l) => l.limit === "join-refused" && l.msg === "room join refused");
    });

    it("lets a join through when every authoriser allows it, synchronously or asynchronously", async () => {
      const socket = await open(host, { token: await vip() }, { transports: ["websocket"] });
      assert.equal(await request(socket, "join", "vip-lounge"), true);
      assert.equal(await request(socket, "join", "async-ok"), true);
      assert.equal(await request(socket, "join", "lobby"), true);
      assert.deepEqual(new Set(await request<string[]>(socket, "rooms")), new Set([socket.id, "vip-lounge", "async-ok", "lobby"]));
    });

    it("applies to joins the app's middleware makes before the socket is connected", async () => {
      const socket = await open(host, { token: await member(), joinInMiddleware: "vip-early" }, { transports: ["websocket"] });
      assert.deepEqual(await request(socket, "rooms"), [socket.id]);
      const allowed = await open(host, { token: await vip(), joinInMiddleware: "vip-early" }, { transports: ["websocket"] });
      assert.deepEqual(new Set(await request<string[]>(allowed, "rooms")), new Set([allowed.id, "vip-early"]));
    });

    it("applies to joins server code makes on a socket's behalf from another worker (socketsJoin)", async () => {
      const target = await open(host, { token: await member() }, { transports: ["websocket"] });
      const targetPid = (await whoami(target)).pid;
      let other: Client | undefined;
      for (let i = 0; i < 10 && !other; i++) {
        const candidate = await open(host, { token: await member() }, { transports: ["websocket"] });
        if ((await whoami(candidate)).pid !== targetPid) other = candidate;
      }
      assert.ok(other, "a client on the other worker");
      await request(other, "sockets-join", target.id, "vip-backstage");
      await request(other, "sockets-join", target.id, "open-room");
      // The two requests reach the target's worker in order: once the second has landed, the first was decided.
      await waitUntil("the allowed room joined", async () => (await request<string[]>(target, "rooms")).includes("open-room"));
      assert.deepEqual(new Set(await request<string[]>(target, "rooms")), new Set([target.id, "open-room"]));
    });
  });

  describe("the chat app with JWT authentication", () => {
    let host: SockfleetHost;
    before(async () => {
      host = await SockfleetHost.start({
        workers: 1,
        app: compiledFixture("chat-vip-app"),
        args: ["--auth-jwt-secret", SECRET],
      });
    });
    after(async () => {
      await host?.stop();
    });

    it("relays room messages and object chat messages with the name claim as from, and strings as they are", async () => {
      const ada = await open(host, { token: await mint({ sub: "a", name: "Ada" }, { key }) });
      const anon = await open(host, { token: await mint({ sub: "b" }, { key }) });
      assert.equal(await request(ada, "join", "lobby"), true);
      assert.equal(await request(anon, "join", "lobby"), true);

      const roomMessage = nextEvent<[Record<string, unknown>]>(anon, "room message");
      await request(ada, "room message", { room: "lobby", text: "hi" });
      assert.deepEqual((await roomMessage)[0], { room: "lobby", text: "hi", from: "Ada" });

      const objectMessage = nextEvent<[Record<string, unknown>]>(anon, "chat message");
      ada.emit("chat message", { text: "hello", from: "Mallory" });
      assert.deepEqual((await objectMessage)[0], { text: "hello", from: "Ada" });

      const stringMessage = nextEvent<[unknown]>(anon, "chat message");
      ada.emit("chat message", "plain text");
      assert.equal((await stringMessage)[0], "plain text");

      // Without a name claim, nothing is added.
      const unsigned = nextEvent<[Record<string, unknown>]>(ada, "room message");
      await request(anon, "room message", { room: "lobby", text: "hey" });
      assert.deepEqual((await unsigned)[0], { room: "lobby", text: "hey" });
    });


    it("answers a join the authoriser refuses with { error: \"not allowed\" }", async () => {
      const member = await open(host, { token: await mint({ sub: "m", role: "member" }, { key }) });
      const vip = await open(host, { token: await mint({ sub: "v", role: "vip" }, { key }) });
      assert.deepEqual(await request(member, "join", "vip"), { error: "not allowed" });
      assert.equal(await request(vip, "join", "vip"), true);
      // The refused member is not in the room: a room message reaches the vip only.
      let memberGotRoomMessage = false;
      member.on("room message", () => (memberGotRoomMessage = true));
      const toVip = nextEvent<[Record<string, unknown>]>(vip, "room message");
      await request(vip, "room message", { room: "vip", text: "members only" });
      assert.equal((await toVip)[0].text, "members only");
      // A later broadcast to all reaches the member after the room message would have.
      const later = nextEvent(member, "chat message");
      vip.emit("chat message", "after");
      await later;
      assert.equal(memberGotRoomMessage, false);
    });
  });
});
