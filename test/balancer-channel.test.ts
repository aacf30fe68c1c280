import assert from "node:assert/strict";
import { spawnTracked, waitForExit, killTree } from "./helpers/processes";
import { compiledFixture } from "./helpers/sockfleet";

describe("the balancer when a worker's channel has closed before its exit is reported", function () {
  this.timeout(20_000);

  it("refuses a request of that worker's session with 503 and keeps the primary's event loop turning", async () => {
    const child = spawnTracked(process.execPath, [compiledFixture("balancer-closed-channel")]);
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    try {
      // A balancer that routes again on every failed hand-over spins on next ticks: no line, ever.
      await waitForExit(child, 10_000).catch(() => assert.fail(`the primary's event loop stopped turning (printed: ${JSON.stringify(out)})`));
      const result = JSON.parse(out.trim()) as { status: number; attempts: number };
      assert.equal(result.status, 503);
      assert.ok(result.attempts <= 1, `${result.attempts} hand-overs attempted to a worker whose channel is closed`);
    } finally {
      await killTree(child);
    }
  });
});
