import cluster from "node:cluster";
import type { Config } from "./config/schema";
import { runPrimary } from "./primary/primary";

/** Starts sockfleet's primary; workers have their own entry point (worker/main.ts). */
export async function main(config: Config): Promise<void> {
  if (!cluster.isPrimary) throw new Error("sockfleet's main() runs in the primary; workers start from worker/main.js");
  await runPrimary(config);
}
