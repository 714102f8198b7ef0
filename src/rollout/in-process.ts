// The comparison sampler (and the workers = 0 setting): no pool, one batched async generate per
// policy from the main thread with its full thread budget. Policies run one after another, since
// each call already uses every core and two at once would oversubscribe them.
import { performance } from 'node:perf_hooks';
import { getThreads, setThreads, type Policy } from '../native/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { RoleSampler, SampleRequest, SampleResult } from '../workflows/sampler.js';
import { collectResults, prepareBatches, sampleStats, type RolloutSampling } from './batch.js';
import { checkSamplerOptions, resolveSampling, type SampleStats, type SamplerOptions } from './options.js';

/** Options of the in-process sampler. */
export interface InProcessSamplerOptions extends SamplerOptions {
  /** Native threads of each call (default: the main thread's current count, all cores unless changed). */
  threads?: number;
}

/** A RoleSampler that samples on the main thread (async native calls, no worker pool). */
export class InProcessSampler implements RoleSampler {
  /** Statistics of the last sample() call (null before the first). */
  lastStats: SampleStats | null = null;
  private readonly policies: ReadonlyMap<string, Policy>;
  private readonly names: ReadonlySet<string>;
  private readonly tokenizer: Tokenizer;
  private readonly sampling: RolloutSampling;
  private readonly stopTokens: number[];
  private readonly threads: number | undefined;

  constructor(opts: InProcessSamplerOptions) {
    this.stopTokens = checkSamplerOptions('InProcessSampler', opts);
    if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1)) {
      throw new RangeError(`InProcessSampler: threads must be a positive integer, got ${opts.threads}`);
    }
    this.policies = opts.policies;
    this.names = new Set(opts.policies.keys());
    this.tokenizer = opts.tokenizer;
    this.sampling = resolveSampling(opts.sampling);
    this.threads = opts.threads;
  }

  /** Samples every request, one native call per policy; results in request order. */
  sample(requests: readonly SampleRequest[]): Promise<SampleResult[]> {
    return this.sampleWith(requests, this.sampling);
  }

  /** A sampler with other settings (e.g. {greedy: true} for evaluation). */
  withSampling(overrides: Partial<RolloutSampling>): RoleSampler {
    const sampling = resolveSampling(overrides, this.sampling);
    return { sample: (requests) => this.sampleWith(requests, sampling) };
  }

  /** Nothing to release (present so both samplers are interchangeable). */
  async destroy(): Promise<void> {}

  private async sampleWith(requests: readonly SampleRequest[], sampling: RolloutSampling): Promise<SampleResult[]> {
    const t0 = performance.now();
    const batches = prepareBatches(requests, this.tokenizer, sampling.seed, this.names);
    let nativeSeconds = 0;
    for (const b of batches) {
      const policy = this.policies.get(b.policy)!;
      const req = {
        prompts: b.prompts,
        maxNewTokens: b.maxNewTokens,
        callIds: b.callIds,
        sampling: { temperature: sampling.temperature, topP: sampling.topP, topK: sampling.topK, greedy: sampling.greedy ?? false, seed: b.seed },
        stopTokens: this.stopTokens,
        stride: b.stride,
        out: b.out,
      };
      // An async call takes the calling thread's count when it is made; restore it right after.
      const before = this.threads === undefined ? 0 : getThreads();
      if (this.threads !== undefined) setThreads(this.threads, 'thread');
      let pending;
      const tc = performance.now();
      try {
        pending = policy.generate(req);
      } finally {
        if (this.threads !== undefined) setThreads(before, 'thread');
      }
      await pending;
      nativeSeconds += (performance.now() - tc) / 1000;
    }
    const results = collectResults(requests.length, batches, this.tokenizer, this.stopTokens);
    this.lastStats = sampleStats(requests.length, batches, batches.length, t0, nativeSeconds);
    return results;
  }
}
