// The samplers a run uses: the rollout engine at the training temperature, and a greedy view of
// it for greedy evaluation. One Piscina pool serves both.
import type { Policy } from '../native/policy.js';
import { createRolloutSampler, RolloutEngine, type RolloutSampler, type ShapeReport } from '../rollout/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { RoleSampler } from '../workflows/sampler.js';
import type { TrainConfig } from './config.js';

/** The run's samplers; destroy() closes the pool. */
export interface RunSamplers {
  sampled: RoleSampler;
  greedy: RoleSampler;
  engine: RolloutSampler;
  /** What the pool's 'auto' schedule measured per stage shape (empty in process or when fixed). */
  scheduleReport(): ShapeReport[];
  destroy(): Promise<void>;
}

/** One line per stage shape: the schedule chosen and the measured cost of each, for the run log. */
export function formatScheduleReport(report: readonly ShapeReport[]): string {
  const us = (m: ShapeReport['split']) => (m ? `${(m.cost * 1e6).toFixed(1)} µs/token over ${m.calls} call(s)` : 'not run');
  return report.map((r) => `${r.shape}: ${r.choice}${r.decided ? '' : ' (still measuring)'} (split ${us(r.split)}, serial ${us(r.serial)})`).join('\n');
}

/** Builds the pool-backed sampler for a run (workers/threadsPerCall 0 = automatic budget). */
export function createSamplers(c: TrainConfig, policies: ReadonlyMap<string, Policy>, tokenizer: Tokenizer): RunSamplers {
  const engine = createRolloutSampler({
    policies,
    tokenizer,
    sampling: { temperature: c.temperature, topP: c.topP, topK: c.topK, seed: c.seed, greedy: false },
    workers: c.workers > 0 ? c.workers : 'auto',
    threadsPerCall: c.threadsPerCall > 0 ? c.threadsPerCall : 'auto',
    schedule: c.rolloutSchedule,
  });
  return {
    sampled: engine,
    greedy: engine.withSampling({ greedy: true }),
    engine,
    scheduleReport: () => (engine instanceof RolloutEngine ? engine.scheduleReport() : []),
    destroy: () => engine.destroy(),
  };
}
