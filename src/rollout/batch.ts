// The part of sampling shared by the pool and the in-process sampler: render every request with
// the chat template, group rows by (policy, sampler seed), pack each group into SharedArrayBuffer-
// backed arrays the native core writes into, and turn the written outputs back into results.
import { performance } from 'node:perf_hooks';
import { renderChatTokens } from '../chat/render.js';
import {
  allocGenerateOutputs,
  allocInt32,
  callIdArray,
  packSequences,
  type GenerateOutputs,
  type PackedSequences,
} from '../native/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { SampleRequest, SampleResult } from '../workflows/sampler.js';
import { mixSeeds, nativeCallId } from './call-id.js';
import type { SampleStats } from './options.js';

/** Sampling settings of an engine (the run seed is mixed with each call key's seed). */
export interface RolloutSampling {
  temperature: number;
  topP: number;
  /** 0 = no top-k. */
  topK: number;
  /** Run seed, mixed with CallKey.seed into the native sampler seed. */
  seed: number | bigint;
  /** Argmax decoding (greedy evaluation). */
  greedy?: boolean;
}

/** The rows of one policy (and one sampler seed) packed for one or more native generate calls. */
export interface PolicyBatch {
  policy: string;
  /** Native sampler seed (mixSeeds(run seed, key seed)). */
  seed: bigint;
  /** Index in the request list of each row, ascending. */
  indices: number[];
  prompts: PackedSequences;
  maxNewTokens: Int32Array;
  callIds: BigUint64Array;
  /** Output row stride: the largest maxTokens of the batch. */
  stride: number;
  out: GenerateOutputs;
}

function checkMaxTokens(r: SampleRequest, i: number): number {
  if (!Number.isInteger(r.maxTokens) || r.maxTokens < 0) {
    throw new RangeError(`sample: requests[${i}] (${r.callId}) maxTokens must be a non-negative integer, got ${r.maxTokens}`);
  }
  return r.maxTokens;
}

/** Renders and packs the requests into per-(policy, seed) batches, policies in first-seen order. */
export function prepareBatches(
  requests: readonly SampleRequest[],
  tokenizer: Tokenizer,
  runSeed: number | bigint,
  knownPolicies: ReadonlySet<string>,
): PolicyBatch[] {
  const groups = new Map<string, { policy: string; seed: bigint; indices: number[] }>();
  const seen = new Map<string, number>();
  const callIds: bigint[] = [];
  requests.forEach((r, i) => {
    if (!knownPolicies.has(r.policy)) {
      throw new Error(`sample: requests[${i}] (${r.callId}) names policy '${r.policy}', not one of: ${[...knownPolicies].join(', ')}`);
    }
    checkMaxTokens(r, i);
    const seed = mixSeeds(runSeed, r.key.seed);
    const id = nativeCallId(r.key);
    // Two requests with one key would draw identical completions: an upstream bug worth stopping on.
    const twin = seen.get(`${seed}:${id}`);
    if (twin !== undefined) throw new Error(`sample: requests[${twin}] and requests[${i}] have the same call key (${r.callId})`);
    seen.set(`${seed}:${id}`, i);
    callIds.push(id);
    const k = `${r.policy}\u0000${seed}`;
    const g = groups.get(k);
    if (g) g.indices.push(i);
    else groups.set(k, { policy: r.policy, seed, indices: [i] });
  });
  return [...groups.values()].map(({ policy, seed, indices }) => {
    const prompts = packSequences(
      indices.map((i) => renderChatTokens(tokenizer, requests[i]!.messages, { addGenerationPrompt: true })),
    );
    const maxNewTokens = allocInt32(indices.length);
    let stride = 0;
    indices.forEach((i, row) => {
      maxNewTokens[row] = requests[i]!.maxTokens;
      stride = Math.max(stride, requests[i]!.maxTokens);
    });
    return {
      policy,
      seed,
      indices,
      prompts,
      maxNewTokens,
      callIds: callIdArray(indices.map((i) => callIds[i]!)),
      stride,
      out: allocGenerateOutputs(indices.length, stride),
    };
  });
}

/** Results in request order: views into the batches' shared arrays, text decoded without the stop token. */
export function collectResults(
  count: number,
  batches: readonly PolicyBatch[],
  tokenizer: Tokenizer,
  stopTokens: readonly number[],
): SampleResult[] {
  const stops = new Set(stopTokens);
  const results = new Array<SampleResult>(count);
  for (const b of batches) {
    b.indices.forEach((reqIndex, row) => {
      const len = b.out.lengths[row]!;
      const start = row * b.stride;
      const completionTokens = b.out.tokens.subarray(start, start + len);
      const finish = b.out.finish[row] === 0 ? 'stop' : 'length';
      // The stop token stays in completionTokens (training must see where the turn ends) but is
      // not part of the text the workflow parses.
      const stopped = finish === 'stop' && len > 0 && stops.has(completionTokens[len - 1]!);
      results[reqIndex] = {
        text: tokenizer.decode(stopped ? completionTokens.subarray(0, len - 1) : completionTokens),
        promptTokens: b.prompts.tokens.subarray(b.prompts.cuSeqlens[row]!, b.prompts.cuSeqlens[row + 1]!),
        completionTokens,
        logprobs: b.out.logp.subarray(start, start + len),
        finish,
      };
    });
  }
  return results;
}

/** The statistics of one sample() call over `batches`, started at `t0` (performance.now()). */
export function sampleStats(rows: number, batches: readonly PolicyBatch[], calls: number, t0: number, nativeSeconds: number): SampleStats {
  let newTokens = 0;
  for (const b of batches) for (const l of b.out.lengths) newTokens += l;
  return {
    rows,
    promptTokens: batches.reduce((s, b) => s + b.prompts.tokens.length, 0),
    newTokens,
    calls,
    seconds: (performance.now() - t0) / 1000,
    nativeSeconds,
  };
}
