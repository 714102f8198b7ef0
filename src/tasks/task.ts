/** One problem of a task: what the model is shown and what the verifier needs to grade it. */
export interface Problem {
  /** Stable id, unique within a task (used as the GRPO group key together with the role). */
  id: string;
  /** The problem statement shown to the roles. */
  prompt: string;
  /** The reference answer in canonical form (math: a number; code: hidden tests are in `data`). */
  answer: string;
  /** Task-specific payload (code: hidden tests, reference program; math: the expression). */
  data?: unknown;
}

/** The verdict of a verifier on one output. Verifiers never throw on model output. */
export interface Grade {
  /** 1 for a correct final answer, 0 otherwise (malformed output is 0). */
  reward: number;
  correct: boolean;
  /** The answer extracted from the output, or null when none could be parsed. */
  extracted: string | null;
  /** Why the output got this reward ("ok", "no boxed answer", "test 3 failed", ...). */
  reason: string;
}

/** Deterministic random source used by task generators and demonstrations. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number;
  /** Uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/** A task: a problem source with train/held-out splits, a verifier and demonstration makers. */
export interface Task {
  /** Short name used in configs and reports ("math", "code", "gsm8k"). */
  readonly name: string;
  /** `count` problems of a split, deterministic in (split, seed, index); splits never overlap. */
  problems(split: 'train' | 'test', count: number, seed: number): Problem[];
  /** Grades a final answer text (the whole role output; the verifier finds the answer in it). */
  grade(problem: Problem, output: string): Grade;
  /** The final answer extracted from an output, or null ("last \\boxed{...}" for math). */
  extractAnswer(output: string): string | null;
  /** A correct solver output for the supervised warm-up (worked steps, then the final answer). */
  demonstrate(problem: Problem, rng: Rng): string;
  /** A plausible but wrong solver output (for evaluator/aggregator demonstrations). */
  demonstrateWrong(problem: Problem, rng: Rng): string;
}
