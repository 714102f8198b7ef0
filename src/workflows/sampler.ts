// The contract between the executor and whatever produces completions (the rollout engine, a
// scripted fake in tests). Token arrays and log-probs are opaque here: they pass through to the rows.
import type { ChatMessage } from '../chat/message.js';
import type { FinishReason } from './api.js';

/** Token ids as the sampler hands them over (typed arrays over SharedArrayBuffers, or plain arrays). */
export type TokenIds = Int32Array | readonly number[];

/** Per-token sampling log-probs, aligned with the completion tokens. */
export type LogProbs = Float32Array | readonly number[];

/** The integers a call's randomness is keyed by; independent of batch composition and order. */
export interface CallKey {
  seed: number;
  step: number;
  episode: number;
  /** Call sequence number within the episode. */
  call: number;
}

/** One completion to sample. */
export interface SampleRequest {
  /** Stable string form of `key` (see `callIdOf`). */
  callId: string;
  key: CallKey;
  /** Policy that must sample it (from routing). */
  policy: string;
  role: string;
  copy: number;
  turn: number;
  messages: ChatMessage[];
  maxTokens: number;
}

/** A sampled completion. */
export interface SampleResult {
  text: string;
  promptTokens: TokenIds;
  completionTokens: TokenIds;
  logprobs: LogProbs;
  finish: FinishReason;
}

/** Samples one batch; results in request order. May span several policies (group by `policy`). */
export interface RoleSampler {
  sample(requests: readonly SampleRequest[]): Promise<SampleResult[]>;
}

/** Maps a role call to a policy name (implemented by src/rl/routing.ts tables). */
export interface PolicyRouter {
  policyFor(role: string, copy: number): string;
}

/** The call id string of a key: "s<seed>.t<step>.e<episode>.c<call>". */
export function callIdOf(key: CallKey): string {
  return `s${key.seed}.t${key.step}.e${key.episode}.c${key.call}`;
}

/** Request indices per policy, policies in order of first appearance (for per-policy sampling). */
export function groupByPolicy(requests: readonly SampleRequest[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  requests.forEach((r, i) => {
    const list = out.get(r.policy);
    if (list) list.push(i);
    else out.set(r.policy, [i]);
  });
  return out;
}
