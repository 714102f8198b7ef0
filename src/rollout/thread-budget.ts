// One CPU thread budget per process (DESIGN.md, "Threads"): pool workers x native threads per call
// must not exceed the cores, because pools spinning against each other are several times slower
// than one thread. Violations are configuration errors, reported before any thread starts.

/** Requested pool shape: 'auto' (or undefined) picks a value, a number is taken as given. */
export interface ThreadBudgetRequest {
  /** Pool size; 'auto' = min(cores, max(#policies, 2)). */
  workers?: number | 'auto';
  /** Native threads per call; 'auto' = floor(cores / workers). */
  threadsPerCall?: number | 'auto';
  /** Cores available (the native core's hardware count by default). */
  cores: number;
  /** Distinct policies that will sample (more policies -> more workers, so they run at once). */
  policies: number;
}

/** A validated pool shape. */
export interface ThreadBudget {
  workers: number;
  threadsPerCall: number;
  cores: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`thread budget: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** Resolves 'auto' fields and checks workers x threadsPerCall <= cores (throws a RangeError). */
export function resolveThreadBudget(req: ThreadBudgetRequest): ThreadBudget {
  const cores = positiveInt('cores', req.cores);
  const policies = Math.max(1, Math.floor(req.policies));
  // Two workers even for one policy: its rows split in halves run at once; more policies get a
  // worker each so isolated roles sample concurrently.
  const workers =
    req.workers === undefined || req.workers === 'auto' ? Math.min(cores, Math.max(policies, 2)) : positiveInt('workers', req.workers);
  if (workers > cores) {
    throw new RangeError(`thread budget: ${workers} workers exceed the ${cores} cores (use workers <= cores or the in-process sampler)`);
  }
  const threadsPerCall =
    req.threadsPerCall === undefined || req.threadsPerCall === 'auto'
      ? Math.max(1, Math.floor(cores / workers))
      : positiveInt('threadsPerCall', req.threadsPerCall);
  if (workers * threadsPerCall > cores) {
    throw new RangeError(
      `thread budget: ${workers} workers x ${threadsPerCall} threads per call = ${workers * threadsPerCall} exceeds the ${cores} cores`,
    );
  }
  return { workers, threadsPerCall, cores };
}
