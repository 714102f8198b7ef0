// The training split is divided once more, by a hash of the problem id: the base model's
// supervised warm-up draws only from the "warmup" half and RL only from the "rl" half. A tiny
// model memorises the answers of its warm-up problems; RL on those would reward recall, while RL
// on unseen problems rewards the skill the held-out split measures.
import { hashUnit } from './hash.js';
import type { Problem, Task } from './task.js';

/** Which half of the training split a problem belongs to. */
export type TrainPool = 'warmup' | 'rl';

/**
 * The content key a problem is pooled by: the same key the train/test split uses (the code
 * task's `splitKey`, the math expression), else the prompt. Ids are positional, so two ids can
 * carry the same problem; pooling by content keeps the pools disjoint in what they teach.
 */
export function poolKey(problem: Problem): string {
  const data = (problem.data ?? {}) as { splitKey?: unknown; expression?: unknown };
  if (typeof data.splitKey === 'string') return data.splitKey;
  if (typeof data.expression === 'string') return data.expression;
  return problem.prompt;
}

/** The pool of a training problem (a pure function of its content key). */
export function trainPoolOf(problem: Problem): TrainPool {
  return hashUnit(poolKey(problem), 0x5eed) < 0.5 ? 'warmup' : 'rl';
}

/** `count` training problems of one pool, deterministic in (seed, count). */
export function poolProblems(task: Task, pool: TrainPool, count: number, seed: number): Problem[] {
  const out: Problem[] = [];
  // Draw in growing rounds until enough problems of the pool are found (half on average).
  for (let round = 0; out.length < count && round < 64; round++) {
    const batch = task.problems('train', 2 * (count - out.length) + 8, seed + round * 104_729);
    for (const p of batch) if (trainPoolOf(p) === pool && out.length < count) out.push(p);
  }
  if (out.length < count) throw new Error(`task ${task.name}: could not draw ${count} '${pool}' training problems`);
  return out;
}
