import type { Namespace, Server } from "socket.io";
import type { Presence, PresenceChange, PresenceMember, PresencePage } from "../apps/types";

/** The server-side event (serverSideEmit) every worker of the fleet answers presence queries on. */
const QUERY_EVENT = "sockfleet:presence";
const DEFAULT_LIMIT = 100;
export const MAX_PRESENCE_LIMIT = 1000;

interface Query {
  nsp: string;
  room: string;
  /** Absent for a count. */
  page?: { after: string; limit: number };
}
type Answer = { count: number } | { members: PresenceMember[] };

/**
 * `ctx.presence`: who is in a room across the fleet. A query is one serverSideEmit with acks, so
 * it reaches every worker of every host (the adapter API's own fan-out, in bridge and adapter
 * mode alike) and each answers from its own rooms: a count in O(1), a page in O(members here);
 * what comes back is bounded by the page size per worker.
 */
export function createPresence(io: Server, host: string, worker: number): Presence {
  const local = (query: Query): Answer => {
    // Never io.of(nsp): that would create a namespace a client merely asked about.
    const nsp = (io as unknown as { _nsps: Map<string, Namespace> })._nsps.get(query.nsp);
    const ids = nsp?.adapter.rooms.get(query.room);
    if (!query.page) return { count: ids?.size ?? 0 };
    const { after, limit } = query.page;
    const members: PresenceMember[] = [];
    for (const id of [...(ids ?? [])].filter((id) => id > after).sort().slice(0, limit)) {
      members.push({ id, host, worker, data: nsp!.sockets.get(id)?.data });
    }
    return { members };
  };
  io.on(QUERY_EVENT, (query: Query, ack: (answer: Answer) => void) => ack(local(query)));

  const ask = (query: Query): Promise<Answer[]> =>
    new Promise((resolve, reject) => {
      try {
        // A worker that does not answer in time (the adapter's requestsTimeout) is left out.
        io.serverSideEmit(QUERY_EVENT, query, (_err: Error | null, answers: Answer[]) => resolve([local(query), ...(answers ?? [])]));
      } catch (err) {
        reject(err as Error);
      }
    });

  return {
    async count(room, options = {}) {
      const answers = await ask({ nsp: options.nsp ?? "/", room: checkRoom(room) });
      return answers.reduce((sum, answer) => sum + ("count" in answer ? answer.count : 0), 0);
    },
    async members(room, options = {}) {
      const limit = options.limit ?? DEFAULT_LIMIT;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PRESENCE_LIMIT) throw new RangeError(`presence limit must be an integer from 1 to ${MAX_PRESENCE_LIMIT}, got ${String(limit)}`);
      const after = options.after ?? "";
      if (typeof after !== "string") throw new TypeError("presence `after` must be the `next` of a previous page");
      const answers = await ask({ nsp: options.nsp ?? "/", room: checkRoom(room), page: { after, limit } });
      const all = answers.flatMap((answer) => ("members" in answer ? answer.members : []));
      all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      // Each worker sent its first `limit` after `after`: the first `limit` of all of them is exact.
      const members = all.slice(0, limit);
      const page: PresencePage = { members };
      if (all.length > limit || answers.some((answer) => "members" in answer && answer.members.length === limit)) page.next = members[members.length - 1]?.id;
      return page;
    },
    onChange(listener) {
      const watch = (nsp: Namespace): void => {
        const notify = (room: string, id: string, joined: boolean): void => {
          // A socket's own id room is not presence.
          if (room !== id) listener({ nsp: nsp.name, room, id, joined } satisfies PresenceChange);
        };
        nsp.adapter.on("join-room", (room: string, id: string) => notify(room, id, true));
        nsp.adapter.on("leave-room", (room: string, id: string) => notify(room, id, false));
      };
      for (const nsp of (io as unknown as { _nsps: Map<string, Namespace> })._nsps.values()) watch(nsp);
      io.on("new_namespace", watch);
    },
  };
}

function checkRoom(room: unknown): string {
  if (typeof room !== "string") throw new TypeError(`presence needs a room name (string), got ${typeof room}`);
  return room;
}
