import net from "node:net";
import type { Config } from "./schema";

/** The origin that allows every site: honoured (stock Socket.IO users expect it) and warned about. */
export const ANY_ORIGIN = "*";

function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  if (bare === "localhost") return true;
  if (net.isIPv4(bare)) return bare.startsWith("127.");
  if (net.isIPv6(bare)) return bare === "::1" || /^::ffff:127\./i.test(bare);
  return false;
}

/** A setting that works but exposes the host, and why. */
export interface UnsafeSetting {
  setting: keyof Config;
  message: string;
}

/**
 * Settings that work but expose the host. The primary logs them at start; they are not errors
 * because each has a legitimate use (a private network).
 */
export function unsafeSettings(config: Config): UnsafeSetting[] {
  const warnings: UnsafeSetting[] = [];
  if (config.redisUrl !== undefined) {
    const url = new URL(config.redisUrl);
    if (url.protocol === "redis:" && url.password !== "" && !isLoopback(url.hostname)) {
      warnings.push({ setting: "redisUrl", message: `the Redis password travels in clear text to ${url.hostname}; use rediss:// (TLS) off this machine` });
    }
  }
  if (config.corsOrigins.includes(ANY_ORIGIN)) {
    warnings.push({ setting: "corsOrigins", message: "* lets any web site open sockets to this server (without cookies); list the front-end origins instead" });
  }
  if (config.adminPort !== undefined && !isLoopback(config.adminHost) && config.adminUiUser === undefined) {
    warnings.push({ setting: "adminHost", message: `the admin listener (/metrics) is reachable on ${config.adminHost} without authentication; keep it on loopback or firewall it` });
  }
  return warnings;
}
