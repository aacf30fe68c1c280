import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { readPublicKey } from "../auth/jwt-key";
import { configSchema, type Config } from "./schema";

/** A bad setting. The CLI prints `message` as one line and exits with {@link ConfigError.exitCode}. */
export class ConfigError extends Error {
  static readonly exitCode = 2;
  constructor(
    message: string,
    readonly setting?: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

type Key = keyof Config;
type Source = { kind: "flag" | "env" | "file" | "default"; name: string };

/** flag name, env name and whether the value is a comma-separated list, for each setting. */
const SETTINGS: Record<Key, { flag: string; env: string; list?: boolean }> = {
  port: { flag: "port", env: "PORT" },
  host: { flag: "host", env: "HOST" },
  workers: { flag: "workers", env: "WORKERS" },
  app: { flag: "app", env: "APP" },
  hostId: { flag: "host-id", env: "HOST_ID" },
  corsOrigins: { flag: "cors-origin", env: "CORS_ORIGINS", list: true },
  maxHttpBufferSize: { flag: "max-http-buffer-size", env: "MAX_HTTP_BUFFER_SIZE" },
  pingInterval: { flag: "ping-interval", env: "PING_INTERVAL" },
  pingTimeout: { flag: "ping-timeout", env: "PING_TIMEOUT" },
  shutdownTimeout: { flag: "shutdown-timeout", env: "SHUTDOWN_TIMEOUT" },
  redisUrl: { flag: "redis", env: "REDIS_URL" },
  redisMode: { flag: "redis-mode", env: "REDIS_MODE" },
  redisPrefix: { flag: "redis-prefix", env: "REDIS_PREFIX" },
  redisConnectTimeout: { flag: "redis-connect-timeout", env: "REDIS_CONNECT_TIMEOUT" },
  redisSharded: { flag: "redis-sharded", env: "REDIS_SHARDED" },
  recovery: { flag: "recovery", env: "RECOVERY" },
  recoveryWindow: { flag: "recovery-window", env: "RECOVERY_WINDOW" },
  recoveryMaxPackets: { flag: "recovery-max-packets", env: "RECOVERY_MAX_PACKETS" },
  recoveryMaxBytes: { flag: "recovery-max-bytes", env: "RECOVERY_MAX_BYTES" },
  recoveryMaxSessions: { flag: "recovery-max-sessions", env: "RECOVERY_MAX_SESSIONS" },
  recoveryOffsets: { flag: "recovery-offsets", env: "RECOVERY_OFFSETS" },
  maxConnections: { flag: "max-connections", env: "MAX_CONNECTIONS" },
  maxConnectionsPerIp: { flag: "max-connections-per-ip", env: "MAX_CONNECTIONS_PER_IP" },
  trustedProxies: { flag: "trusted-proxies", env: "TRUSTED_PROXIES", list: true },
  headTimeout: { flag: "head-timeout", env: "HEAD_TIMEOUT" },
  maxHeadBytes: { flag: "max-head-bytes", env: "MAX_HEAD_BYTES" },
  maxPendingHeads: { flag: "max-pending-heads", env: "MAX_PENDING_HEADS" },
  maxEventsPerSecond: { flag: "max-events-per-second", env: "MAX_EVENTS_PER_SECOND" },
  maxEventsBurst: { flag: "max-events-burst", env: "MAX_EVENTS_BURST" },
  rateLimitGrace: { flag: "rate-limit-grace", env: "RATE_LIMIT_GRACE" },
  maxBufferedBytes: { flag: "max-buffered-bytes", env: "MAX_BUFFERED_BYTES" },
  directWrites: { flag: "direct-writes", env: "DIRECT_WRITES" },
  maxEventArgs: { flag: "max-event-args", env: "MAX_EVENT_ARGS" },
  maxEventDepth: { flag: "max-event-depth", env: "MAX_EVENT_DEPTH" },
  maxAttachments: { flag: "max-attachments", env: "MAX_ATTACHMENTS" },
  maxRoomsPerSocket: { flag: "max-rooms-per-socket", env: "MAX_ROOMS_PER_SOCKET" },
  maxNamespacesPerClient: { flag: "max-namespaces-per-client", env: "MAX_NAMESPACES_PER_CLIENT" },
  maxChannelBytes: { flag: "max-channel-bytes", env: "MAX_CHANNEL_BYTES" },
  appErrors: { flag: "app-errors", env: "APP_ERRORS" },
  authJwtSecret: { flag: "auth-jwt-secret", env: "AUTH_JWT_SECRET" },
  authJwtPublicKey: { flag: "auth-jwt-public-key", env: "AUTH_JWT_PUBLIC_KEY" },
  authJwtIssuer: { flag: "auth-jwt-issuer", env: "AUTH_JWT_ISSUER" },
  authJwtAudience: { flag: "auth-jwt-audience", env: "AUTH_JWT_AUDIENCE" },
  logLevel: { flag: "log-level", env: "LOG_LEVEL" },
  drainTime: { flag: "drain-time", env: "DRAIN_TIME" },
  hostDrainTime: { flag: "host-drain-time", env: "HOST_DRAIN_TIME" },
  adminPort: { flag: "admin-port", env: "ADMIN_PORT" },
  adminHost: { flag: "admin-host", env: "ADMIN_HOST" },
  adminUiUser: { flag: "admin-ui-user", env: "ADMIN_UI_USER" },
  adminUiPasswordHash: { flag: "admin-ui-password-hash", env: "ADMIN_UI_PASSWORD_HASH" },
};

export const USAGE = `Usage: sockfleet [options]

Options (environment variable in brackets; flags win over the environment, which wins over --config):
  --port N                   public TCP port, 0 for any free port [PORT] (default 3000)
  --host ADDR                address to bind [HOST] (default 0.0.0.0)
  --workers N                worker processes [WORKERS] (default: available cores)
  --app PATH                 app module to run instead of the chat app [APP]
  --host-id NAME             name of this host in the fleet [HOST_ID] (default: hostname)
  --cors-origin ORIGIN       allowed browser origin, repeatable [CORS_ORIGINS, comma-separated]
  --max-http-buffer-size N   largest accepted message in bytes [MAX_HTTP_BUFFER_SIZE] (default 1000000)
  --ping-interval MS         heartbeat interval [PING_INTERVAL] (default 25000)
  --ping-timeout MS          heartbeat timeout [PING_TIMEOUT] (default 20000)
  --shutdown-timeout MS      bound on graceful shutdown [SHUTDOWN_TIMEOUT] (default 10000)
  --redis URL                Redis URL for the hosts tier, redis:// or rediss:// (TLS) [REDIS_URL]
  --redis-mode MODE          bridge|adapter [REDIS_MODE] (default bridge)
  --redis-prefix PREFIX      channel prefix, shared with @socket.io/redis-emitter [REDIS_PREFIX] (default socket.io)
  --redis-connect-timeout MS bound on one Redis connection attempt [REDIS_CONNECT_TIMEOUT] (default 5000)
  --redis-sharded true|false --redis is one node of a Redis Cluster (sharded pub/sub), both modes [REDIS_SHARDED] (default false)
  --recovery on|off          connection-state recovery [RECOVERY] (default on)
  --recovery-window MS       how long a dropped session can be recovered [RECOVERY_WINDOW] (default 120000)
  --recovery-max-packets N   broadcasts kept for replay [RECOVERY_MAX_PACKETS] (default 100000)
  --recovery-max-bytes N     bytes of broadcasts kept for replay [RECOVERY_MAX_BYTES] (default 64000000)
  --recovery-max-sessions N  disconnected sessions kept per host [RECOVERY_MAX_SESSIONS] (default 1000000)
  --recovery-offsets RULE    auto|opt-in|all: which clients get recovery offsets [RECOVERY_OFFSETS] (default auto)
  --log-level LEVEL          fatal|error|warn|info|debug|trace|silent [LOG_LEVEL] (default info)
  --drain-time MS            rolling restart: a replaced worker's clients reconnect spread over MS [DRAIN_TIME] (default 2000)
  --host-drain-time MS       draining the host (POST /drain, SIGUSR2): its clients move spread over MS [HOST_DRAIN_TIME] (default 30000)
  --admin-port N             admin listener for /metrics, /healthz, /readyz; unset: none, 0: any free port [ADMIN_PORT]
  --admin-host ADDR          address of the admin listener [ADMIN_HOST] (default 127.0.0.1)
  --admin-ui-user NAME       switch on the Socket.IO Admin UI (namespace /admin) with this user [ADMIN_UI_USER]
  --admin-ui-password-hash H bcrypt hash of the Admin UI password [ADMIN_UI_PASSWORD_HASH]
Security and limits (0 switches a count or rate limit off; see the README's "Security and limits"):
  --max-connections N        connections the host holds [MAX_CONNECTIONS] (default: from the open-file limit)
  --max-connections-per-ip N connections per client address [MAX_CONNECTIONS_PER_IP] (default 1000)
  --trusted-proxies CIDR     proxies allowed to set X-Forwarded-For, comma-separated [TRUSTED_PROXIES] (default none)
  --head-timeout MS          total time to send a request head [HEAD_TIMEOUT] (default 10000)
  --max-head-bytes N         largest request head [MAX_HEAD_BYTES] (default 16384)
  --max-pending-heads N      connections waiting for a head at once [MAX_PENDING_HEADS] (default 1000)
  --max-events-per-second N  events per second per socket [MAX_EVENTS_PER_SECOND] (default 100)
  --max-events-burst N       burst of events per socket [MAX_EVENTS_BURST] (default 200)
  --rate-limit-grace MS      over the rate this long: disconnected [RATE_LIMIT_GRACE] (default 10000)
  --max-buffered-bytes N     pending outgoing bytes per client before it is dropped [MAX_BUFFERED_BYTES] (default 1048576)
  --direct-writes on|off     broadcast frames straight to idle WebSocket clients [DIRECT_WRITES] (default on)
  --max-event-args N         arguments of one client event [MAX_EVENT_ARGS] (default 64)
  --max-event-depth N        nesting depth of one client event [MAX_EVENT_DEPTH] (default 32)
  --max-attachments N        binary attachments of one client packet [MAX_ATTACHMENTS] (default 10)
  --max-rooms-per-socket N   rooms one socket may be in [MAX_ROOMS_PER_SOCKET] (default 1000)
  --max-namespaces-per-client N namespaces one connection may join [MAX_NAMESPACES_PER_CLIENT] (default 16)
  --max-channel-bytes N      unsent bytes on a worker's data channel, and queued for Redis [MAX_CHANNEL_BYTES] (default 67108864)
  --app-errors log|crash     an app handler's exception: logged, or crashes the worker [APP_ERRORS] (default log)
  --auth-jwt-secret S        require a JWT (HS256) in the handshake's auth.token [AUTH_JWT_SECRET]
  --auth-jwt-public-key FILE require a JWT (RS256/ES256) verified with this PEM key [AUTH_JWT_PUBLIC_KEY]
  --auth-jwt-issuer ISS      required iss claim [AUTH_JWT_ISSUER]
  --auth-jwt-audience AUD    required aud claim [AUTH_JWT_AUDIENCE]
  --config FILE              JSON file with any of the settings above, camelCase keys [SOCKFLEET_CONFIG]
  -h, --help                 print this help
`;

function describe(source: Source): string {
  switch (source.kind) {
    case "flag":
      return `--${source.name}`;
    case "env":
      return `environment variable ${source.name}`;
    case "file":
      return `config file ${source.name}`;
    case "default":
      return "default";
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`config: cannot read ${file}: ${(err as Error).message}`, "config");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config: ${file} is not valid JSON: ${(err as Error).message}`, "config");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config: ${file} must hold a JSON object`, "config");
  }
  return parsed as Record<string, unknown>;
}

