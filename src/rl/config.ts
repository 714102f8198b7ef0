// The training run configuration: every knob of `troupe train`, with the paper's reference values
// (DESIGN.md) where they apply and CPU-sized defaults for batch shapes. Validation lives in
// src/cli/validate.ts; this file is the single source of the field list and defaults.

import type { ScheduleChoice } from '../rollout/schedule.js';

/** Workflows the trainer can run. */
export const WORKFLOWS = ['single', 'voting', 'eval-opt', 'orch-workers'] as const;
/** Built-in tasks (a JSONL file can be given with `taskFile`). */
export const TASKS = ['math', 'code'] as const;
/** CPU model presets (DESIGN.md). */
export const PRESETS = ['tiny', 'small', 'medium'] as const;
/** Loss aggregation modes (native names). */
export const LOSS_AGGS = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'constant'] as const;
/** KL estimators. */
export const KL_ESTIMATORS = ['none', 'k1', 'k2', 'k3'] as const;
/** Advantage grouping: (prompt, role) pooled as in the paper, or per turn (AT-GRPO). */
export const GROUPINGS = ['role', 'role-turn'] as const;
/** Task difficulty presets (see src/rl/setup.ts for what each sets). */
export const DIFFICULTIES = ['easy', 'medium', 'hard'] as const;
/** Credit assignment: final outcome to every call, or per-role rewards. */
export const CREDITS = ['outcome', 'role'] as const;

/** Role -> policy routing: a named table or an explicit mapping. */
export type PolicyRouting = 'shared' | 'isolated' | Record<string, string>;

/** Everything a training run needs. */
export interface TrainConfig {
  task: (typeof TASKS)[number];
  /** GSM8K/DAPO-style JSONL file; replaces the generated math problems when set. */
  taskFile: string | null;
  /** Problem difficulty: easy suits the CPU presets' minutes-long warm-up; medium is the task default. */
  difficulty: (typeof DIFFICULTIES)[number];
  workflow: (typeof WORKFLOWS)[number];
  policy: PolicyRouting;
  preset: (typeof PRESETS)[number];
  seed: number;
  /** RL steps (each: B prompts x G rollouts, then one optimizer update per policy and epoch). */
  steps: number;
  promptsPerStep: number;
  groupSize: number;
  /** Sequences per optimizer mini-batch; a step with more rows does several updates. */
  miniBatch: number;
  epochs: number;
  lr: number;
  warmupSteps: number;
  /** Cosine decays to lr * minLrRatio at the last step. */
  minLrRatio: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  gradClip: number;
  clipLow: number;
  clipHigh: number;
  dualClip: number;
  lossAgg: (typeof LOSS_AGGS)[number];
  klEstimator: (typeof KL_ESTIMATORS)[number];
  /** KL-to-base coefficient: one number for every role or one per role (paper's mitigation). */
  klCoef: number | Record<string, number>;
  entropyCoef: number;
  grouping: (typeof GROUPINGS)[number];
  credit: (typeof CREDITS)[number];
  /** Drop groups whose rewards are all equal (they carry no signal under GRPO). */
  dropEqualGroups: boolean;
  /** Coherence damping lambda per role or for all (0 = off): g *= 1 - lambda*clamp(cos, 0, 1). */
  coherenceDamping: number | Record<string, number>;
  /** Decay of each role's running-average gradient used for the coherence diagnostic. */
  coherenceDecay: number;
  temperature: number;
  topP: number;
  topK: number;
  /**
   * 0: fresh RL problems every step. N > 0: cycle through a fixed pool of N problems (a sanity
   * check that RL can fit what it trains on; the end-to-end test uses it).
   */
  rlProblemPool: number;
  /** Completion budget per role call (tokens). */
  maxNewTokens: number;
  /** Held-out evaluation every N steps (0 = only before and after training). */
  evalEvery: number;
  evalProblems: number;
  /** Also evaluate with greedy decoding. */
  evalGreedy: boolean;
  /** Full transcripts saved per evaluation. */
  transcripts: number;
  checkpointEvery: number;
  outDir: string;
  /** Resume from the latest checkpoint in outDir. */
  resume: boolean;
  /** Rollout worker threads (Piscina pool size); 0 = auto. */
  workers: number;
  /** Native threads per call; 0 = cores / workers. */
  threadsPerCall: number;
  /** How the pool runs each stage: 'auto' measures 'split' (side by side) against 'serial'. */
  rolloutSchedule: ScheduleChoice;
  /** Base-model warm-up: steps of supervised training on demonstrations (cached per key). */
  baseSteps: number;
  baseLr: number;
  /** Where base models are cached (shared across runs). */
  cacheDir: string;
  /** Load the initial policy from a Hugging Face directory instead of building a base. */
  model: string | null;
}

/**
 * The defaults of `troupe train`: tiny preset, easy math, the single-agent workflow, shared
 * policy, 200 GRPO steps. That is the configuration in which the CPU base model gains reliably
 * within the 10-minute budget; multi-agent workflows are one flag away (--workflow voting).
 */
export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  task: 'math',
  taskFile: null,
  difficulty: 'easy',
  workflow: 'single',
  policy: 'shared',
  preset: 'tiny',
  seed: 1,
  steps: 200,
  promptsPerStep: 16,
  groupSize: 8,
  miniBatch: 512,
  epochs: 1,
  lr: 2e-4,
  warmupSteps: 15,
  minLrRatio: 0,
  beta1: 0.9,
  beta2: 0.999,
  weightDecay: 0.01,
  gradClip: 1.0,
  clipLow: 0.2,
  clipHigh: 0.28,
  dualClip: 3.0,
  lossAgg: 'seq-mean-token-mean',
  klEstimator: 'none',
  klCoef: 0,
  entropyCoef: 0,
  grouping: 'role',
  credit: 'outcome',
  dropEqualGroups: false,
  coherenceDamping: 0,
  coherenceDecay: 0.9,
  temperature: 0.7,
  topP: 1.0,
  topK: 0,
  rlProblemPool: 0,
  maxNewTokens: 64,
  evalEvery: 20,
  evalProblems: 500,
  evalGreedy: true,
  transcripts: 3,
  checkpointEvery: 50,
  outDir: 'runs/latest',
  resume: false,
  workers: 0,
  threadsPerCall: 0,
  rolloutSchedule: 'auto',
  baseSteps: 2000,
  baseLr: 2e-3,
  cacheDir: '.cache/troupe',
  model: null,
} satisfies TrainConfig);
