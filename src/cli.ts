#!/usr/bin/env node
import { ConfigError, loadConfig, USAGE } from "./config/load";
import { main } from "./main";

function run(): void {
  let result;
  try {
    result = loadConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sockfleet: ${err.message}\n`);
      process.exit(ConfigError.exitCode);
    }
    throw err;
  }
  if (result.help) {
    process.stdout.write(USAGE);
    return;
  }
  main(result.config).catch((err: unknown) => {
    process.stderr.write(`sockfleet: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}

run();
