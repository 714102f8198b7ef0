// One metrics row per training step: flat columns so the Arrow metrics file is easy to query
// (`<role>.grad_mass`, `<policy>.mem.weights`, ...). Apart from the process-local columns below
// (timings, activation bytes), every value is a pure function of (config, seed) and is reproduced
// exactly by --resume.
import type { Policy } from '../native/policy.js';
import type { EvalRecord } from './run-state.js';
import type { PolicyStepStats, RoleStepStats } from './update.js';

/** A flat metrics row: numbers, or null where a value does not exist at this step. */
export type MetricsRow = Record<string, number | null>;

/** Inputs of `metricsRow`. */
export interface MetricsInputs {
  step: number;
  lr: number;
  trainAccuracy: number;
  rewardMean: number;
  evalRec: EvalRecord | null;
  rolloutSeconds: number;
  gradingSeconds: number;
  trainingSeconds: number;
  newTokens: number;
  trainedTokens: number;
  rows: number;
  droppedRows: number;
  roles: readonly RoleStepStats[];
  /** Every role of the workflow, so each step has the same columns (null where a role idled). */
  allRoles: readonly string[];
  policySteps: readonly PolicyStepStats[];
  policies: ReadonlyMap<string, Policy>;
}

/**
 * Columns that describe the process rather than the run: wall-clock timings, and memory bytes
 * (activation caches grow to the largest batch a process has seen; gradient buffers appear at a
 * process's first accumulate), so a resumed process reports different bytes for the same step.
 * Resume-equality checks skip them; every other column is reproduced exactly.
 */
export function isProcessLocalColumn(name: string): boolean {
  return name.endsWith('_seconds') || name.endsWith('_per_s') || name.includes('.mem.');
}

/** Builds the step's metrics row. */
export function metricsRow(m: MetricsInputs): MetricsRow {
  const row: MetricsRow = {
    step: m.step,
    lr: m.lr,
    train_accuracy: m.trainAccuracy,
    reward_mean: m.rewardMean,
    accuracy: m.evalRec ? m.evalRec.accuracy : null,
    greedy_accuracy: m.evalRec ? m.evalRec.greedyAccuracy : null,
    rows: m.rows,
    dropped_rows: m.droppedRows,
    new_tokens: m.newTokens,
    trained_tokens: m.trainedTokens,
    rollout_seconds: m.rolloutSeconds,
    grading_seconds: m.gradingSeconds,
    training_seconds: m.trainingSeconds,
    rollout_tokens_per_s: m.newTokens / Math.max(1e-9, m.rolloutSeconds),
    training_tokens_per_s: m.trainedTokens / Math.max(1e-9, m.trainingSeconds),
  };
  const cols = ['rows', 'trained_rows', 'response_len', 'entropy', 'clip_frac', 'kl_rollout', 'kl_ref', 'grad_norm', 'grad_mass', 'cos_ema', 'damping', 'loss'];
  for (const role of m.allRoles) for (const col of cols) row[`${role}.${col}`] = null;
  for (const r of m.roles) {
    const p = `${r.role}.`;
    row[`${p}rows`] = r.rows;
    row[`${p}trained_rows`] = r.trainedRows;
    row[`${p}response_len`] = r.meanResponseLength;
    row[`${p}entropy`] = r.entropy;
    row[`${p}clip_frac`] = r.clipFrac;
    row[`${p}kl_rollout`] = r.klRollout;
    row[`${p}kl_ref`] = r.klRef;
    row[`${p}grad_norm`] = r.gradNorm;
    row[`${p}grad_mass`] = r.gradMass;
    row[`${p}cos_ema`] = r.cosEma;
    row[`${p}damping`] = r.dampingScale;
    row[`${p}loss`] = r.loss;
  }
  for (const s of m.policySteps) {
    row[`${s.policy}.updates`] = s.updates;
    row[`${s.policy}.grad_norm_total`] = s.gradNorm;
  }
  for (const [name, pol] of m.policies) {
    const mem = pol.memory();
    // Current bytes per category (peaks are per process, so a resumed run would differ).
    for (const [cat, bytes] of Object.entries(mem.current)) row[`${name}.mem.${cat}`] = bytes;
  }
  return row;
}
