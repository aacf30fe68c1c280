import assert from "node:assert/strict";
import path from "node:path";
import { killTree, spawnTracked, waitForExit } from "./helpers/processes";
import { SockfleetHost } from "./helpers/sockfleet";

/** Debian's python3 with python3-socketio (5.7.2); not whatever `python3` comes first on PATH. */
const PYTHON = process.env.SOCKETIO_PYTHON ?? "/usr/bin/python3";
const SCRIPTS = path.resolve(__dirname, "..", "..", "test", "python");

interface Outcome {
  ok: boolean;
  error?: string;
  pids?: number[];
  stderr: string;
}

/** Runs a script of test/python/ against `url`; its last stdout line is the outcome (JSON). */
async function runPython(script: string, ...args: string[]): Promise<Outcome> {
  const child = spawnTracked(PYTHON, [path.join(SCRIPTS, script), ...args]);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForExit(child, 60_000);
  } finally {
    await killTree(child);
  }
  const last = stdout.trim().split("\n").pop() ?? "";
  try {
    return { ...(JSON.parse(last) as Omit<Outcome, "stderr">), stderr };
  } catch {
    return { ok: false, error: `no outcome line; stdout: ${stdout}`, stderr };
  }
}

describe("python-socketio 5.7 (Debian python3-socketio) against 2 workers", function () {
  this.timeout(120_000);
  let host: SockfleetHost | undefined;

  before(async () => {
    // Not a skip: CI installs python3-socketio (.ci/run), and a missing one must be seen.
    const probe = spawnTracked(PYTHON, ["-c", "import socketio"]);
    const { code } = await waitForExit(probe, 30_000);
    assert.equal(code, 0, `${PYTHON} cannot import socketio: install Debian's python3-socketio (apt-get install python3-socketio)`);
  });
  afterEach(async () => {
    await host?.stop();
    host = undefined;
  });

  for (const transports of ["polling", "websocket", "polling,websocket"]) {
    it(`exchanges chat and room messages, binary and acknowledgements with one-argument handlers (${transports})`, async () => {
      host = await SockfleetHost.start({ workers: 2 });
      const outcome = await runPython("chat_client.py", host.url, transports);
      assert.ok(outcome.ok, `${outcome.error}\n${outcome.stderr}`);
      assert.equal(new Set(outcome.pids).size, 2, "the two python clients are on different workers");
    });
  }

  it("gets the offset as the last argument once it opts in with auth offsets: true", async () => {
    host = await SockfleetHost.start({ workers: 2 });
    const outcome = await runPython("opt_in_client.py", host.url);
    assert.ok(outcome.ok, `${outcome.error ?? ""}\n${outcome.stderr}`);
  });

  it("loses events to TypeError when given offsets (--recovery-offsets all), which is why it gets none by default", async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--recovery-offsets", "all"] });
    const outcome = await runPython("chat_client.py", host.url, "websocket");
    assert.equal(outcome.ok, false);
    assert.match(outcome.stderr, /TypeError: .*takes 1 positional argument but 2 were given/);
  });
});
