import assert from "node:assert/strict";
import { encodeFrame } from "../src/ipc/frames";
import { RoomRoutes, stampNow } from "../src/primary/room-routes";
import { ADAPTER_SOURCE, MessageType, type AdapterMessage } from "../src/tiers/cluster/relay";

/** A room broadcast as a worker's FleetAdapter publishes it. */
function toRooms(rooms: string[], extra: Record<string, unknown> = {}): AdapterMessage {
  return { source: ADAPTER_SOURCE, uid: "u1", nsp: "/", type: MessageType.BROADCAST, data: { packet: { type: 2, data: ["e"] }, opts: { rooms, except: [], flags: {} }, ...extra } };
}

describe("room routes in the primary", () => {
  const workers = [1, 2, 3];
  let sent: Map<number, number>;
  let routes: RoomRoutes;

  beforeEach(() => {
    sent = new Map(workers.map((w) => [w, 0]));
    routes = new RoomRoutes((w) => sent.get(w) ?? 0);
  });

  /** Routes like the relay does, counting the frames each worker was sent. */
  function route(message: AdapterMessage, except?: number): number[] {
    const to = routes.targets(message, workers, except);
    for (const w of to) sent.set(w, sent.get(w)! + 1);
    return to;
  }

  it("sends a room broadcast only to the workers that announced a member, but the sender", () => {
    routes.announce(2, [["/", "a", stampNow()]], []);
    routes.announce(3, [["/", "b", stampNow()]], []);
    assert.deepEqual(route(toRooms(["a"]), 1), [2]);
    assert.deepEqual(route(toRooms(["a", "b"]), 2), [3]);
    assert.deepEqual(route(toRooms(["c"]), 1), []);
    assert.deepEqual(routes.routeCounts().get(1), { routed: 0, skipped: 1 });
  });

  it("sends broadcasts to all, with acks, and other requests to every worker but the sender", () => {
    assert.deepEqual(route(toRooms([]), 1), [2, 3]);
    assert.deepEqual(route(toRooms(["a"], { requestId: "r1" }), 1), [2, 3]);
    assert.deepEqual(route({ ...toRooms(["a"]), type: MessageType.SERVER_SIDE_EMIT }, 1), [2, 3]);
  });

  it("stops routing a room to a worker once it announced its last member left", () => {
    routes.announce(2, [["/", "a", stampNow()]], []);
    routes.announce(2, [], [["/", "a"]]);
    assert.deepEqual(route(toRooms(["a"]), 1), []);
  });

  it("answers a join with the broadcasts skipped since its stamp, placed by frame count, once", () => {
    route(toRooms(["a"]), 1); // skipped before the join: emitted before it, not owed
    route(toRooms([]), 1); // to all: frame 1 of worker 2
    const joinedAt = stampNow();
    const late = toRooms(["a"]);
    route(late, 1); // skipped after the join, while worker 2 had been sent 1 frame
    route(toRooms([]), 1); // frame 2
    const other = toRooms(["b"]);
    route(other, 1); // another room: not for this join
    const items = routes.announce(2, [["/", "a", joinedAt]], []);
    assert.deepEqual(items.map((i) => [i.at, i.message]), [[1, late]]);
    assert.deepEqual(routes.announce(2, [["/", "b", joinedAt]], []).map((i) => i.message), [other]);
    assert.deepEqual(route(toRooms(["a"]), 1), [2], "routed normally once announced");
  });

  it("lets go of a skipped broadcast once every worker it skipped announced past it", () => {
    route(toRooms(["a"]), 1);
    assert.equal(routes.retained(), 1);
    routes.announce(2, [], [], stampNow());
    route(toRooms(["a"]), 1);
    assert.equal(routes.retained(), 2, "kept while worker 3 may still announce a join from before it");
    routes.announce(3, [], [], stampNow());
    routes.announce(2, [], [], stampNow());
    route(toRooms(["a"]), 1);
    assert.equal(routes.retained(), 1, "only the newest, not yet announced past");
    assert.equal(routes.lateJoins, 0);
  });

  it("keeps skipped broadcasts within its byte bound, counting a join that needed one let go", () => {
    const frame = encodeFrame(toRooms(["a"]));
    const bounded = new RoomRoutes(() => 0, 3 * frame.length);
    const joinedAt = stampNow();
    for (let i = 0; i < 5; i++) bounded.targets(toRooms(["a"]), workers, 1, frame);
    assert.equal(bounded.retained(), 3);
    assert.equal(bounded.announce(2, [["/", "a", joinedAt]], []).length, 3);
    assert.equal(bounded.lateJoins, 1);
  });

  it("routes a namespace to a worker restoring a session, then the session's rooms until their pin expires", () => {
    routes.restoreAsked(2, 7, "/");
    assert.deepEqual(route(toRooms(["x"]), 1), [2]);
    routes.restoreAnswered(2, 7, ["a"], 60_000);
    assert.deepEqual(route(toRooms(["x"]), 1), []);
    assert.deepEqual(route(toRooms(["a"]), 1), [2]);
    routes.restoreAsked(3, 8, "/");
    routes.restoreAnswered(3, 8, ["b"], -1);
    assert.deepEqual(route(toRooms(["b"]), 1), [], "an expired pin routes nothing");
  });

  it("forgets a worker that exited", () => {
    routes.announce(2, [["/", "a", stampNow()]], []);
    routes.workerGone(2);
    assert.deepEqual(routes.targets(toRooms(["a"]), [1, 3], 1), []);
    assert.equal(routes.routeCounts().has(2), false);
  });
});
