// The one typed door to the native addon (native/addon). Everything else in TypeScript goes
// through `loadBinding()`; nothing outside this file knows the addon's file name or loader.
// The shapes below mirror native/addon/*_wrap.cpp exactly: field names are camelCase forms of
// the C++ fields, typed arrays are borrowed by pointer (never copied), and outputs are written
// into arrays the caller allocates (SharedArrayBuffer-backed when they cross threads).
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A batch of variable-length sequences packed back to back (no padding). */
export interface PackedSequences {
  /** All tokens of all sequences, concatenated. */
  tokens: Int32Array;
  /** Sequence boundaries: [0, end of seq 0, end of seq 1, ..., tokens.length]. */
  cuSeqlens: Int32Array;
}

/** What one PPO/GRPO loss piece trains on; per-token arrays are aligned with `tokens`. */
export interface TrainBatch extends PackedSequences {
  /** 1 where the token is a trained response token, 0 for prompt tokens. */
  lossMask: Uint8Array;
  /** Rollout log-prob of each token under the sampling policy (0 where unused). */
  oldLogp?: Float32Array;
  /** Reference-policy log-probs, required when a KL penalty is configured. */
  refLogp?: Float32Array;
  /** One advantage per sequence. */
  advantages?: Float32Array;
}

/** KL estimator of the optional penalty to a reference policy. */
export type KlEstimatorName = 'none' | 'k1' | 'k2' | 'k3';
/** How per-token loss terms are combined (verl's loss_agg_mode names). */
export type LossAggregation = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum' | 'constant';

/** Loss settings as the addon reads them (unset fields keep the C++ defaults). */
export interface NativeLossSpec {
  clipEpsLow?: number;
  clipEpsHigh?: number;
  dualClipC?: number;
  logRatioClamp?: number;
  kl?: KlEstimatorName;
  klCoef?: number;
  entropyCoef?: number;
  temperature?: number;
  aggregation?: LossAggregation;
  globalNumSeqs?: number;
  globalNumTokens?: number;
  constantNorm?: number;
  supervised?: boolean;
}

/** Options of one accumulation piece as the addon reads them. */
export interface NativePieceOptions {
  role?: string;
  track?: boolean;
  emaDecay?: number;
  dampingLambda?: number;
  gradScale?: number;
  maxTokensPerMicro?: number;
}

/** AdamW + clipping settings as the addon reads them. */
export interface NativeOptimParams {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  maxGradNorm?: number;
}

/** A generate call as the addon reads it: all outputs are caller-provided arrays. */
export interface NativeGenerateRequest {
  prompts: PackedSequences;
  maxNewTokens: Int32Array;
  callIds: BigUint64Array;
  temperature?: number;
  topK?: number;
  topP?: number;
  greedy?: boolean;
  seed?: number | bigint;
  stopTokens?: readonly number[] | Int32Array;
  stride?: number;
  outTokens: Int32Array;
  outLogp: Float32Array;
  outLengths: Int32Array;
  outFinish: Uint8Array;
}

/** Token counts and timings of one generate call. */
export interface GenerateStats {
  promptTokens: number;
  newTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

/** Loss and diagnostics of one accumulated piece (see PieceStats in native/train/policy.h). */
export interface PieceStats {
  loss: number;
  tokens: number;
  numSeqs: number;
  entropyMean: number;
  clipLowFrac: number;
  clipHighFrac: number;
  dualClipFrac: number;
  ratioMean: number;
  ratioMax: number;
  approxKl: number;
  refKl: number;
  logpMean: number;
  gradNorm: number;
  rawGradNorm: number;
  emaNorm: number;
  cosEma: number;
  hasEma: boolean;
  dampingScale: number;
}

/** Result of one optimizer step. */
export interface StepStats {
  /** Global gradient norm before clipping. */
  gradNorm: number;
  clipScale: number;
  /** Optimizer steps taken so far, this one included. */
  step: number;
  /** True when the gradient was not finite: no update was made and the gradient was dropped. */
  skipped: boolean;
}

/** Bytes per memory category. */
export interface MemoryCategories {
  weights: number;
  grads: number;
  optimizer: number;
  activations: number;
  kvCache: number;
  /** Rotary tables and the packed inference copy of the weights (built on first generate). */
  workspace: number;
}

/** A policy's memory accounting in bytes (peak of the total, not the sum of peaks). */
export interface MemoryReport {
  current: MemoryCategories;
  peak: MemoryCategories;
  totalCurrent: number;
  totalPeak: number;
}

/** A Hugging Face Qwen3 config.json object. */
export type Qwen3Config = Record<string, unknown>;

/** One parameter tensor's place in the flat parameter vector. */
export interface TensorInfo {
  name: string;
  shape: number[];
  offset: number;
  numel: number;
}

/** Static facts about a policy. */
export interface PolicyInfo {
  handle: number;
  config: Qwen3Config;
  numParameters: number;
  optimizerSteps: number;
  backend: string;
  tensors: TensorInfo[];
}

/** Result of the GEMM peak measurement (the MFU denominator). */
export interface GemmPeak {
  gflops: number;
  threads: number;
  size: number;
}

/** Options of createPolicy: exactly one of preset or config. */
export interface NativeCreateOptions {
  preset?: string;
  config?: Qwen3Config | string;
  vocabSize?: number;
  seed?: number | bigint;
}

/** The addon's functions. `xxx` returns a Promise (runs off the event loop); `xxxSync` blocks. */
export interface NativeBinding {
  readonly backend: string;
  readonly abiVersion: number;

