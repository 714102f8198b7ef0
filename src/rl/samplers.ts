// The samplers a run uses: the rollout engine at the training temperature, and a greedy view of
// it for greedy evaluation. One Piscina pool serves both.
import type { Policy } from '../native/policy.js';
import { createRolloutSampler, type RolloutSampler } from '../rollout/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { RoleSampler } from '../workflows/sampler.js';
import type { TrainConfig } from './config.js';

/** The run's samplers; destroy() closes the pool. */
export interface RunSamplers {
  sampled: RoleSampler;
  greedy: RoleSampler;
  engine: RolloutSampler;
  destroy(): Promise<void>;
}

/** Builds the pool-backed sampler for a run (workers/threadsPerCall 0 = automatic budget). */
export function createSamplers(c: TrainConfig, policies: ReadonlyMap<string, Policy>, tokenizer: Tokenizer): RunSamplers {
  const engine = createRolloutSampler({
    policies,
    tokenizer,
    sampling: { temperature: c.temperature, topP: c.topP, topK: c.topK, seed: c.seed, greedy: false },
    workers: c.workers > 0 ? c.workers : 'auto',
    threadsPerCall: c.threadsPerCall > 0 ? c.threadsPerCall : 'auto',
  });
  return {
    sampled: engine,
    greedy: engine.withSampling({ greedy: true }),
    engine,
    destroy: () => engine.destroy(),
  };
}
