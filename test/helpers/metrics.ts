import assert from "node:assert/strict";
import type { SockfleetHost } from "./sockfleet";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format (the subset prom-client writes). */
export function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

export function values(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

export function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return values(samples, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/** Scrapes the admin listener of a host started with `--admin-port 0`. */
export async function scrapeAdmin(host: SockfleetHost): Promise<Sample[]> {
  const ready = host.logs.find((l) => l.msg === "ready");
  assert.ok(ready?.adminPort, "the host was started with --admin-port");
  const res = await fetch(`http://127.0.0.1:${ready.adminPort as number}/metrics`);
  assert.equal(res.status, 200);
  return parse(await res.text());
}
