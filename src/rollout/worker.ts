// A rollout pool worker (Piscina). It loads the addon once, sets its native thread count thread-
// locally (again only when a task asks for another count), attaches to policies by handle
// (weights stay single, process-wide) and samples synchronously: a pool worker is already off
// the main event loop, so blocking here is the point.
import { performance } from 'node:perf_hooks';
import { workerData } from 'piscina';
import { getThreads, Policy, setThreads } from '../native/index.js';
import type { GenerateTask, GenerateTaskResult, WorkerInit } from './task.js';

const init = workerData as WorkerInit;
setThreads(init.threadsPerCall, 'thread');

// Attached once per worker and kept until the worker exits (which returns the references).
const attached = new Map<number, Policy>();

function policyFor(handle: number): Policy {
  let p = attached.get(handle);
  if (!p) {
    p = Policy.fromHandle(handle);
    attached.set(handle, p);
  }
  return p;
}

/** Samples one chunk of rows into the shared output arrays of the task. */
export default function generateChunk(task: GenerateTask): GenerateTaskResult {
  const t0 = performance.now();
  if (task.threads !== getThreads()) setThreads(task.threads, 'thread');
  const r = policyFor(task.handle).generateSync({
    prompts: { tokens: task.tokens, cuSeqlens: task.cuSeqlens },
    maxNewTokens: task.maxNewTokens,
    callIds: task.callIds,
    sampling: task.sampling,
    stopTokens: task.stopTokens,
    stride: task.stride,
    out: { tokens: task.outTokens, logp: task.outLogp, lengths: task.outLengths, finish: task.outFinish },
  });
  return { ...r.stats, threads: getThreads(), seconds: (performance.now() - t0) / 1000 };
}
