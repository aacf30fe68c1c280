/**
 * Redis channel names. The `${prefix}#…` and `${prefix}-request#…` names are those of
 * @socket.io/redis-adapter and @socket.io/redis-emitter (so a stock emitter reaches us); sockfleet's
 * own bridge traffic lives under `${prefix}-sockfleet#…`, which neither of them reads.
 */
export interface Channels {
  /** Every bridge publishes its hosts' adapter requests, broadcasts and heartbeats here. */
  bus: string;
  /** Responses addressed to one bridge's workers (on Redis Cluster in the bus's slot, as {@link room}). */
  responses(bridgeId: string): string;
  /**
   * Broadcasts to one named room of a namespace (socket ids stay on the bus, socket-id-rooms.ts):
   * only hosts holding a member subscribe (host-routes.ts). On Redis Cluster it carries the bus's
   * name as hash tag, as the responses do: in the bus's slot, what a publisher sends on the bus, to
   * rooms and as responses (a room's catch-up after a first join) reaches a subscriber through one
   * node, in the order published, which routing relies on as it does on one node.
   */
  room(nsp: string, room: string): string;
  /** The shared log of recoverable broadcasts (a stream; connection-state recovery). */
  log: string;
  /**
   * The shared log's entries not routed to a room, published by the script that appends them
   * (feed-reader.ts). This and the next two carry the log's key as their hash tag: on Redis Cluster
   * they live in the stream's slot, where its scripts may publish to them.
   */
  logFeed: string;
  /** One bridge's markers of shared-log scans (feed-reader.ts), published by the scan's script. */
  logSync(bridgeId: string): string;
  /** The shared log's entries for one named room (log-routes.ts). */
  logRoom(nsp: string, room: string): string;
  /** Hash of one bridge's sessions (pid -> session), for takeover by another host. */
  sessions(bridgeId: string): string;
  /** Sorted set of bridges by last heartbeat, to find whose sessions to look in. */
  hosts: string;
  /** Pattern of the emitter's broadcast channels: `${prefix}#${nsp}#` and `${prefix}#${nsp}#${room}#`. */
  emitterBroadcasts: string;
  /** Pattern of the emitter's request channels: `${prefix}-request#${nsp}#`. */
  emitterRequests: string;
  /** Namespace and room of an emitter broadcast channel, undefined when it is not one. */
  parseBroadcast(channel: string): { nsp: string; room: string } | undefined;
  /** Namespace of an emitter request channel, undefined when it is not one. */
  parseRequest(channel: string): string | undefined;
}

export function channels(prefix: string, sharded = false): Channels {
  const broadcastHead = `${prefix}#`;
  const requestHead = `${prefix}-request#`;
  const bus = `${prefix}-sockfleet#bus#`;
  const inBusSlot = sharded ? `{${bus}}#` : `${prefix}-sockfleet#`;
  return {
    bus,
    responses: (bridgeId) => `${inBusSlot}to#${bridgeId}#`,
    room: (nsp, room) => `${inBusSlot}room#${nsp}#${room}#`,
    log: `${prefix}-sockfleet#log`,
    logFeed: `{${prefix}-sockfleet#log}#feed#`,
    logSync: (bridgeId) => `{${prefix}-sockfleet#log}#sync#${bridgeId}#`,
    logRoom: (nsp, room) => `{${prefix}-sockfleet#log}#room#${nsp}#${room}#`,
    sessions: (bridgeId) => `${prefix}-sockfleet#sessions#${bridgeId}`,
    hosts: `${prefix}-sockfleet#hosts`,
    emitterBroadcasts: `${escapeGlob(broadcastHead)}*`,
    emitterRequests: `${escapeGlob(requestHead)}*`,
    parseBroadcast(channel) {
      if (!channel.startsWith(broadcastHead) || !channel.endsWith("#")) return undefined;
      // Namespaces start with "/" and hold no "#"; the room is everything after it (it may hold "#").
      const rest = channel.slice(broadcastHead.length, -1);
      const cut = rest.indexOf("#");
      if (cut === -1) return { nsp: rest, room: "" };
      return { nsp: rest.slice(0, cut), room: rest.slice(cut + 1) };
    },
    parseRequest(channel) {
      if (!channel.startsWith(requestHead) || !channel.endsWith("#")) return undefined;
      return channel.slice(requestHead.length, -1);
    },
  };
}

/** Escapes Redis glob characters so a prefix like "app[1]" matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]^]/g, (c) => `\\${c}`);
}
