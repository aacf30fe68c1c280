import assert from "node:assert/strict";
import { createLogger } from "../src/observability/logger";
import { GapDetector, MAX_ORIGINS, type Gap } from "../src/tiers/redis/gap-detector";

describe("gap detection on Redis pub/sub (per origin bridge)", () => {
  let gaps: Gap[];
  let detector: GapDetector;

  beforeEach(() => {
    gaps = [];
    detector = new GapDetector((gap) => gaps.push(gap), createLogger("silent", {}));
  });

  it("takes the first number heard from a bridge as its starting point, not as a gap", () => {
    detector.broadcast("host-b:1a2b", 500);
    detector.broadcast("host-b:1a2b", 501);
    detector.heartbeat("host-c:3c4d", 40);
    detector.broadcast("host-c:3c4d", 41);
    assert.deepEqual(gaps, []);
  });

  it("reports a skip in a bridge's broadcasts once, with its origin host and size", () => {
    detector.broadcast("host-b:1a2b", 1);
    detector.broadcast("host-b:1a2b", 5);
    detector.broadcast("host-b:1a2b", 6);
    assert.deepEqual(gaps, [{ origin: "host-b", bridge: "host-b:1a2b", missed: 3, from: 2, to: 4 }]);
  });

  it("reports broadcasts missed at the end of a burst when the bridge's heartbeat names a newer number", () => {
    detector.broadcast("host-b:1a2b", 7);
    detector.heartbeat("host-b:1a2b", 7);
    detector.heartbeat("host-b:1a2b", 10);
    // The broadcasts themselves never come; a later one continues the series without a second report.
    detector.broadcast("host-b:1a2b", 11);
    assert.deepEqual(gaps, [{ origin: "host-b", bridge: "host-b:1a2b", missed: 3, from: 8, to: 10 }]);
  });

  it("keeps each bridge's series apart: a restarted host (new bridge id) numbering from 1 is no gap", () => {
    detector.broadcast("host-b:old1", 900);
    detector.broadcast("host-b:new2", 1);
    detector.broadcast("host-b:new2", 2);
    detector.broadcast("host-b:old1", 902);
    assert.deepEqual(gaps.map((g) => [g.bridge, g.missed]), [["host-b:old1", 1]]);
  });

  it("ignores numbers it has already passed and values that are not sequence numbers", () => {
    detector.broadcast("host-b:1a2b", 3);
    detector.broadcast("host-b:1a2b", 3);
    detector.heartbeat("host-b:1a2b", 2);
    detector.broadcast("host-b:1a2b", Number.NaN);
    detector.broadcast("host-b:1a2b", -1);
    detector.broadcast("host-b:1a2b", 4);
    assert.deepEqual(gaps, []);
  });

  it(`remembers at most ${MAX_ORIGINS} bridges, forgetting the one heard from least recently`, () => {
    for (let i = 0; i <= MAX_ORIGINS; i++) detector.broadcast(`host-${i}:x`, 1);
    // host-0 was forgotten: its next number is a new starting point; the newest is still known.
    detector.broadcast("host-0:x", 5);
    detector.broadcast(`host-${MAX_ORIGINS}:x`, 3);
    assert.deepEqual(gaps.map((g) => [g.origin, g.missed]), [[`host-${MAX_ORIGINS}`, 1]]);
  });
});
