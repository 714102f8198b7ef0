// Number and duration formatting shared by progress lines, summaries and sweep tables.
import type { TrainSummary } from '../rl/hooks.js';
import { keyValueBlock } from './table.js';

/** Seconds as `42s`, `3m07s` or `2h05m`; `-` for unknown. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** An accuracy or reward with 3 decimals; `-` for null. */
export function formatRate(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(3);
}

/** A signed difference with 3 decimals (`+0.108`). */
export function formatSigned(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
}

/** A throughput as `850`, `12.3k` or `1.20M`. */
export function formatCount(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (x < 1000) return x.toFixed(0);
  if (x < 1e6) return `${(x / 1e3).toFixed(1)}k`;
  return `${(x / 1e6).toFixed(2)}M`;
}

/** `+0.108 [+0.060, +0.156]`: the paired delta with its 95% CI. */
export function formatDelta(d: TrainSummary['delta']): string {
  return `${formatSigned(d.mean)} [${formatSigned(d.ci95[0])}, ${formatSigned(d.ci95[1])}]`;
}

/** The end-of-run table: base / peak / final accuracy, delta with CI, greedy accuracies, run dir. */
export function formatSummary(s: TrainSummary): string {
  const rows: [string, string][] = [
    ['base accuracy', `${formatRate(s.base.accuracy)}  (n=${s.base.n})`],
    ['peak accuracy', `${formatRate(s.peak.accuracy)}  (step ${s.peak.step})`],
    ['final accuracy', `${formatRate(s.final.accuracy)}  (n=${s.final.n})`],
    ['delta (95% CI)', formatDelta(s.delta)],
  ];
  if (s.greedy) rows.push(['greedy accuracy', `${formatRate(s.greedy.base)} -> ${formatRate(s.greedy.final)}  (base -> final)`]);
  rows.push(['time', formatDuration(s.seconds)], ['run dir', s.outDir]);
  return keyValueBlock(rows);
}
