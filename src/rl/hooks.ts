// The contract between the trainer and whoever drives it (the CLI, a sweep, a test): progress
// events and log lines go out through hooks, and the run ends with a summary that is also written
// to <outDir>/summary.json. The trainer never prints; the driver decides how to show things.

/** One progress event: where the run is in its current phase and the latest numbers. */
export interface StepProgress {
  /** Steps done: base warm-up steps in the `base` phase, RL steps done in `eval` and `train`. */
  step: number;
  /** Total of the same count: base warm-up steps, or RL steps. */
  steps: number;
  /** Held-out accuracy of the latest evaluation, null until one exists. */
  accuracy: number | null;
  /** Mean reward of the latest step. */
  reward: number;
  tokensPerSecond: number;
  /** Seconds since the run started. */
  seconds: number;
  /** Base-model warm-up, a held-out evaluation, or an RL step. */
  phase: 'base' | 'eval' | 'train';
  message?: string;
}

/** Callbacks the trainer calls; every one is optional. */
export interface TrainHooks {
  onProgress?(p: StepProgress): void;
  onLog?(line: string): void;
}

/** What a finished run reports (and writes to <outDir>/summary.json). */
export interface TrainSummary {
  outDir: string;
  base: { accuracy: number; n: number };
  peak: { accuracy: number; step: number };
  final: { accuracy: number; n: number };
  /** Paired final - base accuracy difference on the same held-out problems. */
  delta: { mean: number; ci95: [number, number] };
  greedy?: { base: number; final: number };
  seconds: number;
}
