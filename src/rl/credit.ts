// Credit assignment: episode outcomes -> one reward per role call. `outcome` (the paper's default)
// copies the binary final grade to every call of the episode; `role` uses the workflow's
// `roleRewards` hook where it defines one (null entries and hook-less workflows fall back to the
// final outcome).
import type { Grade, Problem, Task } from '../tasks/task.js';
import type { CallRecord, Workflow } from '../workflows/api.js';

/** Which reward each call gets. */
export type CreditMode = 'outcome' | 'role';

/** The parts of an executed episode credit assignment reads (an EpisodeResult satisfies it). */
export interface CreditEpisode {
  problem: Problem;
  finalAnswer: string;
  rows: readonly CallRecord[];
}

/** Rewards aligned with the episodes' rows flattened in episode then call order, plus each final grade. */
export interface CreditResult {
  rewards: Float64Array;
  grades: Grade[];
}

/** Grades every episode's final answer and assigns per-call rewards under `mode`. */
export function assignRewards(
  episodes: readonly CreditEpisode[],
  workflow: Workflow,
  task: Task,
  mode: CreditMode = 'outcome',
): CreditResult {
  if (mode !== 'outcome' && mode !== 'role') throw new Error(`credit: unknown mode '${String(mode)}'`);
  const total = episodes.reduce((n, e) => n + e.rows.length, 0);
  const rewards = new Float64Array(total);
  const grades: Grade[] = [];
  let at = 0;
  for (const ep of episodes) {
    const grade = task.grade(ep.problem, ep.finalAnswer);
    grades.push(grade);
    let perCall: (number | null)[] | undefined;
    if (mode === 'role' && workflow.roleRewards) {
      const judge = (text: string): Grade => task.grade(ep.problem, text);
      perCall = workflow.roleRewards({ problem: ep.problem, finalAnswer: ep.finalAnswer, calls: ep.rows }, judge);
      if (perCall.length !== ep.rows.length) {
        throw new Error(
          `credit: workflow '${workflow.name}' roleRewards gave ${perCall.length} rewards for ${ep.rows.length} calls`,
        );
      }
    }
    ep.rows.forEach((_, i) => {
      const r = perCall?.[i] ?? grade.reward;
      if (!Number.isFinite(r)) throw new Error(`credit: non-finite reward ${r} for call ${i} of problem ${ep.problem.id}`);
      rewards[at++] = r;
    });
  }
  return { rewards, grades };
}
