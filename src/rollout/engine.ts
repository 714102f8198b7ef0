// The rollout engine: a fixed-size Piscina pool whose workers call the native sampler
// synchronously. One sample() call renders every request, packs each policy's rows into shared
// arrays and runs them on the pool under one of two schedules (schedule.ts): 'split' cuts the rows
// into contiguous chunks (plan.ts) that run at once, different policies side by side; 'serial'
// runs one call per policy at a time with every thread. 'auto' measures which is faster per stage
// shape. Results are views into the shared outputs.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { allocInt32, hardwareCores, packageRoot, type Policy } from '../native/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { RoleSampler, SampleRequest, SampleResult } from '../workflows/sampler.js';
import { collectResults, prepareBatches, sampleStats, type PolicyBatch, type RolloutSampling } from './batch.js';
import { checkSamplerOptions, resolveSampling, type SampleStats, type SamplerOptions } from './options.js';
import { planChunks, type Chunk } from './plan.js';
import { SCHEDULE_CHOICES, ScheduleTuner, stageShape, type Schedule, type ScheduleChoice, type ShapeReport } from './schedule.js';
import type { GenerateTask, GenerateTaskResult, WorkerInit } from './task.js';
import { resolveThreadBudget, type ThreadBudget } from './thread-budget.js';

/** Options of the pool engine. */
export interface RolloutEngineOptions extends SamplerOptions {
  /** Pool size; 'auto' (default) = min(cores, max(#policies, 2)). */
  workers?: number | 'auto';
  /** Native threads per worker call; 'auto' (default) = floor(cores / workers). */
  threadsPerCall?: number | 'auto';
  /** Cores of the thread budget (default: the native core's hardware count). */
  cores?: number;
  /** The compiled worker module (default: dist/src/rollout/worker.js). */
  workerFile?: string;
  /** How a stage uses the pool (default 'auto': measured per stage shape; see schedule.ts). */
  schedule?: ScheduleChoice;
}

/** The compiled pool worker next to this module (or under dist/ when running from source). */
export function rolloutWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const compiled = here.endsWith('.js');
  const file = compiled ? path.join(path.dirname(here), 'worker.js') : path.join(packageRoot(), 'dist', 'src', 'rollout', 'worker.js');
  if (!existsSync(file)) {
    throw new Error(`RolloutEngine: the compiled pool worker ${file} is missing; run \`npm run build\` (or \`npm run build:ts\`) first.`);
  }
  if (!compiled) {
    // Running from TypeScript sources (tests): the worker still runs from dist/, so refuse a stale one.
    const src = path.dirname(here);
    for (const f of ['worker.ts', 'task.ts']) {
      const s = path.join(src, f);
      if (existsSync(s) && statSync(s).mtimeMs > statSync(file).mtimeMs) {
        throw new Error(`RolloutEngine: ${file} is older than ${s}; run \`npm run build\` (or \`npm run build:ts\`) first.`);
      }
    }
  }
  return file;
}

function rowWeights(b: PolicyBatch): Int32Array {
  const w = new Int32Array(b.indices.length);
  for (let r = 0; r < w.length; r++) w[r] = b.prompts.cuSeqlens[r + 1]! - b.prompts.cuSeqlens[r]! + b.maxNewTokens[r]!;
  return w;
}

/** The pool-backed RoleSampler the trainer uses; call destroy() when done. */
export class RolloutEngine implements RoleSampler {
  /** The validated pool shape. */
  readonly budget: ThreadBudget;
  /** Statistics of the last sample() call (null before the first). */
  lastStats: SampleStats | null = null;
  private readonly policies: ReadonlyMap<string, Policy>;
  private readonly names: ReadonlySet<string>;
  private readonly tokenizer: Tokenizer;
  private readonly sampling: RolloutSampling;
  private readonly stopTokens: Int32Array;
  private readonly pool: Piscina<GenerateTask, GenerateTaskResult>;
  private readonly schedule: ScheduleChoice;
  private readonly tuner = new ScheduleTuner();
  private closed = false;

  constructor(opts: RolloutEngineOptions) {
    const stops = checkSamplerOptions('RolloutEngine', opts);
    this.budget = resolveThreadBudget({
      workers: opts.workers,
      threadsPerCall: opts.threadsPerCall,
      cores: opts.cores ?? hardwareCores(),
      policies: opts.policies.size,
    });
    this.policies = opts.policies;
    this.names = new Set(opts.policies.keys());
    this.tokenizer = opts.tokenizer;
    this.sampling = resolveSampling(opts.sampling);
    this.stopTokens = allocInt32(stops.length);
    this.stopTokens.set(stops);
    const schedule = opts.schedule ?? 'auto';
    if (!SCHEDULE_CHOICES.includes(schedule)) {
      throw new RangeError(`RolloutEngine: schedule must be 'auto', 'split' or 'serial', got '${String(schedule)}'`);
    }
    // With one worker both schedules are the same thing.
    this.schedule = this.budget.workers === 1 ? 'split' : schedule;
    const init: WorkerInit = { threadsPerCall: this.budget.threadsPerCall };
    this.pool = new Piscina<GenerateTask, GenerateTaskResult>({
      filename: opts.workerFile ?? rolloutWorkerFile(),
      minThreads: this.budget.workers,
      maxThreads: this.budget.workers,
      concurrentTasksPerWorker: 1,
      workerData: init,
    });
  }

