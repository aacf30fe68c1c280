/** Entry point of a worker process, forked by the primary with its validated config in the environment. */
import type { Config } from "../config/schema";
import { WORKER_CONFIG_ENV as CONFIG_ENV } from "../ipc/messages";
import { sendToPrimary } from "../ipc/messages";
import { EXIT_FATAL_STARTUP, runWorker } from "./worker";

const raw = process.env[CONFIG_ENV];
if (!raw) {
  console.error(`sockfleet worker: ${CONFIG_ENV} is not set; start sockfleet through its CLI`);
  process.exit(2);
}
runWorker(Object.freeze(JSON.parse(raw)) as Config).catch((err: unknown) => {
  // Anything that escapes set-up is a bug or a broken install: say so and let the primary decide.
  const message = `worker set-up failed: ${(err as Error)?.stack ?? String(err)}`;
  console.error(message);
  sendToPrimary({ sf: "fatal", message });
  process.exit(EXIT_FATAL_STARTUP);
});
