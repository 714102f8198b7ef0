// Held-out evaluation: pass@1 of the workflow's final answer, one episode per problem, at the
// sampling temperature (and optionally greedy). Call keys use steps >= 2^22 so evaluation draws
// never coincide with training draws.
import type { Problem, Task } from '../tasks/task.js';
import type { Workflow } from '../workflows/api.js';
import { executeEpisodes, type EpisodeResult } from '../workflows/executor.js';
import type { PolicyRouter, RoleSampler } from '../workflows/sampler.js';

/** First call-key step used by evaluations. */
export const EVAL_STEP_BASE = 1 << 22;

/** Result of one evaluation pass. */
export interface EvalResult {
  accuracy: number;
  /** 1/0 per problem, in problem order (for paired comparisons). */
  correct: Uint8Array;
  n: number;
  /** Mean completion tokens per role call. */
  meanCompletionTokens: number;
  /** Share of calls whose output needed a parse fallback. */
  fallbackRate: number;
  episodes: EpisodeResult[];
  seconds: number;
}

/** Inputs of `evaluate`. */
export interface EvalOptions {
  workflow: Workflow;
  task: Task;
  problems: readonly Problem[];
  sampler: RoleSampler;
  router: PolicyRouter;
  seed: number;
  /** Index of this evaluation (keys its draws). */
  index: number;
  maxTokens: number;
}

/** Runs the workflow once on every problem and grades the final answers. */
export async function evaluate(opts: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const res = await executeEpisodes({
    workflow: opts.workflow,
    task: opts.task,
    problems: opts.problems,
    rollouts: 1,
    sampler: opts.sampler,
    router: opts.router,
    seed: opts.seed,
    step: EVAL_STEP_BASE + opts.index,
    maxTokens: opts.maxTokens,
  });
  const correct = new Uint8Array(res.episodes.length);
  res.episodes.forEach((ep, i) => {
    correct[i] = opts.task.grade(ep.problem, ep.finalAnswer).correct ? 1 : 0;
  });
  let tokens = 0;
  let fallbacks = 0;
  for (const r of res.rows) {
    tokens += r.completionTokens.length;
    if (r.parse === 'fallback') fallbacks++;
  }
  const n = correct.length;
  return {
    accuracy: n ? correct.reduce((s, c) => s + c, 0) / n : 0,
    correct,
    n,
    meanCompletionTokens: res.rows.length ? tokens / res.rows.length : 0,
    fallbackRate: res.rows.length ? fallbacks / res.rows.length : 0,
    episodes: res.episodes,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** A readable transcript of episodes: every role's prompt and output, then the grade. */
export function formatTranscripts(task: Task, episodes: readonly EpisodeResult[]): string {
  const out: string[] = [];
  for (const ep of episodes) {
    const g = task.grade(ep.problem, ep.finalAnswer);
    out.push(`## Problem ${ep.problem.id}\n\n${ep.problem.prompt}\n\nReference answer: ${ep.problem.answer}\n`);
    for (const t of ep.transcript) {
      const prompt = t.messages.map((m) => `[${m.role}] ${m.content}`).join('\n');
      out.push(`### ${t.role}${t.copy ? ` #${t.copy}` : ''} (turn ${t.turn})\n\nPrompt:\n\n\`\`\`\n${prompt}\n\`\`\`\n\nOutput:\n\n\`\`\`\n${t.text}\n\`\`\`\n`);
    }
    out.push(`**Final answer:** ${JSON.stringify(ep.finalAnswer)} -> ${g.correct ? 'correct' : 'wrong'} (${g.reason})\n`);
  }
  return out.join('\n');
}

export { evaluateCheckpoint } from './evaluate-checkpoint.js';
