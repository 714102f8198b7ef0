// The rollout layer: samplers the executor and trainer use, and the helpers they are built from.
import { InProcessSampler } from './in-process.js';
import { RolloutEngine, type RolloutEngineOptions } from './engine.js';

export * from './call-id.js';
export * from './thread-budget.js';
export * from './schedule.js';
export type { RolloutSampling } from './batch.js';
export type { SampleStats, SamplerOptions } from './options.js';
export { RolloutEngine, rolloutWorkerFile, type RolloutEngineOptions } from './engine.js';
export { InProcessSampler, type InProcessSamplerOptions } from './in-process.js';

/** Either sampler: both sample, switch settings with withSampling, and release with destroy. */
export type RolloutSampler = RolloutEngine | InProcessSampler;

/** workers = 0 gives the in-process sampler, a number or 'auto' the pool (see RolloutEngineOptions). */
export function createRolloutSampler(opts: RolloutEngineOptions): RolloutSampler {
  return opts.workers === 0 ? new InProcessSampler(opts) : new RolloutEngine(opts);
}
