/** Entry point of a worker process, forked by the primary with its validated config in the environment. */
import type { Config } from "../config/schema";
import { WORKER_CONFIG_ENV as CONFIG_ENV } from "../ipc/messages";
import { runWorker } from "./worker";

const raw = process.env[CONFIG_ENV];
if (!raw) {
  console.error(`sockfleet worker: ${CONFIG_ENV} is not set; start sockfleet through its CLI`);
  process.exit(2);
}
void runWorker(Object.freeze(JSON.parse(raw)) as Config);
