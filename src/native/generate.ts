// The generate request/result of the Policy API and its conversion to the addon's flat form.
// Outputs land in caller-provided (or freshly allocated, SharedArrayBuffer-backed) arrays: row b
// of the completion occupies tokens[b*stride, b*stride + lengths[b]).
import type { GenerateStats, NativeGenerateRequest, PackedSequences } from './binding.js';
import { DEFAULT_SAMPLING, withDefaults, type SamplingOptions } from './options.js';
import { allocFloat32, allocInt32, allocUint8, callIdArray, type AllocOptions } from './pack.js';

/** Where a generate call writes its results (all rows, row stride `stride`). */
export interface GenerateOutputs {
  /** [B * stride] sampled tokens. */
  tokens: Int32Array;
  /** [B * stride] sampling log-prob of each sampled token. */
  logp: Float32Array;
  /** [B] completion length of each row. */
  lengths: Int32Array;
  /** [B] 0 = stopped on a stop token, 1 = hit its length limit. */
  finish: Uint8Array;
}

/** One batched sampling call. */
export interface GenerateRequest {
  prompts: PackedSequences;
  /** New-token limit: one for all rows, or one per row. */
  maxNewTokens: number | Int32Array;
  /** RNG key of each row's completion (a row's sample depends only on seed, call id, position). */
  callIds: BigUint64Array | readonly (number | bigint)[];
  /** Defaults: temperature 0.7, top-p 1, no top-k. */
  sampling?: Partial<SamplingOptions>;
  /** Tokens that end a completion (included in it); default: the config's eos_token_id. */
  stopTokens?: readonly number[] | Int32Array;
  /** Output row stride (>= the largest limit); default: the largest limit. */
  stride?: number;
  /** Caller-provided outputs; default: new SharedArrayBuffer-backed arrays. */
  out?: GenerateOutputs;
}

/** Outputs plus the stride and the call's statistics. */
export interface GenerateResult extends GenerateOutputs {
  stride: number;
  stats: GenerateStats;
}

/** Why a row ended. */
export type CompletionFinish = 'stop' | 'length';

/** Allocates outputs for `rows` rows of `stride` tokens. */
export function allocGenerateOutputs(rows: number, stride: number, opts?: AllocOptions): GenerateOutputs {
  return {
    tokens: allocInt32(rows * stride, opts),
    logp: allocFloat32(rows * stride, opts),
    lengths: allocInt32(rows, opts),
    finish: allocUint8(rows, opts),
  };
}

/** The tokens row `row` generated (a view, no copy). */
export function completionTokens(r: GenerateResult, row: number): Int32Array {
  return r.tokens.subarray(row * r.stride, row * r.stride + r.lengths[row]);
}

/** The sampling log-probs of row `row`'s tokens (a view, no copy). */
export function completionLogprobs(r: GenerateResult, row: number): Float32Array {
  return r.logp.subarray(row * r.stride, row * r.stride + r.lengths[row]);
}

/** Why row `row` ended. */
export function finishReason(r: GenerateResult, row: number): CompletionFinish {
  return r.finish[row] === 0 ? 'stop' : 'length';
}

/** The addon request for `req` (allocating outputs when none are given) and its stride. */
export function nativeGenerateRequest(
  req: GenerateRequest,
  defaultStopTokens: readonly number[],
): { native: NativeGenerateRequest; stride: number; out: GenerateOutputs } {
  const rows = req.prompts.cuSeqlens.length - 1;
  let maxNew: Int32Array;
  if (typeof req.maxNewTokens === 'number') {
    maxNew = allocInt32(Math.max(rows, 0));
    maxNew.fill(req.maxNewTokens);
  } else {
    maxNew = req.maxNewTokens;
  }
  let longest = 0;
  for (const m of maxNew) longest = Math.max(longest, m);
  const stride = req.stride ?? longest;
  // Checked here because the default outputs are allocated before the addon sees the request.
  if (!Number.isInteger(stride) || stride < 0)
    throw new RangeError(`generate: request.stride must be a non-negative integer (got ${String(stride)})`);
  const out = req.out ?? allocGenerateOutputs(Math.max(rows, 0), stride);
  const callIds = req.callIds instanceof BigUint64Array ? req.callIds : callIdArray(req.callIds);
  const s = withDefaults(DEFAULT_SAMPLING, req.sampling);
  const native: NativeGenerateRequest = {
    prompts: { tokens: req.prompts.tokens, cuSeqlens: req.prompts.cuSeqlens },
    maxNewTokens: maxNew,
    callIds,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    greedy: s.greedy,
    seed: s.seed,
    stopTokens: req.stopTokens ?? defaultStopTokens,
    stride,
    outTokens: out.tokens,
    outLogp: out.logp,
    outLengths: out.lengths,
    outFinish: out.finish,
  };
  return { native, stride, out };
}
