import { connectMany, whoami, type Client, type WhoAmI } from "./clients";

/** Clients of one host grouped by the worker that serves them. */
export interface Spread {
  all: Client[];
  byPid: Map<number, Client[]>;
  whoami: Map<Client, WhoAmI>;
}

/** Connects `count` clients and groups them by worker pid. */
export async function connectSpread(url: string, count: number, options: Parameters<typeof connectMany>[2] = {}): Promise<Spread> {
  const all = await connectMany(url, count, options);
  const byPid = new Map<number, Client[]>();
  const who = new Map<Client, WhoAmI>();
  for (const client of all) {
    const me = await whoami(client);
    who.set(client, me);
    byPid.set(me.pid, [...(byPid.get(me.pid) ?? []), client]);
  }
  return { all, byPid, whoami: who };
}

/**
 * Collects the first argument of every `event` each client receives. (With connection-state
 * recovery on, broadcasts carry their offset as an extra last argument.)
 */
export function record(clients: Client[], event: string): Map<Client, unknown[]> {
  const seen = new Map<Client, unknown[]>();
  for (const client of clients) {
    seen.set(client, []);
    client.on(event, (payload: unknown) => seen.get(client)!.push(payload));
  }
  return seen;
}

/**
 * Connects clients to the hosts at `urls` (round robin) until each of `workers` workers holds at
 * least `perWorker` of them. Sessions closed by an earlier test may still count on their worker for
 * a moment, so a fixed number of connects would not always reach every worker. Bounded.
 */
export async function connectAcross(urls: string[], workers: number, perWorker = 2): Promise<Spread> {
  const spread: Spread = { all: [], byPid: new Map(), whoami: new Map() };
  for (let round = 0; round < 10; round++) {
    const groups = await Promise.all(urls.map((url) => connectSpread(url, Math.ceil(workers / urls.length))));
    for (const group of groups) {
      spread.all.push(...group.all);
      for (const [client, me] of group.whoami) spread.whoami.set(client, me);
      for (const [pid, clients] of group.byPid) spread.byPid.set(pid, [...(spread.byPid.get(pid) ?? []), ...clients]);
    }
    if (spread.byPid.size === workers && [...spread.byPid.values()].every((c) => c.length >= perWorker)) break;
  }
  return spread;
}
