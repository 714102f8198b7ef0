// Turns a TrainConfig into the objects of a run: task, tokenizer, workflow, routing table.
import { CodeTask } from '../tasks/code/task.js';
import { loadMathJsonl } from '../tasks/math/jsonl.js';
import { MathTask } from '../tasks/math/task.js';
import type { Task } from '../tasks/task.js';
import { ByteTokenizer } from '../tokenizer/byte-tokenizer.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { Workflow } from '../workflows/api.js';
import { createWorkflow } from '../workflows/registry.js';
import type { TrainConfig } from './config.js';
import { makeRouting, type RoutingTable } from './routing.js';

/** The task a config names. */
export function makeTask(c: Pick<TrainConfig, 'task' | 'taskFile'>): Task {
  if (c.taskFile) return loadMathJsonl(c.taskFile);
  if (c.task === 'math') return new MathTask();
  if (c.task === 'code') return new CodeTask();
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
