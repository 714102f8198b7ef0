// Turns a TrainConfig into the objects of a run: task, tokenizer, workflow, routing table.
import type { CodeConfig } from '../tasks/code/generator.js';
import { CodeTask } from '../tasks/code/task.js';
import type { MathConfig } from '../tasks/math/generator.js';
import { loadMathJsonl } from '../tasks/math/jsonl.js';
import { MathTask } from '../tasks/math/task.js';
import type { Task } from '../tasks/task.js';
import { ByteTokenizer } from '../tokenizer/byte-tokenizer.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { Workflow } from '../workflows/api.js';
import { createWorkflow } from '../workflows/registry.js';
import type { TrainConfig } from './config.js';
import { makeRouting, type RoutingTable } from './routing.js';

/**
 * Difficulty presets. The generators' own defaults ("medium") need tens of millions of warm-up
 * tokens before a 1M-parameter model gets 20-70% right; "easy" is calibrated so the CPU presets'
 * few-minute warm-up lands in that band (README, "Base models").
 */
const MATH_DIFFICULTY: Record<TrainConfig['difficulty'], Partial<MathConfig>> = {
  easy: { ops: [1, 1], digits: [1, 2], mulDigits: [1, 1], operators: ['+', '-'], parens: 0, wordProblems: 0.2, distractors: 0 },
  medium: {},
  hard: { ops: [3, 4], digits: [2, 3], mulDigits: [1, 2], parens: 0.4, wordProblems: 0.3, distractors: 1 },
};
// Code "easy" holds out prompts, not programs: the enabled families have only a few hundred
// programs, and a program-level split leaves constants the warm-up never wrote, which a tiny model
// does not produce (level 1 under a program split: 0% held-out after the default warm-up; level 1
// under a prompt split: 74%, too easy for RL to show much). Held-out problems are still unseen
// problems: new example inputs and hidden tests, graded on those tests. "medium" and "hard" keep
// whole programs out, which is the generalisation a larger model is asked for.
const CODE_DIFFICULTY: Record<TrainConfig['difficulty'], Partial<CodeConfig>> = {
  easy: { level: 2, splitBy: 'prompt' },
  medium: { level: 2 },
  hard: { level: 3 },
};

/** The task a config names. */
export function makeTask(c: Pick<TrainConfig, 'task' | 'taskFile' | 'difficulty'>): Task {
  if (c.taskFile) return loadMathJsonl(c.taskFile);
  if (c.task === 'math') return new MathTask(MATH_DIFFICULTY[c.difficulty]);
  if (c.task === 'code') return new CodeTask(CODE_DIFFICULTY[c.difficulty]);
  throw new Error(`task: '${String(c.task)}' is not a task (expected math or code, or set taskFile)`);
}

/** The workflow a config names (code gets 2 evaluation rounds, math 3, as in the paper). */
export function makeWorkflow(c: Pick<TrainConfig, 'workflow'>, task: Task): Workflow {
  return createWorkflow(c.workflow, task.name.includes('code') ? { maxRounds: 2 } : { maxRounds: 3 });
}

/** The project's tokenizer for the CPU presets. */
export function makeTokenizer(): Tokenizer {
  return new ByteTokenizer();
}

/** Everything static about a run. */
export interface RunParts {
  task: Task;
  tokenizer: Tokenizer;
  workflow: Workflow;
  routing: RoutingTable;
}

/** Builds the static parts of a run from its config. */
export function makeRunParts(c: TrainConfig): RunParts {
  const task = makeTask(c);
  const workflow = makeWorkflow(c, task);
  return { task, tokenizer: makeTokenizer(), workflow, routing: makeRouting(c.policy, workflow.roles) };
}
