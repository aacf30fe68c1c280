import type { Prng } from "./prng";

/**
 * Hostile JSON texts for the arguments of Socket.IO packets. They are built as text, not as objects
 * passed to JSON.stringify, so that nesting 100,000 levels deep costs the fuzzer nothing and cannot
 * overflow its own stack.
 */

const ODD_STRINGS = [
  '""',
  '"\\u0000"',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"__proto__"',
  '"constructor"',
  '"chat message"',
  '"connect"',
  '"disconnect"',
  '"\\u202e\\ufeff"',
  '"../../../../etc/passwd"',
  '"%zz%00"',
];
const ODD_NUMBERS = ["0", "-0", "1e308", "-1e308", "5e-324", "9007199254740993", "-1", "1.5", "123456789012345678901234567890"];
const ODD_OBJECTS = [
  "{}",
  "null",
  "true",
  "false",
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"_placeholder":true,"num":0}',
  '{"_placeholder":true,"num":99999}',
  '{"_placeholder":"yes","num":"0"}',
  '{"room":"","text":null}',
  '{"room":{"toString":1},"text":[]}',
  '{"type":"Buffer","data":[1,2,3]}',
  '{"a":1,"a":2}',
];

export const oddScalar = (rng: Prng): string => rng.pick(rng.chance(0.5) ? ODD_STRINGS : rng.chance(0.5) ? ODD_NUMBERS : ODD_OBJECTS);

/** `[[[[...]]]]` or `{"a":{"a":...}}`, `depth` levels. */
export function deepNesting(rng: Prng, depth: number): string {
  return rng.chance(0.5) ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "0" + "}".repeat(depth);
}

/** A string of `length` characters, sometimes non-ASCII. */
export function longString(rng: Prng, length: number): string {
  return JSON.stringify(rng.chance(0.8) ? "x".repeat(length) : "\u00e9\u4e2d".repeat(Math.ceil(length / 2)).slice(0, length));
}

/** A wide object or array: many keys or elements at one level. */
export function wide(rng: Prng, count: number): string {
  if (rng.chance(0.5)) return "[" + Array.from({ length: count }, () => "0").join(",") + "]";
  return "{" + Array.from({ length: count }, (_, i) => `"k${i}":${i}`).join(",") + "}";
}

/** Any hostile argument, mostly small (the packet count, not bandwidth, should dominate a run). */
export function hostileArg(rng: Prng): string {
  return rng.weighted<() => string>([
    [12, () => oddScalar(rng)],
    [1, () => deepNesting(rng, rng.chance(0.9) ? rng.int(10, 300) : rng.int(300, 2_000))],
    [1, () => longString(rng, rng.chance(0.9) ? rng.int(0, 500) : rng.int(500, 10_000))],
    [1, () => wide(rng, rng.chance(0.9) ? rng.int(10, 100) : rng.int(100, 1_000))],
  ])();
}
