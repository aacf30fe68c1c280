import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config/load";
import { runCli } from "./helpers/sockfleet";

describe("configuration", () => {
  describe("the CLI refuses bad settings with exit code 2 and one line naming the setting", () => {
    const cases: Array<{ name: string; args: string[]; env?: NodeJS.ProcessEnv; pattern: RegExp }> = [
      { name: "a non-numeric --workers", args: ["--workers", "abc"], pattern: /^sockfleet: invalid setting workers from --workers: .*"abc"/ },
      { name: "a --port above 65535", args: ["--port", "70000"], pattern: /^sockfleet: invalid setting port from --port: .*70000/ },
      { name: "an unknown flag", args: ["--wrokers", "2"], pattern: /^sockfleet: argument error: .*--wrokers/ },
      { name: "an unreadable app module", args: ["--app", "/nonexistent/app.js"], pattern: /^sockfleet: invalid setting app from --app: cannot read module \/nonexistent\/app\.js/ },
      { name: "a bad WORKERS variable", args: [], env: { WORKERS: "0" }, pattern: /^sockfleet: invalid setting workers from environment variable WORKERS:/ },
      { name: "a bad REDIS_URL", args: [], env: { REDIS_URL: "not a url" }, pattern: /^sockfleet: invalid setting redisUrl from environment variable REDIS_URL:/ },
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
