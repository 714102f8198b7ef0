// Options shared by the pool engine and the in-process sampler, and the statistics both report.
import { DEFAULT_SAMPLING, type Policy } from '../native/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { RolloutSampling } from './batch.js';
import type { Schedule } from './schedule.js';

/** What every sampler needs: the policies by name, the tokenizer, sampling and stop tokens. */
export interface SamplerOptions {
  /** Policies by routing name; the caller keeps ownership (samplers never dispose them). */
  policies: ReadonlyMap<string, Policy>;
  /** Renders prompts (chat template) and decodes completions. */
  tokenizer: Tokenizer;
  /** Defaults: temperature 0.7, top-p 1, no top-k, seed 0, not greedy. */
  sampling?: Partial<RolloutSampling>;
  /** Tokens that end a completion (default: the tokenizer's eosIds, <|im_end|> first). */
  stopTokens?: readonly number[];
}

/** What one sample() call did (throughput accounting for metrics and benchmarks). */
export interface SampleStats {
  rows: number;
  promptTokens: number;
  newTokens: number;
  /** Native calls made (pool tasks, or one per policy in process). */
  calls: number;
  /** Wall time of the call, rendering and decoding included. */
  seconds: number;
  /** Seconds inside the native generate calls, summed over calls (busy time of the samplers). */
  nativeSeconds: number;
  /** The pool schedule the call ran under (absent for the in-process sampler). */
  schedule?: Schedule;
}

/** Full sampling settings from partial ones (DEFAULT_SAMPLING fills the gaps). */
export function resolveSampling(s: Partial<RolloutSampling> | undefined, base?: RolloutSampling): RolloutSampling {
  const out: RolloutSampling = base
    ? { ...base }
    : { temperature: DEFAULT_SAMPLING.temperature, topP: DEFAULT_SAMPLING.topP, topK: DEFAULT_SAMPLING.topK, seed: DEFAULT_SAMPLING.seed, greedy: false };
  if (s) for (const [k, v] of Object.entries(s)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

/** Checks the policy map and returns the stop tokens to use. */
export function checkSamplerOptions(who: string, opts: SamplerOptions): number[] {
  if (!(opts.policies instanceof Map) || opts.policies.size === 0) throw new TypeError(`${who}: options.policies must be a non-empty Map<name, Policy>`);
  for (const [name, p] of opts.policies) {
    if (p.isDisposed) throw new Error(`${who}: policy '${name}' was disposed`);
    if (p.vocabSize < opts.tokenizer.vocabSize) {
      throw new RangeError(`${who}: policy '${name}' has ${p.vocabSize} token ids but the tokenizer produces up to ${opts.tokenizer.vocabSize}`);
    }
  }
  const stops = [...(opts.stopTokens ?? opts.tokenizer.eosIds)];
  for (const t of stops) {
    if (!Number.isInteger(t) || t < 0 || t >= opts.tokenizer.vocabSize) throw new RangeError(`${who}: stop token ${t} is not a token id of the tokenizer`);
  }
  return stops;
}
