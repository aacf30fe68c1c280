import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { connectError, keyFiles, mint, nowSeconds, secretKey, TRANSPORTS, type KeyFiles } from "./helpers/jwt";
import { scrapeAdmin, total } from "./helpers/metrics";
import { compiledFixture, runCli, SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

const SECRET = "a-test-secret-of-at-least-thirty-two-characters";
const ISSUER = "https://issuer.test";
const AUDIENCE = "sockfleet-tests";
const key = secretKey(SECRET);

type UserReply = { user?: Record<string, unknown>; userSeenByAppMiddleware?: boolean };

async function hits(host: SockfleetHost, limit: string): Promise<number> {
  return total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit });
}

describe("authentication and authorisation", function () {
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

  describe("JWT with an HS256 secret, issuer and audience", () => {
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

    const refused: Array<{ name: string; reason: string; token: () => Promise<string | undefined> }> = [
      { name: "a handshake without a token", reason: "missing", token: async () => undefined },
      { name: "a token with a bad signature", reason: "bad signature", token: () => mint({ sub: "u1" }, { key: secretKey(SECRET + "-other"), issuer: ISSUER, audience: AUDIENCE }) },
      { name: "an expired token", reason: "expired", token: () => mint({ sub: "u1" }, { key, issuer: ISSUER, audience: AUDIENCE, expires: nowSeconds() - 60 }) },
      { name: "a token for another audience", reason: "wrong audience", token: () => mint({ sub: "u1" }, { key, issuer: ISSUER, audience: "someone-else" }) },
      { name: "a token from another issuer", reason: "wrong issuer", token: () => mint({ sub: "u1" }, { key, issuer: "https://evil.test", audience: AUDIENCE }) },
      { name: "a token without expiry", reason: "no expiry", token: () => mint({ sub: "u1" }, { key, issuer: ISSUER, audience: AUDIENCE, expires: null }) },
      { name: "a token that is not a JWT", reason: "malformed", token: async () => "not.a.jwt" },
    ];
    for (const { name, reason, token } of refused) {
      it(`refuses ${name} with connect_error "unauthorized" (reason "${reason}"), over polling and over WebSocket only`, async () => {
        const auth = { token: await token() };
        for (const { name: transport, transports } of TRANSPORTS) {
          const err = await connectError(host.url, auth, transports);
          assert.equal(err.message, "unauthorized", transport);
          assert.equal(err.data?.reason, reason, transport);
        }
      });
    }

    it("counts refusals as sockfleet_limit_hits_total{limit=\"unauthorized\"} and logs them with the reason", async () => {
      const before = await hits(host, "unauthorized");
      for (let i = 0; i < 3; i++) await connectError(host.url, {}, ["websocket"]);
      await waitUntil("three more unauthorized hits", async () => (await hits(host, "unauthorized")) >= before + 3);
      const line = await host.waitForLog((l) => l.limit === "unauthorized");
      assert.equal(typeof line.reason, "string");
      assert.equal(line.msg, "connection refused: no valid JWT");
    });

    it("accepts a token that expired less than the 5 s clock tolerance ago", async () => {
      const token = await mint({ sub: "u2" }, { key, issuer: ISSUER, audience: AUDIENCE, expires: nowSeconds() - 2 });
      const socket = await open(host, { token }, { transports: ["websocket"] });
      assert.equal((await request<UserReply>(socket, "whoami-user")).user?.sub, "u2");
    });

    it("lets a valid token connect and gives the app its claims in socket.data.user, over polling and over WebSocket only", async () => {
      for (const { name, transports } of TRANSPORTS) {
        const token = await mint({ sub: "u3", name: "Ada", role: "member" }, { key, issuer: ISSUER, audience: AUDIENCE });
        const socket = await open(host, { token }, { transports });
        const { user } = await request<UserReply>(socket, "whoami-user");
        assert.ok(user, name);
        assert.equal(user.sub, "u3", name);
        assert.equal(user.name, "Ada", name);
        assert.equal(user.iss, ISSUER, name);
        assert.equal(user.aud, AUDIENCE, name);
        assert.equal(typeof user.exp, "number", name);
      }
    });

    it("asks for a token on every namespace a client connects to", async () => {
      const err = await connectError(host.url, {}, ["websocket"], "/other");
      assert.equal(err.message, "unauthorized");
      const token = await mint({ sub: "u4" }, { key, issuer: ISSUER, audience: AUDIENCE });
      const socket = await connect(`${host.url}/other`, { auth: { token }, transports: ["websocket"] });
      clients.push(socket);
      assert.equal((await request<UserReply>(socket, "whoami-user")).user?.sub, "u4");
    });

    it("runs the app's own io.use after the JWT check: it sees the claims and can still refuse", async () => {
      const token = await mint({ sub: "u5" }, { key, issuer: ISSUER, audience: AUDIENCE });
      const err = await connectError(host.url, { token, ban: true }, ["websocket"]);
      assert.equal(err.message, "banned by the app");
      // Without a token, sockfleet refuses before the app's middleware is asked.
      assert.equal((await connectError(host.url, { ban: true }, ["websocket"])).message, "unauthorized");
      const socket = await open(host, { token }, { transports: ["websocket"] });
      assert.equal((await request<UserReply>(socket, "whoami-user")).userSeenByAppMiddleware, true);
    });

    it("keeps socket.data.user when a client whose worker died is recovered (middlewares are skipped)", async () => {
      const token = await mint({ sub: "u6", name: "first" }, { key, issuer: ISSUER, audience: AUDIENCE });
      const socket = await open(host, { token }, { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 });
      const victim = (await whoami(socket)).pid;
      // Recovery needs an offset: the client must have received a broadcast.
      const got = nextEvent(socket, "event");
      await request(socket, "broadcast", "offset please");
      await got;
      // Were the middleware run again, the claims would come from this other token.
      socket.auth = { token: await mint({ sub: "u6-other", name: "second" }, { key, issuer: ISSUER, audience: AUDIENCE }) };
      const reconnected = nextEvent(socket, "connect", 20_000);
      const readyLines = (): number => host.logs.filter((l) => l.msg === "worker ready").length;
      const readyBefore = readyLines();
      process.kill(victim, "SIGKILL");
      await reconnected;
      assert.equal(socket.recovered, true);
      assert.notEqual((await whoami(socket)).pid, victim);
      const { user } = await request<UserReply>(socket, "whoami-user");
      assert.equal(user?.sub, "u6");
      assert.equal(user?.name, "first");
      // The other tests of this host want both workers again.
      await waitUntil("the replacement worker", () => readyLines() > readyBefore, 20_000);
    });

    describe("join authorisers (ctx.authorizeJoin)", () => {
      const member = (): Promise<string> => mint({ sub: "m", role: "member" }, { key, issuer: ISSUER, audience: AUDIENCE });
      const vip = (): Promise<string> => mint({ sub: "v", role: "vip" }, { key, issuer: ISSUER, audience: AUDIENCE });

      it("refuses a join an authoriser denies: socket.join rejects with JoinRefusedError, the socket stays out, the refusal is counted", async () => {
        const socket = await open(host, { token: await member() }, { transports: ["websocket"] });
        const before = await hits(host, "join-refused");
        assert.deepEqual(await request(socket, "join", "vip-lounge"), { error: "JoinRefusedError", rooms: ["vip-lounge"] });
        assert.deepEqual(await request(socket, "join", "async-no"), { error: "JoinRefusedError", rooms: ["async-no"] });
        assert.deepEqual(await request(socket, "rooms"), [socket.id]);
        await waitUntil("two more join-refused hits", async () => (await hits(host, "join-refused")) >= before + 2);
        await host.waitForLog((l) => l.limit === "join-refused" && l.msg === "room join refused");
      });

      it("lets a join through when every authoriser allows it, synchronously or asynchronously", async () => {
        const socket = await open(host, { token: await vip() }, { transports: ["websocket"] });
        assert.equal(await request(socket, "join", "vip-lounge"), true);
        assert.equal(await request(socket, "join", "async-ok"), true);
        assert.equal(await request(socket, "join", "lobby"), true);
        assert.deepEqual(new Set(await request<string[]>(socket, "rooms")), new Set([socket.id, "vip-lounge", "async-ok", "lobby"]));
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
  });

  for (const { kind, alg } of [
    { kind: "ec" as const, alg: "ES256" },
    { kind: "rsa" as const, alg: "RS256" },
  ]) {
    describe(`JWT with an ${alg} public key file`, () => {
      let host: SockfleetHost;
      let keys: KeyFiles;
      before(async () => {
        keys = keyFiles(kind);
        host = await SockfleetHost.start({ workers: 1, app: compiledFixture("auth-app"), args: ["--auth-jwt-public-key", keys.publicKeyFile] });
      });
      after(async () => {
        await host?.stop();
        keys?.remove();
      });

      it(`accepts ${alg} tokens signed with the private key and refuses tokens signed with another key or another algorithm`, async () => {
        const token = await mint({ sub: "k1" }, { alg, key: keys.privateKey });
        const socket = await open(host, { token }, { transports: ["websocket"] });
        assert.equal((await request<UserReply>(socket, "whoami-user")).user?.sub, "k1");

        const stranger = keyFiles(kind);
        try {
          const forged = await mint({ sub: "k1" }, { alg, key: stranger.privateKey });
          assert.equal((await connectError(host.url, { token: forged }, ["websocket"])).data?.reason, "bad signature");
        } finally {
          stranger.remove();
        }
        // The classic confusion: HS256 "signed" with the public key as the secret.
        const confused = await mint({ sub: "k1" }, { alg: "HS256", key: fs.readFileSync(keys.publicKeyFile) });
        const err = await connectError(host.url, { token: confused }, ["polling"]);
        assert.equal(err.message, "unauthorized");
        assert.equal(err.data?.reason, "wrong algorithm");
      });

      if (kind === "ec") {
        it("stops a worker that starts after the key file turned bad, with a fatal line naming authJwtPublicKey", async () => {
          const [victim] = host.workerPids();
          fs.writeFileSync(keys.publicKeyFile, "no longer a key\n");
          process.kill(victim, "SIGKILL");
          const line = await host.waitForLog((l) => l.msg === "worker cannot start", 20_000);
          assert.match(String(line.reason), /^invalid setting authJwtPublicKey: .*not a PEM public key/);
        });
      }
    });
  }

  describe("bad JWT settings exit with code 2 and one line naming the setting", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sockfleet-jwt-config-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cases: Array<{ name: string; file: () => string; pattern: RegExp }> = [
      {
        name: "a public key file that is not a PEM",
        file: () => {
          const file = path.join(dir, "not-a-key.pem");
          fs.writeFileSync(file, "hello, I am not a key\n");
          return file;
        },
        pattern: /^sockfleet: invalid setting authJwtPublicKey from --auth-jwt-public-key: .*not a PEM public key/,
      },
      {
        name: "a PEM with a broken body",
        file: () => {
          const file = path.join(dir, "broken.pem");
          fs.writeFileSync(file, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
          return file;
        },
        pattern: /^sockfleet: invalid setting authJwtPublicKey from --auth-jwt-public-key: .*not a valid PEM public key/,
      },
      {
        name: "a private key instead of the public one",
        file: () => {
          const keys = keyFiles("ec");
          const file = path.join(dir, "private.pem");
          fs.writeFileSync(file, keys.privateKeyPem);
          keys.remove();
          return file;
        },
        pattern: /^sockfleet: invalid setting authJwtPublicKey from --auth-jwt-public-key: .*holds a private key/,
      },
      {
        name: "an EC key on a curve other than P-256",
        file: () => {
          const keys = keyFiles("ec", { namedCurve: "P-384" });
          const file = path.join(dir, "p384.pem");
          fs.copyFileSync(keys.publicKeyFile, file);
          keys.remove();
          return file;
        },
        pattern: /^sockfleet: invalid setting authJwtPublicKey from --auth-jwt-public-key: .*EC secp384r1 key; supported are RSA \(RS256\) and EC P-256 \(ES256\)/,
      },
    ];
    for (const { name, file, pattern } of cases) {
      it(`for ${name}`, async () => {
        const { code, stdout, stderr } = await runCli(["--auth-jwt-public-key", file()]);
        assert.equal(code, 2);
        assert.equal(stdout, "");
        const lines = stderr.trim().split("\n");
        assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
        assert.match(lines[0], pattern);
      });
    }
  });

  describe("the chat app with JWT authentication", () => {
    let host: SockfleetHost;
    before(async () => {
      host = await SockfleetHost.start({ workers: 1, app: compiledFixture("chat-vip-app"), args: ["--auth-jwt-secret", SECRET] });
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