function splitList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter(Boolean);
}

export type LoadResult = { help: true } | { help: false; config: Config };

/**
 * Builds the one validated, frozen configuration from defaults, an optional JSON file, the
 * environment and command-line flags (in rising precedence). Throws {@link ConfigError} naming
 * the offending setting and where it came from.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadResult {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  };
  for (const { flag, list } of Object.values(SETTINGS)) {
    options[flag] = list ? { type: "string", multiple: true } : { type: "string" };
  }

  let flags: Record<string, unknown>;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = (err as Error).message.split("\n")[0];
    throw new ConfigError(`argument error: ${message} (see --help)`);
  }
  if (flags.help) return { help: true };

  const raw: Record<string, unknown> = {};
  const sources = new Map<string, Source>();

  const configFile = (flags.config as string | undefined) ?? env.SOCKFLEET_CONFIG;
  if (configFile) {
    const file = path.resolve(configFile);
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      raw[key] = value;
      sources.set(key, { kind: "file", name: file });
    }
  }
  for (const [key, { env: name, list }] of Object.entries(SETTINGS)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    raw[key] = list ? splitList(value) : value;
    sources.set(key, { kind: "env", name });
  }
  for (const [key, { flag, list }] of Object.entries(SETTINGS)) {
    if (flags[flag] === undefined) continue;
    // A list flag may be repeated and each value may itself be comma-separated.
    raw[key] = list ? splitList((flags[flag] as string[]).join(",")) : flags[flag];
    sources.set(key, { kind: "flag", name: flag });
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = String(issue.path[0] ?? "");
    if (issue.code === "unrecognized_keys") {
      const unknown = issue.keys.join(", ");
      throw new ConfigError(`config: unknown setting(s) ${unknown} in ${describe(sources.get(issue.keys[0]) ?? { kind: "file", name: "config" })}`, issue.keys[0]);
    }
    const source = sources.get(key) ?? { kind: "default", name: key };
    const given = raw[key] === undefined ? "" : ` (got ${JSON.stringify(raw[key])})`;
    throw new ConfigError(`invalid setting ${key} from ${describe(source)}: ${issue.message}${given}`, key);
  }

  const config = { ...result.data };
  if (config.app !== undefined) {
    const appPath = path.resolve(config.app);
    try {
      fs.accessSync(appPath, fs.constants.R_OK);
    } catch {
      const source = sources.get("app") ?? { kind: "default", name: "app" };
      throw new ConfigError(`invalid setting app from ${describe(source)}: cannot read module ${appPath}`, "app");
    }
    config.app = appPath;
  }
  if (config.authJwtPublicKey !== undefined) {
    const keyPath = path.resolve(config.authJwtPublicKey);
    try {
      fs.accessSync(keyPath, fs.constants.R_OK);
    } catch {
      const source = sources.get("authJwtPublicKey") ?? { kind: "default", name: "authJwtPublicKey" };
      throw new ConfigError(`invalid setting authJwtPublicKey from ${describe(source)}: cannot read ${keyPath}`, "authJwtPublicKey");
    }
    // Checked here, in the primary, so a bad key is a config error (exit 2) rather than every
    // worker failing its start.
    try {
      readPublicKey(keyPath);
    } catch (err) {
      const source = sources.get("authJwtPublicKey") ?? { kind: "default", name: "authJwtPublicKey" };
      throw new ConfigError(`invalid setting authJwtPublicKey from ${describe(source)}: ${(err as Error).message}`, "authJwtPublicKey");
    }
    config.authJwtPublicKey = keyPath;
  }
  Object.freeze(config.corsOrigins);
  Object.freeze(config.trustedProxies);
  return { help: false, config: Object.freeze(config) };
}
