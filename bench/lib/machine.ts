/** What the run was measured on. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RedisServer } from "./redis.js";

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  redis: string;
  openFilesLimit: string;
  packages: Record<string, string>;
}

function packageVersion(root: string, name: string): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "?";
  } catch {
    return "not installed";
  }
}

export function describeMachine(root: string): Machine {
  const cpuinfo = fs.existsSync("/proc/cpuinfo") ? fs.readFileSync("/proc/cpuinfo", "utf8") : "";
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  let nofile = "?";
  try {
    nofile = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"))?.slice(1, 3).join(" / ") ?? "?";
  } catch {
    /* not Linux */
  }
  return {
    cpuModel: model.trim(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: RedisServer.version(),
    openFilesLimit: nofile,
    packages: Object.fromEntries(
      ["socket.io", "socket.io-client", "@socket.io/sticky", "@socket.io/cluster-adapter", "@socket.io/redis-adapter", "redis", "ws"].map((n) => [n, packageVersion(root, n)]),
    ),
  };
}
