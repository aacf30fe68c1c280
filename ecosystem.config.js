// pm2 process file for sockfleet: one sockfleet primary per host, which forks, balances and
// supervises its own workers. Build first (`npm run build`), then:
//
//   pm2 start ecosystem.config.js --env production     start; "online" once every worker serves
//   pm2 sendSignal SIGHUP sockfleet                    rolling restart: new code, no downtime
//   pm2 stop sockfleet                                 graceful shutdown (bounded by kill_timeout)
//
// Fork mode, one instance, on purpose: pm2's cluster mode would put its own round-robin in front of
// the primary and spread the requests of one long-polling session over several processes, which
// fails with "Session ID unknown" (HTTP 400). sockfleet's primary does the sticky balancing itself.
//
// `pm2 reload` is not the rolling restart: in fork mode pm2 turns it into a full restart of the
// primary (all clients reconnect, new connections are refused for a moment). Use it only when the
// primary itself or its settings must change.
//
// The environment of `pm2 start` wins over the defaults below (PORT=4000 WORKERS=8 pm2 start ...),
// so one file serves every host; variables not listed (REDIS_URL, HOST_ID, APP, CORS_ORIGINS, ...)
// reach sockfleet from that environment too. See `sockfleet --help` for every setting.
"use strict";
const path = require("node:path");

/** The value of `name` in the environment of `pm2 start`, or the file's default. */
function setting(name, fallback) {
  const value = process.env[name];
  return value === undefined || value === "" ? fallback : value;
}

const shutdownTimeout = Number(setting("SHUTDOWN_TIMEOUT", "10000"));
const logDir = setting("SOCKFLEET_LOG_DIR", path.join(__dirname, "logs"));

/** Settings shared by every environment; each can be overridden from the environment of `pm2 start`. */
const common = {
  PORT: setting("PORT", "3000"),
  HOST: setting("HOST", "0.0.0.0"),
  // Metrics and probes for Prometheus and the load balancer, on loopback only.
  ADMIN_PORT: setting("ADMIN_PORT", "9464"),
  ADMIN_HOST: setting("ADMIN_HOST", "127.0.0.1"),
  SHUTDOWN_TIMEOUT: String(shutdownTimeout),
  DRAIN_TIME: setting("DRAIN_TIME", "2000"),
  // pm2 captures stdout into files: JSON lines, one per log record.
  LOG_FORMAT: "json",
};
if (process.env.WORKERS) common.WORKERS = process.env.WORKERS; // default: one worker per core

module.exports = {
  apps: [
    {
      name: setting("SOCKFLEET_PM2_NAME", "sockfleet"),
      script: path.join(__dirname, "dist", "src", "cli.js"),
      cwd: __dirname,
      exec_mode: "fork",
      instances: 1,
      autorestart: true,
      // A primary that keeps dying is restarted with growing delays instead of in a tight loop.
      exp_backoff_restart_delay: 200,
      // "online" only once the primary sends "ready": every worker serves. Workers start in seconds;
      // past listen_timeout pm2 would report online anyway.
      wait_ready: true,
      listen_timeout: 30_000,
      // pm2 stop sends SIGINT to the primary (and its workers, which leave shutdown to the primary);
      // the primary closes gracefully within SHUTDOWN_TIMEOUT, then kills stragglers. pm2's SIGKILL
      // comes only after that, with a margin.
      kill_timeout: shutdownTimeout + 5_000,
      out_file: path.join(logDir, "sockfleet.out.log"),
      error_file: path.join(logDir, "sockfleet.err.log"),
      merge_logs: true,
      // pino writes its own ISO timestamps.
      time: false,
      env: { ...common, NODE_ENV: "development", LOG_LEVEL: setting("LOG_LEVEL", "debug") },
      env_production: { ...common, NODE_ENV: "production", LOG_LEVEL: setting("LOG_LEVEL", "info") },
    },
  ],
};
