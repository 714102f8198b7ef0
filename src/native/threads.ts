// The process's CPU thread budget (DESIGN.md, "Threads"): Piscina workers x native threads per
// call must not exceed the cores, because two pools spinning against each other are far slower
// than one thread. Counts go through the addon, never through environment variables.
import { loadBinding } from './binding.js';

/** Who a thread count applies to: every thread's default, or only the calling JS thread. */
export type ThreadScope = 'process' | 'thread';

/** Sets native threads per call for the whole process (default) or the calling thread only. */
export function setThreads(n: number, scope: ThreadScope = 'process'): void {
  loadBinding().setThreads(n, scope);
}

/** Native threads a call from this JS thread uses now. */
export function getThreads(): number {
  return loadBinding().getThreads();
}

/** Hardware threads of this machine as the native core counts them. */
export function hardwareCores(): number {
  return loadBinding().hardwareCores();
}

/** Native threads per call for a pool of `poolSize` workers on `cores` cores: floor(C/P), at least 1. */
export function threadsPerCall(poolSize: number, cores: number = hardwareCores()): number {
  if (!Number.isInteger(poolSize) || poolSize < 1)
    throw new RangeError(`threadsPerCall: poolSize must be a positive integer (got ${String(poolSize)})`);
  if (!Number.isInteger(cores) || cores < 1)
    throw new RangeError(`threadsPerCall: cores must be a positive integer (got ${String(cores)})`);
  return Math.max(1, Math.floor(cores / poolSize));
}
