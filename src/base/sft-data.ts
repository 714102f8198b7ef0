// Supervised warm-up data: demonstrations of every role of every built-in workflow, rendered
// through the same chat code as rollouts. Only training-split problems are used.
import { renderChatTokens, renderCompletionTokens } from '../chat/render.js';
import { poolProblems } from '../tasks/pools.js';
import { rngFor } from '../tasks/rng.js';
import type { Task } from '../tasks/task.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { demonstrateEpisode, demoTargets } from '../workflows/demos.js';
import { createWorkflow, WORKFLOW_NAMES } from '../workflows/registry.js';

/** One supervised example: prompt tokens (not trained) and completion tokens (trained). */
export interface SftExample {
  role: string;
  prompt: Int32Array;
  completion: Int32Array;
}

/** Options of `buildSftExamples`. */
export interface SftDataOptions {
  /** Training problems to demonstrate (each through every workflow). */
  problems: number;
  seed: number;
  /** Longest prompt + completion kept (longer examples are skipped, counted in `skipped`). */
  maxTokens: number;
}

/** Demonstrations of all workflows' roles on `problems` training problems. */
export async function buildSftExamples(
  task: Task,
  tokenizer: Tokenizer,
  opts: SftDataOptions,
): Promise<{ examples: SftExample[]; skipped: number }> {
  const problems = poolProblems(task, 'warmup', opts.problems, opts.seed + 7919);
  const examples: SftExample[] = [];
  let skipped = 0;
  for (const name of WORKFLOW_NAMES) {
    const wf = createWorkflow(name, task.name.includes('code') ? { maxRounds: 2 } : {});
    for (const p of problems) {
      const ep = await demonstrateEpisode(wf, task, p, rngFor('sft', opts.seed, name, p.id));
      for (const t of demoTargets(ep)) {
        const prompt = renderChatTokens(tokenizer, t.messages, { addGenerationPrompt: true });
        const completion = renderCompletionTokens(tokenizer, t.completion);
        if (prompt.length + completion.length > opts.maxTokens) {
          skipped++;
          continue;
        }
        examples.push({ role: t.role, prompt, completion });
      }
    }
  }
  return { examples, skipped };
}
