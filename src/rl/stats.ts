// Small statistics for reports: means and a paired 95% confidence interval.

/** Arithmetic mean (0 for an empty list). */
export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/**
 * Mean difference b - a over paired observations and its 95% CI (normal approximation with the
 * sample standard deviation of the differences). The evaluation problems are the same before and
 * after training, so pairing removes the problem-difficulty variance.
 */
export function pairedDelta(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; ci95: [number, number] } {
  if (a.length !== b.length) throw new Error(`pairedDelta: ${a.length} vs ${b.length} observations`);
  const n = a.length;
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = b[i] - a[i];
  const m = mean(d);
  let v = 0;
  for (let i = 0; i < n; i++) v += (d[i] - m) ** 2;
  const sd = n > 1 ? Math.sqrt(v / (n - 1)) : 0;
  const half = n > 0 ? (1.96 * sd) / Math.sqrt(n) : 0;
  return { mean: m, ci95: [m - half, m + half] };
}