  /** Samples every request (any mix of policies); results in request order. */
  sample(requests: readonly SampleRequest[]): Promise<SampleResult[]> {
    return this.sampleWith(requests, this.sampling);
  }

  /** A sampler over the same pool with other settings (e.g. {greedy: true} for evaluation). */
  withSampling(overrides: Partial<RolloutSampling>): RoleSampler {
    const sampling = resolveSampling(overrides, this.sampling);
    return { sample: (requests) => this.sampleWith(requests, sampling) };
  }

  /** What 'auto' has measured so far, per stage shape (empty under a fixed schedule). */
  scheduleReport(): ShapeReport[] {
    return this.tuner.report();
  }

  /** Closes the pool; workers exit and return their policy references. */
  async destroy(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }

  private async sampleWith(requests: readonly SampleRequest[], sampling: RolloutSampling): Promise<SampleResult[]> {
    if (this.closed) throw new Error('RolloutEngine: sample() after destroy()');
    const t0 = performance.now();
    const batches = prepareBatches(requests, this.tokenizer, sampling.seed, this.names);
    const shape = stageShape(batches.length, requests.length);
    const schedule: Schedule = this.schedule === 'auto' ? this.tuner.next(shape) : this.schedule;
    const weights = batches.map(rowWeights);
    const tRun = performance.now();
    let done: GenerateTaskResult[];
    if (schedule === 'split') {
      // Largest chunks are queued first; the pool hands each to the next free worker.
      const chunks = planChunks(weights, this.budget.workers);
      done = await Promise.all(chunks.map((c) => this.runChunk(batches[c.batch]!, c, sampling, this.budget.threadsPerCall)));
    } else {
      // One whole-policy call at a time with every thread of the budget, so threads in flight
      // never exceed workers x threadsPerCall.
      done = [];
      const all = this.budget.workers * this.budget.threadsPerCall;
      for (const c of planChunks(weights, 1)) done.push(await this.runChunk(batches[c.batch]!, c, sampling, all));
    }
    const runSeconds = (performance.now() - tRun) / 1000;
    const results = collectResults(requests.length, batches, this.tokenizer, [...this.stopTokens]);
    const busy = done.reduce((sum, r) => sum + r.seconds, 0);
    this.lastStats = { ...sampleStats(requests.length, batches, done.length, t0, busy), schedule };
    if (this.schedule === 'auto') this.tuner.record(shape, schedule, runSeconds, this.lastStats.newTokens);
    return results;
  }

  private async runChunk(b: PolicyBatch, c: Chunk, sampling: RolloutSampling, threads: number): Promise<GenerateTaskResult> {
    const { lo, hi } = c;
    const t0 = b.prompts.cuSeqlens[lo]!;
    // Only the row boundaries are rebased (O(rows)); tokens and outputs are views.
    const cu = allocInt32(hi - lo + 1);
    for (let r = lo; r <= hi; r++) cu[r - lo] = b.prompts.cuSeqlens[r]! - t0;
    const s = b.stride;
    const task: GenerateTask = {
      handle: this.policies.get(b.policy)!.handle,
      threads,
      tokens: b.prompts.tokens.subarray(t0, b.prompts.cuSeqlens[hi]!),
      cuSeqlens: cu,
      maxNewTokens: b.maxNewTokens.subarray(lo, hi),
      callIds: b.callIds.subarray(lo, hi),
      sampling: { temperature: sampling.temperature, topP: sampling.topP, topK: sampling.topK, greedy: sampling.greedy ?? false, seed: b.seed },
      stopTokens: this.stopTokens,
      stride: s,
      outTokens: b.out.tokens.subarray(lo * s, hi * s),
      outLogp: b.out.logp.subarray(lo * s, hi * s),
      outLengths: b.out.lengths.subarray(lo, hi),
      outFinish: b.out.finish.subarray(lo, hi),
    };
    try {
      return await this.pool.run(task);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`RolloutEngine: policy '${b.policy}' rows ${lo}..${hi - 1} failed in a pool worker: ${msg}`, { cause: err });
    }
  }
}
