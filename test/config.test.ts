import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config/load";
import { unsafeSettings } from "../src/config/warnings";
import { runCli, SockfleetHost } from "./helpers/sockfleet";

describe("configuration", () => {
  describe("the CLI refuses bad settings with exit code 2 and one line naming the setting", () => {
    const cases: Array<{ name: string; args: string[]; env?: NodeJS.ProcessEnv; pattern: RegExp }> = [
      { name: "a non-numeric --workers", args: ["--workers", "abc"], pattern: /^sockfleet: invalid setting workers from --workers: .*"abc"/ },
      { name: "a --port above 65535", args: ["--port", "70000"], pattern: /^sockfleet: invalid setting port from --port: .*70000/ },
      { name: "an unknown flag", args: ["--wrokers", "2"], pattern: /^sockfleet: argument error: .*--wrokers/ },
      { name: "an unreadable app module", args: ["--app", "/nonexistent/app.js"], pattern: /^sockfleet: invalid setting app from --app: cannot read module \/nonexistent\/app\.js/ },
      { name: "a bad WORKERS variable", args: [], env: { WORKERS: "0" }, pattern: /^sockfleet: invalid setting workers from environment variable WORKERS:/ },
      { name: "a bad REDIS_URL", args: [], env: { REDIS_URL: "not a url" }, pattern: /^sockfleet: invalid setting redisUrl from environment variable REDIS_URL:/ },
      { name: "a --trusted-proxies entry that is not a CIDR range", args: ["--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"], pattern: /^sockfleet: invalid setting trustedProxies from --trusted-proxies: must be an IP address or CIDR range/ },
      { name: "a negative MAX_EVENTS_PER_SECOND", args: [], env: { MAX_EVENTS_PER_SECOND: "-1" }, pattern: /^sockfleet: invalid setting maxEventsPerSecond from environment variable MAX_EVENTS_PER_SECOND:/ },
      { name: "a short --auth-jwt-secret", args: ["--auth-jwt-secret", "short"], pattern: /^sockfleet: invalid setting authJwtSecret from --auth-jwt-secret: must be at least 32 characters/ },
      { name: "an unreadable --auth-jwt-public-key", args: ["--auth-jwt-public-key", "/nonexistent/key.pem"], pattern: /^sockfleet: invalid setting authJwtPublicKey from --auth-jwt-public-key: cannot read \/nonexistent\/key\.pem/ },
      { name: "an unknown --app-errors policy", args: ["--app-errors", "ignore"], pattern: /^sockfleet: invalid setting appErrors from --app-errors:/ },
      { name: "a --host-drain-time above an hour", args: ["--host-drain-time", "3600001"], pattern: /^sockfleet: invalid setting hostDrainTime from --host-drain-time:/ },
    ];
    for (const { name, args, env, pattern } of cases) {
      it(`for ${name}`, async () => {
        const { code, stderr, stdout } = await runCli(args, env);
        assert.equal(code, 2);
        assert.equal(stdout, "");
        const lines = stderr.trim().split("\n");
        assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
        assert.match(lines[0], pattern);
      });
    }
  });

  it("lets flags win over environment variables, and the environment over the config file", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sockfleet-")), "config.json");
    fs.writeFileSync(file, JSON.stringify({ port: 3999, workers: 5, hostId: "from-file" }));
    const result = loadConfig(["--port", "4001", "--config", file], { PORT: "4000", WORKERS: "3" });
    assert.ok(!result.help);
    assert.equal(result.config.port, 4001);
    assert.equal(result.config.workers, 3);
    assert.equal(result.config.hostId, "from-file");
  });

  it("names the file and the key of an unknown setting in a config file", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sockfleet-")), "config.json");
    fs.writeFileSync(file, JSON.stringify({ wokers: 2 }));
    assert.throws(() => loadConfig(["--config", file], {}), (err: Error) => err.message.includes("wokers") && err.message.includes(file));
  });

  it("splits CORS_ORIGINS on commas and accepts repeated --cors-origin flags", () => {
    const fromEnv = loadConfig([], { CORS_ORIGINS: "https://a.example, https://b.example" });
    const fromFlags = loadConfig(["--cors-origin", "https://a.example", "--cors-origin", "https://c.example"], {});
    assert.ok(!fromEnv.help && !fromFlags.help);
    assert.deepEqual(fromEnv.config.corsOrigins, ["https://a.example", "https://b.example"]);
    assert.deepEqual(fromFlags.config.corsOrigins, ["https://a.example", "https://c.example"]);
  });

  it("defaults the Redis tier to bridge mode with the emitter's channel prefix and a 5 s connect timeout", () => {
    const result = loadConfig(["--redis", "rediss://:secret@redis.example:6380"], {});
    assert.ok(!result.help);
    assert.equal(result.config.redisMode, "bridge");
    assert.equal(result.config.redisPrefix, "socket.io");
    assert.equal(result.config.redisConnectTimeout, 5_000);
    assert.equal(result.config.redisSharded, false);
  });

  it("reads the Redis settings from REDIS_MODE, REDIS_PREFIX, REDIS_CONNECT_TIMEOUT and REDIS_SHARDED", () => {
    const env = { REDIS_URL: "redis://127.0.0.1:7000", REDIS_MODE: "adapter", REDIS_PREFIX: "staging", REDIS_CONNECT_TIMEOUT: "800", REDIS_SHARDED: "true" };
    const result = loadConfig([], env);
    assert.ok(!result.help);
    assert.deepEqual(
      [result.config.redisMode, result.config.redisPrefix, result.config.redisConnectTimeout, result.config.redisSharded],
      ["adapter", "staging", 800, true],
    );
  });

  it("refuses an unknown --redis-mode, and --redis-sharded without --redis, naming the setting", () => {
    assert.throws(() => loadConfig(["--redis-mode", "mesh"], {}), /^ConfigError: invalid setting redisMode from --redis-mode:/);
    assert.throws(() => loadConfig(["--redis-sharded", "true"], {}), /^ConfigError: invalid setting redisSharded from --redis-sharded: redisSharded \(Redis Cluster\) needs redisUrl/);
  });

  it("refuses a --redis-prefix holding a brace on Redis Cluster, naming the setting, and accepts it on one node", () => {
    assert.throws(() => loadConfig(["--redis", "redis://127.0.0.1:7000", "--redis-sharded", "true", "--redis-prefix", "app{1}"], {}), /^ConfigError: invalid setting redisPrefix from --redis-prefix: redisPrefix must not hold \{ or \} on Redis Cluster/);
    const oneNode = loadConfig(["--redis", "redis://127.0.0.1:7000", "--redis-prefix", "app{1}"], {});
    assert.ok(!oneNode.help);
    assert.equal(oneNode.config.redisPrefix, "app{1}");
  });

  it("accepts --redis-sharded in bridge mode (the default), with recovery on or off", () => {
    for (const recovery of ["on", "off"]) {
      const result = loadConfig(["--redis", "redis://127.0.0.1:7000", "--redis-sharded", "true", "--recovery", recovery], {});
      assert.ok(!result.help);
      assert.deepEqual([result.config.redisMode, result.config.redisSharded], ["bridge", true]);
    }
  });

  it("splits --trusted-proxies on commas", () => {
    const result = loadConfig(["--trusted-proxies", "10.0.0.0/8, ::1", "--trusted-proxies", "192.168.1.7"], {});
    assert.ok(!result.help);
    assert.deepEqual(result.config.trustedProxies, ["10.0.0.0/8", "::1", "192.168.1.7"]);
  });

  describe("unsafe settings are named at start", () => {
    /** Each warning as "setting: message", as the start-up log line words it. */
    function warnings(args: string[]): string[] {
      const result = loadConfig(args, {});
      assert.ok(!result.help);
      return unsafeSettings(result.config).map(({ setting, message }) => `${setting}: ${message}`);
    }

    it("warns of a Redis password sent in clear text to another machine, not over TLS or to loopback", () => {
      assert.match(warnings(["--redis", "redis://:secret@10.1.2.3:6379"]).join(), /^redisUrl: .*clear text to 10\.1\.2\.3/);
      assert.deepEqual(warnings(["--redis", "rediss://:secret@10.1.2.3:6379"]), []);
      assert.deepEqual(warnings(["--redis", "redis://:secret@127.0.0.1:6379"]), []);
      assert.deepEqual(warnings(["--redis", "redis://10.1.2.3:6379"]), []);
    });

    it("warns of --cors-origin *", () => {
      assert.match(warnings(["--cors-origin", "*"]).join(), /^corsOrigins: \* lets any web site/);
      assert.deepEqual(warnings(["--cors-origin", "https://app.example"]), []);
    });

    it("warns of an admin listener off loopback without Admin UI credentials", () => {
      assert.match(warnings(["--admin-port", "9100", "--admin-host", "0.0.0.0"]).join(), /^adminHost: /);
      assert.deepEqual(warnings(["--admin-port", "9100"]), []);
      assert.deepEqual(warnings(["--admin-port", "9100", "--admin-host", "::1"]), []);
    });

    it("logs each unsafe setting as a warning line when the host starts, and honours --cors-origin *", async () => {
      const host = await SockfleetHost.start({ workers: 1, args: ["--cors-origin", "*"] });
      try {
        const line = host.logs.find((l) => l.msg?.startsWith("unsafe setting:"));
        assert.ok(line, "a warning line");
        assert.equal(line.level, 40);
        assert.equal(line.setting, "corsOrigins");
        // ...and * does what stock Socket.IO users expect: any origin, never with credentials.
        const res = await fetch(`${host.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: "https://elsewhere.example" } });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("access-control-allow-origin"), "*");
        assert.equal(res.headers.get("access-control-allow-credentials"), null);
      } finally {
        assert.equal(await host.stop(), 0);
      }
    });
  });

  it("returns a frozen config", () => {
    const result = loadConfig([], {});
    assert.ok(!result.help);
    assert.ok(Object.isFrozen(result.config));
  });

  it("prints usage for --help and exits 0", async () => {
    const { code, stdout } = await runCli(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /Usage: sockfleet/);
  });
});
