/** Tiny dependency-free SVG charts: a line chart (log axes optional) and a horizontal bar chart. */

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function niceNumber(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return `${+v.toPrecision(3)}`;
  return `${+v.toPrecision(2)}`;
}

function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const span = max - min || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const mult = [1, 2, 5, 10].find((m) => span / (m * step) <= 6) ?? 10;
  const s = mult * step;
  const out: number[] = [];
  for (let v = Math.ceil(min / s) * s; v <= max + 1e-9; v += s) out.push(v);
  return out;
}

export interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  logY?: boolean;
  series: Series[];
}

export function lineChart(c: LineChart): string {
  const W = 760;
  const H = 440;
  const L = 70;
  const R = 200;
  const T = 40;
  const B = 50;
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.logX || x > 0) && (!c.logY || y > 0));
  if (pts.length === 0) return emptyChart(c.title, W, H);
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (c.logY) {
    y0 = 10 ** Math.floor(Math.log10(y0));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else {
    y0 = 0;
    y1 = y1 * 1.1 || 1;
  }
  if (c.logX) {
    x0 = x0 / 1.2;
    x1 = x1 * 1.2;
  } else if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  const fx = (x: number): number => L + ((c.logX ? Math.log(x / x0) / Math.log(x1 / x0) : (x - x0) / (x1 - x0)) * (W - L - R));
  const fy = (y: number): number => H - B - ((c.logY ? Math.log(y / y0) / Math.log(y1 / y0) : (y - y0) / (y1 - y0)) * (H - T - B));
  const parts: string[] = [];
  parts.push(`<text x="${W / 2 - R / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(c.title)}</text>`);
  for (const t of ticks(y0, y1, c.logY ?? false)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${fy(t).toFixed(1)}" y2="${fy(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(fy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${niceNumber(t)}</text>`);
  }
  for (const t of ticks(x0, x1, c.logX ?? false)) {
    parts.push(`<line x1="${fx(t).toFixed(1)}" x2="${fx(t).toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`);
    parts.push(`<text x="${fx(t).toFixed(1)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${niceNumber(t)}</text>`);
  }
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle" font-size="12">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(c.yLabel)}</text>`);
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.logX || x > 0) && (!c.logY || y > 0));
    if (ok.length > 0) {
      const d = ok.map(([x, y], k) => `${k === 0 ? "M" : "L"}${fx(x).toFixed(1)},${fy(y).toFixed(1)}`).join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ""}/>`);
      for (const [x, y] of ok) parts.push(`<circle cx="${fx(x).toFixed(1)}" cy="${fy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    const ly = T + 10 + i * 20;
    parts.push(`<line x1="${W - R + 12}" x2="${W - R + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ""}/>`);
    parts.push(`<text x="${W - R + 42}" y="${ly + 4}" font-size="11">${esc(s.name)}</text>`);
  });
  return wrap(W, H, parts);
}

export interface Bar {
  label: string;
  value: number;
  note?: string;
}

export function barChart(title: string, unit: string, bars: Bar[]): string {
  const W = 760;
  const rowH = 28;
  const L = 250;
  const R = 130;
  const T = 40;
  const H = T + bars.length * rowH + 30;
  const good = bars.filter((b) => Number.isFinite(b.value));
  if (good.length === 0) return emptyChart(title, W, 120);
  const max = Math.max(...good.map((b) => b.value)) || 1;
  const parts: string[] = [`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`];
  bars.forEach((b, i) => {
    const y = T + i * rowH;
    const w = Number.isFinite(b.value) ? (b.value / max) * (W - L - R) : 0;
    parts.push(`<text x="${L - 8}" y="${y + 18}" text-anchor="end" font-size="12">${esc(b.label)}</text>`);
    parts.push(`<rect x="${L}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowH - 10}" fill="${COLORS[i % COLORS.length]}"/>`);
    const text = Number.isFinite(b.value) ? `${niceNumber(b.value)} ${unit}${b.note ? ` ${b.note}` : ""}` : "n/a";
    parts.push(`<text x="${L + w + 6}" y="${y + 18}" font-size="11">${esc(text)}</text>`);
  });
  return wrap(W, H, parts);
}

function emptyChart(title: string, W: number, H: number): string {
  return wrap(W, H, [
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="13">no data</text>`,
  ]);
}

function wrap(W: number, H: number, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}
