// Learning-rate schedule: linear warm-up then cosine decay, evaluated per RL step. Each policy
// advances its schedule once per training step (not once per optimizer mini-batch), so Shared-
// and Isolated-Policy runs of the same length follow the same curve whatever their row counts.

/** Learning rate at 0-based `step` of `total` steps. */
export function learningRate(step: number, total: number, peak: number, warmup: number, minRatio = 0): number {
  if (warmup > 0 && step < warmup) return (peak * (step + 1)) / warmup;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, Math.max(0, (step - warmup) / span));
  const floor = peak * minRatio;
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
