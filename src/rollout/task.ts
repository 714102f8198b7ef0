// The messages between the rollout engine and its pool workers. Every array is a view into a
// SharedArrayBuffer: posting it clones only the view, so workers read prompts and write
// completions in the main thread's memory without a copy either way.
import type { GenerateStats } from '../native/index.js';

/** What a worker is started with. */
export interface WorkerInit {
  /** Native threads of this worker's calls until a task asks for another count. */
  threadsPerCall: number;
}

/** Sampling settings of one task (the seed already mixed). */
export interface TaskSampling {
  temperature: number;
  topP: number;
  topK: number;
  greedy: boolean;
  seed: bigint;
}

/** One generateSync call on a contiguous row range of one policy. */
export interface GenerateTask {
  /** Process-wide policy handle (the worker attaches with Policy.fromHandle). */
  handle: number;
  /** Native threads of this call (the engine keeps the threads in flight within the budget). */
  threads: number;
  /** The rows' prompt tokens, back to back. */
  tokens: Int32Array;
  /** Row boundaries relative to `tokens` (starts at 0). */
  cuSeqlens: Int32Array;
  maxNewTokens: Int32Array;
  callIds: BigUint64Array;
  sampling: TaskSampling;
  stopTokens: Int32Array;
  stride: number;
  outTokens: Int32Array;
  outLogp: Float32Array;
  outLengths: Int32Array;
  outFinish: Uint8Array;
}

/** A worker's reply: the native statistics plus the thread budget it ran with. */
export interface GenerateTaskResult extends GenerateStats {
  threads: number;
  seconds: number;
}
