// A hand-written SVG line chart (no dependency): axes with round-number ticks, grid, one polyline
// per series, point markers for sparse series, and a legend to the right. Null points are skipped
// and the line joins the remaining ones, which is what accuracy measured every N steps needs.

/** One line of a chart. */
export interface Series {
  name: string;
  points: readonly { x: number; y: number | null }[];
}

/** What to draw; `yDomain` fixes the y range (otherwise it fits the data). */
export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  yDomain?: [number, number];
  width?: number;
  height?: number;
}

// Tableau 10: distinguishable and colour-blind friendly enough for up to ten roles.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const MARGIN = { left: 64, right: 170, top: 44, bottom: 52 };
const MARKER_LIMIT = 60;

/** Escapes text for SVG content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** About `count` round tick values (1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function extent(values: number[], fallback: [number, number]): [number, number] {
  if (values.length === 0) return fallback;
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

const f = (x: number) => x.toFixed(1);

/** The chart as a standalone SVG document. */
export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 760, H = spec.height ?? 420;
  const pw = W - MARGIN.left - MARGIN.right, ph = H - MARGIN.top - MARGIN.bottom;
  const series = spec.series.map((s) => ({ name: s.name, pts: s.points.filter((p): p is { x: number; y: number } => p.y !== null && Number.isFinite(p.y) && Number.isFinite(p.x)) }));
  const all = series.flatMap((s) => s.pts);
  const [x0, x1] = extent(all.map((p) => p.x), [0, 1]);
  const [y0, y1] = spec.yDomain ?? extent(all.map((p) => p.y), [0, 1]);
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => MARGIN.top + ph - ((y - y0) / (y1 - y0)) * ph;

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);

  out.push(`<g class="grid" stroke="#e6e6e6" stroke-width="1">`);
  const yt = niceTicks(y0, y1).filter((v) => v >= y0 - 1e-12 && v <= y1 + 1e-12);
  const xt = niceTicks(x0, x1, 8).filter((v) => v >= x0 - 1e-12 && v <= x1 + 1e-12);
  for (const v of yt) out.push(`<line x1="${MARGIN.left}" y1="${f(sy(v))}" x2="${MARGIN.left + pw}" y2="${f(sy(v))}"/>`);
  for (const v of xt) out.push(`<line x1="${f(sx(v))}" y1="${MARGIN.top}" x2="${f(sx(v))}" y2="${MARGIN.top + ph}"/>`);
  out.push(`</g>`);

  out.push(`<g class="axes" stroke="#333333" stroke-width="1">`);
  out.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top + ph}" x2="${MARGIN.left + pw}" y2="${MARGIN.top + ph}"/>`);
  out.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + ph}"/>`);
  out.push(`</g>`);
  out.push(`<g class="ticks" fill="#333333">`);
  for (const v of yt) out.push(`<text x="${MARGIN.left - 6}" y="${f(sy(v) + 4)}" text-anchor="end">${escapeXml(tickLabel(v))}</text>`);
  for (const v of xt) out.push(`<text x="${f(sx(v))}" y="${MARGIN.top + ph + 16}" text-anchor="middle">${escapeXml(tickLabel(v))}</text>`);
  out.push(`</g>`);
  out.push(`<text x="${MARGIN.left + pw / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  out.push(`<text x="16" y="${MARGIN.top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + ph / 2})">${escapeXml(spec.yLabel)}</text>`);

  if (all.length === 0) {
    out.push(`<text x="${MARGIN.left + pw / 2}" y="${MARGIN.top + ph / 2}" text-anchor="middle" fill="#888888">no data</text>`);
  }
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const name = escapeXml(s.name);
    out.push(`<g class="series" data-series="${name}">`);
    if (s.pts.length > 1) {
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" points="${s.pts.map((p) => `${f(sx(p.x))},${f(sy(p.y))}`).join(' ')}"/>`);
    }
    // Sparse series (evaluations every N steps) read better with their points marked.
    if (s.pts.length <= MARKER_LIMIT) {
      for (const p of s.pts) out.push(`<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="3" fill="${color}"/>`);
    }
    out.push(`</g>`);
    const ly = MARGIN.top + 8 + i * 20;
    const lx = MARGIN.left + pw + 16;
    out.push(`<g class="legend"><line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="3"/><text x="${lx + 28}" y="${ly + 4}">${name}</text></g>`);
  });
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
