/**
 * `npm run probes [-- name ...]`: runs issue 10's attacks against fresh hosts with the default
 * settings and prints each figure next to the one measured before the limits existed.
 */
import { installCleanup, stopAll } from "../lib/procs.js";
import { PROBES, type ProbeResult } from "./attacks.js";

async function main(): Promise<void> {
  installCleanup();
  const names = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const selected = names.length > 0 ? names : Object.keys(PROBES);
  const unknown = selected.filter((n) => !(n in PROBES));
  if (unknown.length > 0) throw new Error(`unknown probe(s) ${unknown.join(", ")}; known: ${Object.keys(PROBES).join(", ")}`);
  const results: ProbeResult[] = [];
  for (const name of selected) {
    const started = Date.now();
    try {
      const result = await PROBES[name]();
      results.push(result);
      process.stdout.write(`${name} (${((Date.now() - started) / 1000).toFixed(0)} s): ${result.after}\n`);
    } catch (err) {
      results.push({ probe: name, before: "", after: `probe failed: ${(err as Error).message}` });
      process.stdout.write(`${name}: probe failed: ${(err as Error).stack}\n`);
    }
  }
  process.stdout.write("\n| probe | before | after |\n|---|---|---|\n");
  for (const r of results) process.stdout.write(`| ${r.probe} | ${r.before} | ${r.after} |\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => void stopAll());
