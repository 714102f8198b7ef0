// Late-bound entry points of the training stack. They are imported when a command needs them, so
// `troupe --help`, `report` and config validation work without loading the native addon, and a
// missing piece is one clear error instead of a crash at start-up.
import type { TrainConfig } from '../rl/config.js';
import type { TrainHooks, TrainSummary } from '../rl/hooks.js';

/** The trainer's entry point (src/rl/trainer.ts). */
export type TrainFn = (config: TrainConfig, hooks: TrainHooks) => Promise<TrainSummary>;

/** What `troupe eval` passes to `evaluateCheckpoint` (src/rl/evaluate.ts). */
export interface EvaluateCheckpointOptions {
  /** A run directory or one of its checkpoint directories. */
  checkpoint: string;
  /** Settings that override the run's saved config (only those given on the command line). */
  overrides: Partial<TrainConfig>;
  hooks: TrainHooks;
}

/** What `evaluateCheckpoint` resolves to; extra fields are printed in --json output. */
export interface CheckpointEvalResult {
  accuracy: number;
  n: number;
  /** Greedy-decoding accuracy, when it was evaluated. */
  greedy?: number;
  seconds?: number;
  [key: string]: unknown;
}

/** `evaluateCheckpoint`'s signature. */
export type EvaluateCheckpointFn = (opts: EvaluateCheckpointOptions) => Promise<CheckpointEvalResult>;

/** Raised when a module of the training stack is not there (yet); exit code 1 with its message. */
export class NotAvailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotAvailableError';
  }
}

async function importExport<T>(specifier: string, name: string, what: string): Promise<T> {
  let mod: Record<string, unknown>;
  try {
    // A variable specifier keeps the compiler from requiring the module to exist at build time.
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (e) {
    // Only the module itself being absent means "not available"; a module it imports being
    // absent is a broken build and keeps its own error.
    const err = e as NodeJS.ErrnoException & { url?: string };
    const missing = err.url ?? /Cannot find module '([^']+)'/.exec(String(err.message))?.[1] ?? '';
    const base = specifier.slice(specifier.lastIndexOf('/') + 1).replace(/\.js$/, '');
    if (err.code === 'ERR_MODULE_NOT_FOUND' && new RegExp(`[/\\\\]${base}\\.(js|ts)$`).test(missing)) {
      throw new NotAvailableError(`${what} is not available in this build (${specifier} is missing)`);
    }
    throw e;
  }
  const fn = mod[name];
  if (typeof fn !== 'function') throw new NotAvailableError(`${what} is not available in this build (${specifier} has no export '${name}')`);
  return fn as T;
}

/** `train` from src/rl/trainer.ts. */
export function loadTrainer(): Promise<TrainFn> {
  return importExport<TrainFn>('../rl/trainer.js', 'train', 'training');
}

/** `evaluateCheckpoint` from src/rl/evaluate.ts. */
export function loadEvaluateCheckpoint(): Promise<EvaluateCheckpointFn> {
  return importExport<EvaluateCheckpointFn>('../rl/evaluate.js', 'evaluateCheckpoint', 'checkpoint evaluation');
}
