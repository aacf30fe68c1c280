import net from "node:net";
import os from "node:os";
import { z } from "zod";

/** `addr` or `addr/prefix`, IPv4 or IPv6. */
export function isCidr(value: string): boolean {
  const [address, prefix, ...rest] = value.split("/");
  const family = net.isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * Every setting sockfleet understands, with its default. This is the single source of truth:
 * flags, environment variables and the config file are all mapped onto these keys and validated here.
 */
export const configSchema = z
  .object({
    /** TCP port of the public listener; 0 picks a free port (logged in the ready line). */
    port: z.coerce.number().int().min(0).max(65535).default(3000),
    /** Address the public listener binds to. */
    host: z.string().min(1).default("0.0.0.0"),
    /** Number of worker processes. */
    workers: z.coerce.number().int().min(1).max(256).default(os.availableParallelism()),
    /** Path of the app module; empty means the built-in chat app. */
    app: z.string().optional(),
    /** Name of this host in the fleet (used in logs, whoami and cross-host routing). */
    hostId: z.string().min(1).max(128).default(os.hostname()),
    /** Allowed browser origins for CORS; empty means same-origin only. */
    corsOrigins: z.array(z.string().min(1)).default([]),
    /** Largest accepted message, in bytes (Socket.IO's maxHttpBufferSize). */
    maxHttpBufferSize: z.coerce.number().int().min(1024).max(100_000_000).default(1_000_000),
    /** Socket.IO heartbeat settings, in milliseconds. */
    pingInterval: z.coerce.number().int().min(100).max(600_000).default(25_000),
    pingTimeout: z.coerce.number().int().min(100).max(600_000).default(20_000),
    /** How long a graceful shutdown may take before stragglers are killed, in milliseconds. */
    shutdownTimeout: z.coerce.number().int().min(100).max(600_000).default(10_000),
    /** Redis URL (redis:// or rediss://); unset means a single host. */
    redisUrl: z.string().url().optional(),
    /**
     * How hosts talk over Redis. "bridge": workers keep the cluster adapter and each primary bridges
     * its local bus with one publishing and one subscribing connection. "adapter": every worker uses
     * @socket.io/redis-adapter itself (the stock recipe, interoperable with plain Socket.IO servers).
     */
    redisMode: z.enum(["bridge", "adapter"]).default("bridge"),
    /** Channel prefix; the default is @socket.io/redis-emitter's, so a stock emitter reaches clients. */
    redisPrefix: z.string().min(1).max(200).default("socket.io"),
    /** Bound on one connection attempt to Redis, in milliseconds. */
    redisConnectTimeout: z.coerce.number().int().min(100).max(600_000).default(5_000),
    /**
     * The Redis URL is one node of a Redis Cluster (Redis >= 7); the others are discovered from it.
     * Bridge mode then publishes with SPUBLISH/SSUBSCRIBE and sends each key command to the node
     * holding its key (src/tiers/redis/cluster-transport.ts); adapter mode uses the sharded adapter.
     * Not detected: set it (a bridge on one node that finds cluster mode on logs an error naming it).
     */
    redisSharded: z
      .union([z.boolean(), z.enum(["true", "false", "on", "off", "1", "0"])])
      .transform((v) => v === true || v === "true" || v === "on" || v === "1")
      .default(false),
    /** Connection-state recovery: clients that drop (or whose worker dies) get their missed packets back. */
    recovery: z
      .union([z.boolean(), z.enum(["true", "false", "on", "off", "1", "0"])])
      .transform((v) => v === true || v === "true" || v === "on" || v === "1")
      .default(true),
    /**
     * Broadcast fan-out writes a WebSocket client's frame straight to its socket when engine.io has
     * nothing queued for it (worker/direct-send.ts); off: every delivery takes engine.io's path.
     */
    directWrites: z
      .union([z.boolean(), z.enum(["true", "false", "on", "off", "1", "0"])])
      .transform((v) => v === true || v === "true" || v === "on" || v === "1")
      .default(true),
    /** How long a disconnected session can be recovered, in milliseconds (socket.io's maxDisconnectionDuration). */
    recoveryWindow: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
    /** Most broadcasts the primary keeps for replay. */
    recoveryMaxPackets: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
    /** Most bytes of broadcasts the primary keeps for replay. */
    recoveryMaxBytes: z.coerce.number().int().min(1_000_000).max(8_000_000_000).default(64_000_000),
    /** Most disconnected sessions kept for recovery on one host (oldest forgotten first). */
    recoveryMaxSessions: z.coerce.number().int().min(100).max(100_000_000).default(1_000_000),
    /**
     * Which clients get the recovery offset as an extra last argument of broadcasts (README
     * "Which clients get offsets"): "auto" socket.io-client and clients that opt in, "opt-in" only
     * those, "all" every client (stock socket.io).
     */
    recoveryOffsets: z.enum(["auto", "opt-in", "all"]).default("auto"),
    // Security and limits (README "Security and limits"). 0 switches a count or rate limit off.
    /**
     * Connections (TCP) the host holds at once; beyond it the primary refuses new ones. Unset: derived
     * at start from the open-file limit (see primary/capacity.ts), which caps what workers can hold anyway.
     */
    maxConnections: z.coerce.number().int().min(0).max(100_000_000).optional(),
    /** Connections one client address may hold on this host, counted by the primary across workers. */
    maxConnectionsPerIp: z.coerce.number().int().min(0).max(100_000_000).default(1_000),
    /** Addresses (CIDR) of proxies allowed to name the client address in X-Forwarded-For. */
    trustedProxies: z.array(z.string().refine(isCidr, "must be an IP address or CIDR range, e.g. 10.0.0.0/8 or ::1/128")).default([]),
    /** Total time a connection may take to send its first request head, from its accept (trickled bytes do not extend it). */
    headTimeout: z.coerce.number().int().min(100).max(600_000).default(10_000),
    /** Largest first request head the primary reads before routing; a longer one gets 431. */
    maxHeadBytes: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
    /** Connections that may be waiting for their first request head at once (the oldest are dropped beyond it). */
    maxPendingHeads: z.coerce.number().int().min(1).max(10_000_000).default(1_000),
    /** Token bucket per socket over the events a client sends: sustained rate... */
    maxEventsPerSecond: z.coerce.number().min(0).max(10_000_000).default(100),
    /** ...and burst size. */
    maxEventsBurst: z.coerce.number().int().min(1).max(10_000_000).default(200),
    /** A client over its event rate for this long is disconnected. */
    rateLimitGrace: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
    /** A client whose pending outgoing data exceeds this many bytes is disconnected (slow consumer). */
    maxBufferedBytes: z.coerce.number().int().min(0).max(8_000_000_000).default(1_048_576),
    /** Most arguments of one event a client sends; more is refused before dispatch. */
    maxEventArgs: z.coerce.number().int().min(1).max(100_000).default(64),
    /** Deepest nesting of arrays and objects in one event a client sends. */
    maxEventDepth: z.coerce.number().int().min(1).max(10_000).default(32),
    /** Most binary attachments in one packet a client sends. */
    maxAttachments: z.coerce.number().int().min(0).max(10_000).default(10),
    /** Most rooms one socket may be in (its own id room included). */
    maxRoomsPerSocket: z.coerce.number().int().min(0).max(100_000_000).default(1_000),
    /** Most namespaces one client connection may join. */
    maxNamespacesPerClient: z.coerce.number().int().min(0).max(100_000).default(16),
    /**
     * Bytes each end of a worker's data channel may hold unsent (beyond it the primary replaces the
     * worker, a worker refuses new broadcasts), and bytes queued for Redis while it is unreachable.
     */
    maxChannelBytes: z.coerce.number().int().min(1_048_576).max(8_000_000_000).default(64 * 1_048_576),
    /** What an exception thrown by an app's event handler does: "log" it (the socket stays up) or "crash" the worker. */
    appErrors: z.enum(["log", "crash"]).default("log"),
    /** HS256 secret of the JWTs clients present in `auth.token`; set it (or the public key) to require them. */
    authJwtSecret: z.string().min(32, "must be at least 32 characters (256 bits) for HS256").optional(),
    /** PEM file of the public key (RS256, ES256) of the JWTs clients present. */
    authJwtPublicKey: z.string().min(1).optional(),
    /** Required `iss` claim of client JWTs. */
    authJwtIssuer: z.string().min(1).optional(),
    /** Required `aud` claim of client JWTs. */
    authJwtAudience: z.string().min(1).optional(),

    /** Log level. */
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

    // Operations (rolling restarts, admin listener).
    /**
     * During a rolling restart, a replaced worker tells its clients to reconnect a few at a time,
     * spread over this many milliseconds, so they do not all land on the new worker at once.
     */
    drainTime: z.coerce.number().int().min(0).max(600_000).default(2_000),
    /**
     * Draining the whole host (POST /drain on the admin listener, or SIGUSR2): its clients are told
     * to reconnect, to other hosts, spread over this many milliseconds.
     */
    hostDrainTime: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
    /**
     * Port of the admin listener (/metrics, /healthz, /readyz); unset means no admin listener,
     * 0 picks a free port (logged in the ready line).
     */
    adminPort: z.coerce.number().int().min(0).max(65535).optional(),
    /** Address the admin listener binds to: loopback by default, so metrics never face the world by accident. */
    adminHost: z.string().min(1).default("127.0.0.1"),
    /** Socket.IO Admin UI: on when both are set. The password is a bcrypt hash (the UI never accepts a plain one). */
    adminUiUser: z.string().min(1).max(128).optional(),
    adminUiPasswordHash: z
      .string()
      .regex(/^\$2[aby]?\$\d{2}\$[./A-Za-z0-9]{53}$/, "must be a bcrypt hash, e.g. from: node -e \"console.log(require('bcryptjs').hashSync(process.argv[1], 10))\" PASSWORD")
      .optional(),
  })
  .strict()
  .refine((c) => !c.redisSharded || c.redisUrl !== undefined, {
    message: "redisSharded (Redis Cluster) needs redisUrl: the URL of one node of the cluster",
    path: ["redisSharded"],
  })
  // Bridge mode on Redis Cluster wraps the prefix in hash tags ({<prefix>-sockfleet#log}, ...): a
  // brace inside it would cut the tag short and scatter what must share a slot.
  .refine((c) => !c.redisSharded || !/[{}]/.test(c.redisPrefix), {
    message: "redisPrefix must not hold { or } on Redis Cluster (sockfleet wraps it in hash tags)",
    path: ["redisPrefix"],
  })
  .refine((c) => c.authJwtSecret === undefined || c.authJwtPublicKey === undefined, {
    message: "set either a JWT secret (HS256) or a public key (RS256/ES256), not both",
    path: ["authJwtPublicKey"],
  })
  .refine((c) => (c.authJwtIssuer === undefined && c.authJwtAudience === undefined) || c.authJwtSecret !== undefined || c.authJwtPublicKey !== undefined, {
    message: "a JWT issuer or audience needs authJwtSecret or authJwtPublicKey",
    path: ["authJwtIssuer"],
  })
  .refine((c) => (c.adminUiUser === undefined) === (c.adminUiPasswordHash === undefined), {
    message: "the admin UI needs both a user and a password hash",
    path: ["adminUiPasswordHash"],
  });

export type Config = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
