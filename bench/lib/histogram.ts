/**
 * Log-bucketed latency histogram in microseconds: bucket i holds values v with
 * floor(log2(v + 1) * STEPS) = i, so each bucket is about 3.5% wide. Merges by adding counts.
 */
const STEPS = 20;
export const BUCKETS = 36 * STEPS; // up to 2^36 us, about 19 hours

export interface HistogramData {
  counts: number[];
  total: number;
  max: number;
}

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  total = 0;
  max = 0;

  record(us: number): void {
    const v = us < 0 ? 0 : us;
    let i = Math.floor(Math.log2(v + 1) * STEPS);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]! += 1;
    this.total++;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.max = 0;
  }

  toData(): HistogramData {
    return { counts: Array.from(this.counts), total: this.total, max: this.max };
  }
}

export function mergeHistograms(parts: readonly HistogramData[]): HistogramData {
  const counts = new Array<number>(BUCKETS).fill(0);
  let total = 0;
  let max = 0;
  for (const p of parts) {
    for (let i = 0; i < BUCKETS; i++) counts[i]! += p.counts[i] ?? 0;
    total += p.total;
    if (p.max > max) max = p.max;
  }
  return { counts, total, max };
}

/** Value (us) at quantile q in [0, 1]: the geometric middle of the bucket that holds it. */
export function quantile(h: HistogramData, q: number): number {
  if (h.total === 0) return NaN;
  if (q >= 1) return h.max;
  const rank = q * h.total;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= rank && h.counts[i]! > 0) {
      const mid = Math.pow(2, (i + 0.5) / STEPS) - 1;
      return Math.min(mid, h.max);
    }
  }
  return h.max;
}
