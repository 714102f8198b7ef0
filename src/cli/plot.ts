// The report's charts, built from whatever metric columns a run wrote: accuracy and reward vs
// step, each role's share of the gradient mass (how SP capture shows up), per-role gradient norms,
// and each role's coherence (cos of its gradient with its running average; how IP pile-up shows up).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readMetrics, rolesWith, type MetricsColumns } from './metrics.js';
import { lineChart, type Series } from './svg.js';

/** One chart ready to write: file name (no directory) and SVG text. */
export interface Plot {
  file: string;
  svg: string;
}

function stepsOf(m: MetricsColumns): number[] {
  const step = m.columns.get('step');
  return step ? step.map((s, i) => s ?? i) : Array.from({ length: m.rows }, (_, i) => i);
}

function series(name: string, xs: number[], ys: readonly (number | null)[]): Series {
  return { name, points: xs.map((x, i) => ({ x, y: ys[i] ?? null })) };
}

/** Accuracy (and any other top-level *accuracy* column) with the mean reward, against step. */
function accuracyPlot(m: MetricsColumns, xs: number[]): Plot | null {
  const names = [...m.columns.keys()].filter((k) => !k.includes('.') && (/accuracy/.test(k) || k === 'reward_mean'));
  if (names.length === 0) return null;
  // Accuracy first so it gets the first colour in every report.
  names.sort((a, b) => Number(b === 'accuracy') - Number(a === 'accuracy'));
  return {
    file: 'accuracy.svg',
    svg: lineChart({
      title: 'Held-out accuracy and mean reward',
      xLabel: 'step',
      yLabel: 'accuracy / reward',
      series: names.map((n) => series(n, xs, m.columns.get(n)!)),
      yDomain: [0, 1],
    }),
  };
}

/** Each role's grad_mass divided by the sum over roles at that step. */
function massSharePlot(m: MetricsColumns, xs: number[]): Plot | null {
  const roles = rolesWith(m, 'grad_mass');
  if (roles.length === 0) return null;
  const cols = roles.map((r) => m.columns.get(`${r}.grad_mass`)!);
  const shares = roles.map(() => new Array<number | null>(m.rows).fill(null));
  for (let i = 0; i < m.rows; i++) {
    let total = 0;
    for (const c of cols) total += c[i] ?? 0;
    if (total <= 0) continue;
    cols.forEach((c, j) => (shares[j][i] = c[i] === null ? null : c[i]! / total));
  }
  return {
    file: 'grad-mass.svg',
    svg: lineChart({
      title: 'Share of gradient mass per role',
      xLabel: 'step',
      yLabel: 'share of total gradient mass',
      series: roles.map((r, j) => series(r, xs, shares[j])),
      yDomain: [0, 1],
    }),
  };
}

function perRolePlot(m: MetricsColumns, xs: number[], metric: string, file: string, title: string, yLabel: string, yDomain?: [number, number]): Plot | null {
  const roles = rolesWith(m, metric);
  if (roles.length === 0) return null;
  return {
    file,
    svg: lineChart({ title, xLabel: 'step', yLabel, series: roles.map((r) => series(r, xs, m.columns.get(`${r}.${metric}`)!)), yDomain }),
  };
}

/** Every chart the metrics support (charts whose columns are absent are left out). */
export function buildPlots(m: MetricsColumns): Plot[] {
  const xs = stepsOf(m);
  return [
    accuracyPlot(m, xs),
    massSharePlot(m, xs),
    perRolePlot(m, xs, 'grad_norm', 'grad-norm.svg', 'Gradient norm per role', 'gradient norm (before clipping)'),
    perRolePlot(m, xs, 'cos_ema', 'coherence.svg', 'Coherence per role: cos(gradient, running average)', 'cosine', [-1, 1]),
  ].filter((p): p is Plot => p !== null);
}

/** Reads the metrics file, writes its charts next to it, and returns the written paths. */
export function writePlots(metricsFile: string): string[] {
  const dir = dirname(metricsFile);
  return buildPlots(readMetrics(metricsFile)).map((p) => {
    const path = join(dir, p.file);
    writeFileSync(path, p.svg);
    return path;
  });
}
