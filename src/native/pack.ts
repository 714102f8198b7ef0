// Building the packed, SharedArrayBuffer-backed arrays the addon borrows. Shared by default:
// these arrays are what crosses between Piscina workers and the main thread, and a
// SharedArrayBuffer crosses without a copy (and can never be detached under a running call).
import type { PackedSequences, TrainBatch } from './binding.js';

/** Whether new arrays use a SharedArrayBuffer (default) or a plain ArrayBuffer. */
export interface AllocOptions {
  shared?: boolean;
}

function buffer(bytes: number, opts?: AllocOptions): ArrayBuffer | SharedArrayBuffer {
  return opts?.shared === false ? new ArrayBuffer(bytes) : new SharedArrayBuffer(bytes);
}

/** A zeroed Int32Array of length n (SharedArrayBuffer-backed unless shared: false). */
export function allocInt32(n: number, opts?: AllocOptions): Int32Array {
  return new Int32Array(buffer(4 * n, opts));
}

/** A zeroed Float32Array of length n (SharedArrayBuffer-backed unless shared: false). */
export function allocFloat32(n: number, opts?: AllocOptions): Float32Array {
  return new Float32Array(buffer(4 * n, opts));
}

/** A zeroed Uint8Array of length n (SharedArrayBuffer-backed unless shared: false). */
export function allocUint8(n: number, opts?: AllocOptions): Uint8Array {
  return new Uint8Array(buffer(n, opts));
}

/** A zeroed BigUint64Array of length n (SharedArrayBuffer-backed unless shared: false). */
export function allocBigUint64(n: number, opts?: AllocOptions): BigUint64Array {
  return new BigUint64Array(buffer(8 * n, opts));
}

/** Packs sequences back to back: tokens plus cuSeqlens = [0, len0, len0+len1, ...]. */
export function packSequences(seqs: readonly ArrayLike<number>[], opts?: AllocOptions): PackedSequences {
  const cuSeqlens = allocInt32(seqs.length + 1, opts);
  let total = 0;
  seqs.forEach((s, i) => {
    total += s.length;
    cuSeqlens[i + 1] = total;
  });
  const tokens = allocInt32(total, opts);
  seqs.forEach((s, i) => tokens.set(s, cuSeqlens[i]));
  return { tokens, cuSeqlens };
}

/** Views (no copy) of each sequence of a packed batch. */
export function unpackSequences(p: PackedSequences): Int32Array[] {
  const out: Int32Array[] = [];
  for (let s = 0; s + 1 < p.cuSeqlens.length; s++) out.push(p.tokens.subarray(p.cuSeqlens[s], p.cuSeqlens[s + 1]));
  return out;
}

/** Length of every sequence of a packed batch. */
export function sequenceLengths(cuSeqlens: Int32Array): number[] {
  const out: number[] = [];
  for (let s = 0; s + 1 < cuSeqlens.length; s++) out.push(cuSeqlens[s + 1] - cuSeqlens[s]);
  return out;
}

/** One role call as the trainer sees it: prompt, sampled completion, rollout log-probs, advantage. */
export interface TrainRow {
  promptTokens: ArrayLike<number>;
  completionTokens: ArrayLike<number>;
  /** Sampling log-prob of each completion token (same length as completionTokens). */
  logprobs: ArrayLike<number>;
  advantage: number;
  /** Reference-policy log-probs of the completion tokens, when a KL penalty is used. */
  refLogprobs?: ArrayLike<number>;
}

/**
 * Packs rows into one TrainBatch: sequence = prompt + completion, lossMask = 1 on completion
 * tokens, oldLogp (and refLogp) aligned with the tokens they score, 0 elsewhere.
 */
export function packTrainBatch(rows: readonly TrainRow[], opts?: AllocOptions): TrainBatch {
  rows.forEach((r, i) => {
    if (r.logprobs.length !== r.completionTokens.length)
      throw new RangeError(`packTrainBatch: rows[${i}].logprobs has ${r.logprobs.length} entries for ${r.completionTokens.length} completion tokens`);
    if (r.refLogprobs && r.refLogprobs.length !== r.completionTokens.length)
      throw new RangeError(`packTrainBatch: rows[${i}].refLogprobs has ${r.refLogprobs.length} entries for ${r.completionTokens.length} completion tokens`);
  });
  const withRef = rows.some((r) => r.refLogprobs !== undefined);
  if (withRef && !rows.every((r) => r.refLogprobs !== undefined))
    throw new TypeError('packTrainBatch: refLogprobs must be given for every row or for none');
  const packed = packSequences(
    rows.map((r) => {
      const seq = new Int32Array(r.promptTokens.length + r.completionTokens.length);
      seq.set(r.promptTokens, 0);
      seq.set(r.completionTokens, r.promptTokens.length);
      return seq;
    }),
    opts,
  );
  const T = packed.tokens.length;
  const lossMask = allocUint8(T, opts);
  const oldLogp = allocFloat32(T, opts);
  const refLogp = withRef ? allocFloat32(T, opts) : undefined;
  const advantages = allocFloat32(rows.length, opts);
  rows.forEach((r, i) => {
    const start = packed.cuSeqlens[i] + r.promptTokens.length;
    lossMask.fill(1, start, start + r.completionTokens.length);
    oldLogp.set(r.logprobs, start);
    if (refLogp && r.refLogprobs) refLogp.set(r.refLogprobs, start);
    advantages[i] = r.advantage;
  });
  return { ...packed, lossMask, oldLogp, refLogp, advantages };
}

/** Call ids (the sampling RNG keys) as the BigUint64Array the addon reads. */
export function callIdArray(ids: readonly (number | bigint)[], opts?: AllocOptions): BigUint64Array {
  const out = allocBigUint64(ids.length, opts);
  ids.forEach((id, i) => {
    out[i] = BigInt(id);
  });
  return out;
}
