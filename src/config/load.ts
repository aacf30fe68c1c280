import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
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
  logLevel: { flag: "log-level", env: "LOG_LEVEL" },
  drainTime: { flag: "drain-time", env: "DRAIN_TIME" },
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
  --redis-sharded true|false Redis Cluster with sharded pub/sub, adapter mode only [REDIS_SHARDED] (default false)
  --recovery on|off          connection-state recovery [RECOVERY] (default on)
  --recovery-window MS       how long a dropped session can be recovered [RECOVERY_WINDOW] (default 120000)
  --recovery-max-packets N   broadcasts kept for replay [RECOVERY_MAX_PACKETS] (default 100000)
  --recovery-max-bytes N     bytes of broadcasts kept for replay [RECOVERY_MAX_BYTES] (default 64000000)
  --recovery-max-sessions N  disconnected sessions kept per host [RECOVERY_MAX_SESSIONS] (default 1000000)
  --log-level LEVEL          fatal|error|warn|info|debug|trace|silent [LOG_LEVEL] (default info)
  --drain-time MS            rolling restart: a replaced worker's clients reconnect spread over MS [DRAIN_TIME] (default 2000)
  --admin-port N             admin listener for /metrics, /healthz, /readyz; unset: none, 0: any free port [ADMIN_PORT]
  --admin-host ADDR          address of the admin listener [ADMIN_HOST] (default 127.0.0.1)
  --admin-ui-user NAME       switch on the Socket.IO Admin UI (namespace /admin) with this user [ADMIN_UI_USER]
  --admin-ui-password-hash H bcrypt hash of the Admin UI password [ADMIN_UI_PASSWORD_HASH]
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
    raw[key] = list ? value.split(",").map((s) => s.trim()).filter(Boolean) : value;
    sources.set(key, { kind: "env", name });
  }
  for (const [key, { flag }] of Object.entries(SETTINGS)) {
    if (flags[flag] === undefined) continue;
    raw[key] = flags[flag];
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
  Object.freeze(config.corsOrigins);
  return { help: false, config: Object.freeze(config) };
}
