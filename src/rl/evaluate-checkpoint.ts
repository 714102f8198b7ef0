// `troupe eval`: held-out evaluation of a saved run (its latest checkpoint) or of one checkpoint
// directory, with the run's own config unless flags override it.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TrainConfig } from './config.js';
import type { TrainHooks } from './hooks.js';
import { latestCheckpoint, loadRunCheckpoint } from './run-state.js';
import { createSamplers } from './samplers.js';
import { makeRunParts } from './setup.js';
import { evaluate } from './evaluate.js';

/** Evaluates a run directory or checkpoint directory on the held-out split. */
export async function evaluateCheckpoint(opts: {
  checkpoint: string;
  overrides: Partial<TrainConfig>;
  hooks: TrainHooks;
}): Promise<{ accuracy: number; n: number; greedy?: number; seconds: number; checkpoint: string; step: number }> {
  const t0 = performance.now();
  const given = path.resolve(opts.checkpoint);
  const dir = existsSync(path.join(given, 'state.json')) ? given : latestCheckpoint(given);
  if (!dir) throw new Error(`${given} is neither a checkpoint directory (with state.json) nor a run directory with checkpoints`);
  const saved = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as { config: TrainConfig; step: number };
  const config: TrainConfig = { ...saved.config, ...opts.overrides };
  const parts = makeRunParts(config);
  const { policies } = loadRunCheckpoint(dir, parts.routing.policies);
  const samplers = createSamplers(config, policies, parts.tokenizer);
  try {
    const problems = parts.task.problems('test', config.evalProblems, config.seed);
    const common = { workflow: parts.workflow, task: parts.task, problems, router: parts.routing, seed: config.seed, maxTokens: config.maxNewTokens };
    // Indices far above the trainer's so these draws are new ones.
    const sampled = await evaluate({ ...common, sampler: samplers.sampled, index: (1 << 21) - 2 });
    opts.hooks.onLog?.(`pass@1 ${(100 * sampled.accuracy).toFixed(1)}% (n=${sampled.n}) at step ${saved.step}`);
    const greedy = config.evalGreedy ? await evaluate({ ...common, sampler: samplers.greedy, index: (1 << 21) - 1 }) : null;
    return {
      accuracy: sampled.accuracy, n: sampled.n, greedy: greedy?.accuracy, seconds: (performance.now() - t0) / 1000,
      checkpoint: dir, step: saved.step,
    };
  } finally {
    await samplers.destroy();
    for (const p of policies.values()) p.dispose();
  }
}