  createPolicy(opts: NativeCreateOptions): Promise<number>;
  createPolicySync(opts: NativeCreateOptions): number;
  loadPolicy(dir: string): Promise<number>;
  loadPolicySync(dir: string): number;
  savePolicy(h: number, dir: string, opts?: { optimizer?: boolean }): Promise<void>;
  savePolicySync(h: number, dir: string, opts?: { optimizer?: boolean }): void;
  copyPolicy(dst: number, src: number, opts?: { optimizer?: boolean }): Promise<void>;
  copyPolicySync(dst: number, src: number, opts?: { optimizer?: boolean }): void;
  retainPolicy(h: number): number;
  disposePolicy(h: number): void;
  listPolicies(): { handle: number; refs: number }[];
  policyInfo(h: number): PolicyInfo;
  memory(h: number): MemoryReport;
  readParams(h: number, out: Float32Array): Promise<void>;
  readParamsSync(h: number, out: Float32Array): void;
  writeParams(h: number, params: Float32Array): Promise<void>;
  writeParamsSync(h: number, params: Float32Array): void;
  readGrads(h: number, out: Float32Array): Promise<void>;
  readGradsSync(h: number, out: Float32Array): void;

  forwardLogprobs(h: number, batch: PackedSequences, temperature: number, outLogp: Float32Array, outEntropy?: Float32Array): Promise<void>;
  forwardLogprobsSync(h: number, batch: PackedSequences, temperature: number, outLogp: Float32Array, outEntropy?: Float32Array): void;
  forwardLogits(h: number, batch: PackedSequences, outLogits: Float32Array): Promise<void>;
  forwardLogitsSync(h: number, batch: PackedSequences, outLogits: Float32Array): void;
  generate(h: number, request: NativeGenerateRequest): Promise<GenerateStats>;
  generateSync(h: number, request: NativeGenerateRequest): GenerateStats;

  accumulate(h: number, batch: TrainBatch, loss?: NativeLossSpec, piece?: NativePieceOptions): Promise<PieceStats>;
  accumulateSync(h: number, batch: TrainBatch, loss?: NativeLossSpec, piece?: NativePieceOptions): PieceStats;
  step(h: number, optim?: NativeOptimParams): Promise<StepStats>;
  stepSync(h: number, optim?: NativeOptimParams): StepStats;
  zeroGrad(h: number): void;
  releaseTrainingState(h: number): void;

  setThreads(n: number, scope?: 'process' | 'thread'): void;
  getThreads(): number;
  hardwareCores(): number;
  measureGemmPeak(seconds?: number): Promise<GemmPeak>;
  measureGemmPeakSync(seconds?: number): GemmPeak;
  bufferAddress(array: ArrayBufferView): bigint;
  lastBorrowed(): Record<string, bigint>;
}

/** The addon ABI this TypeScript was written against (native/addon/module.cpp). */
export const EXPECTED_ABI_VERSION = 1;

/** The package root (the folder with troupe's package.json), from source or from dist/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'troupe') return dir;
      } catch {
        // Not valid JSON: not our package.json; keep walking up.
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('troupe: could not find the package root (package.json) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

let cached: NativeBinding | undefined;

function buildHint(root: string): string {
  return `Build it with \`npm install\` (or \`npm run build\`) in ${root}; that needs cmake and a C++17 compiler.`;
}

/**
 * Path of the addon file this process loads: `TROUPE_ADDON` when set (a CUDA variant, a debug
 * build), otherwise what node-gyp-build finds under the package root (build/Release/troupe.node).
 * Workers that load the addon themselves use the same path.
 */
export function addonPath(): string {
  const override = process.env.TROUPE_ADDON;
  if (override) return path.resolve(override);
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  try {
    return nodeGypBuild.path(root);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`troupe: no native addon build was found (${why}).\n${buildHint(root)}`, { cause: err });
  }
}

/** The addon, loaded once per thread (each worker thread loads its own module instance). */
export function loadBinding(): NativeBinding {
  if (cached) return cached;
  const file = addonPath();
  let addon: NativeBinding;
  try {
    addon = createRequire(import.meta.url)(file) as NativeBinding;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`troupe: the native addon ${file} could not be loaded (${why}).\n${buildHint(packageRoot())}`, {
      cause: err,
    });
  }
  if (addon.abiVersion !== EXPECTED_ABI_VERSION) {
    throw new Error(
      `troupe: the native addon ${file} has ABI version ${String(addon.abiVersion)} but this code ` +
        `expects ${EXPECTED_ABI_VERSION}; rebuild it with \`npm run build\`.`,
    );
  }
  cached = addon;
  return addon;
}
