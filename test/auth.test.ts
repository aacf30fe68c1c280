import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { ADMIN_UI_HASH, AUDIENCE, connectError, ISSUER, keyFiles, limitHits, mint, nowSeconds, SECRET, secretKey, TRANSPORTS, type KeyFiles, type UserReply } from "./helpers/jwt";
import { compiledFixture, runCli, SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

const key = secretKey(SECRET);

describe("JWT authentication", function () {
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
        args: [
          ...["--auth-jwt-secret", SECRET, "--auth-jwt-issuer", ISSUER, "--auth-jwt-audience", AUDIENCE],
          ...["--admin-port", "0", "--admin-ui-user", "admin", "--admin-ui-password-hash", ADMIN_UI_HASH],
        ],
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
      const before = await limitHits(host, "unauthorized");
      for (let i = 0; i < 3; i++) await connectError(host.url, {}, ["websocket"]);
      await waitUntil("three more unauthorized hits", async () => (await limitHits(host, "unauthorized")) >= before + 3);
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

    it("leaves the Admin UI namespace to its own credentials: no JWT needed there, a wrong password still refused", async () => {
      const admin = await connect(`${host.url}/admin`, { auth: { username: "admin", password: "s3cret" }, transports: ["websocket"] });
      clients.push(admin);
      assert.equal(admin.connected, true);
      const err = await connectError(host.url, { username: "admin", password: "guess" }, ["websocket"], "/admin");
      assert.equal(err.message, "invalid credentials");
      assert.equal((await connectError(host.url, { username: "admin", password: "s3cret" }, ["websocket"])).message, "unauthorized");
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
      process.kill(victim, "SIGKILL");
      await reconnected;
      assert.equal(socket.recovered, true);
      assert.notEqual((await whoami(socket)).pid, victim);
      const { user } = await request<UserReply>(socket, "whoami-user");
      assert.equal(user?.sub, "u6");
      assert.equal(user?.name, "first");
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
});
