// A policy (Qwen3 weights + gradients + AdamW state) living in the native core, addressed by a
// process-wide handle. Every heavy method comes in two forms: `xxx()` returns a Promise and runs
// off the event loop (the main thread), `xxxSync()` blocks (inside Piscina workers, which are
// already off the main loop). A worker attaches to the main thread's policy with
// `Policy.fromHandle(handle)`, so weights exist once per process however many threads use them.
import {
  loadBinding,
  type GemmPeak,
  type MemoryReport,
  type NativeBinding,
  type PackedSequences,
  type PieceStats,
  type PolicyInfo,
  type Qwen3Config,
  type StepStats,
  type TrainBatch,
} from './binding.js';
import { nativeGenerateRequest, type GenerateRequest, type GenerateResult } from './generate.js';
import {
  lossSpec,
  optimParams,
  pieceOptions,
  DEFAULT_SAMPLING,
  type LossOptions,
  type OptimOptions,
  type PieceOptions,
} from './options.js';
import { allocFloat32 } from './pack.js';

/** Shape presets shared with the C++ core and the benchmarks. */
export type PresetName = 'tiny' | 'small' | 'medium';

/** How to build a fresh, randomly initialised policy. */
export interface CreatePolicyOptions {
  /** Shape preset (default 'tiny' when no config is given). */
  preset?: PresetName;
  /** A Hugging Face Qwen3 config.json object (or its text) instead of a preset. */
  config?: Qwen3Config | string;
  /** Vocabulary size (default 320 for presets; overrides the config's when given). */
  vocabSize?: number;
  /** Initialisation seed (default 0). */
  seed?: number | bigint;
}

/** Options of forwardLogprobs. */
export interface ForwardLogprobsOptions {
  /** Temperature the logits are divided by (default 0.7, the sampling temperature). */
  temperature?: number;
  /** Where to write log-probs (default: a new SharedArrayBuffer-backed array). */
  out?: Float32Array;
  /** Also compute per-token entropy: true allocates, an array is written in place. */
  entropy?: boolean | Float32Array;
}

/** Per-token log-probs (entry t scores tokens[t]; 0 for the first token of each sequence). */
export interface LogprobsResult {
  logp: Float32Array;
  entropy?: Float32Array;
}

/** Whether a save/copy includes the AdamW state. */
export interface OptimizerStateOption {
  optimizer?: boolean;
}

// A Policy that is garbage-collected without dispose() still returns its reference.
const finalizer = new FinalizationRegistry<number>((handle) => {
  try {
    loadBinding().disposePolicy(handle);
  } catch {
    // The environment is shutting down; the addon returns this thread's references itself.
  }
});

function batchOf(b: PackedSequences): PackedSequences {
  // Only the two fields: a TrainBatch may be scored as it is, without the addon seeing the rest.
  return { tokens: b.tokens, cuSeqlens: b.cuSeqlens };
}

/** A native policy; call dispose() when done (a finalizer is only the safety net). */
export class Policy {
  /** Process-wide handle: post it to a worker and attach there with Policy.fromHandle. */
  readonly handle: number;
  /** The model's Hugging Face config.json object. */
  readonly config: Qwen3Config;
  /** Number of parameters (embedding counted once when tied). */
  readonly numParameters: number;
  private readonly native: NativeBinding;
  private disposed = false;

  private constructor(native: NativeBinding, handle: number) {
    this.native = native;
    this.handle = handle;
    const info = native.policyInfo(handle);
    this.config = info.config;
    this.numParameters = info.numParameters;
    finalizer.register(this, handle, this);
  }

  private static createArgs(opts: CreatePolicyOptions): CreatePolicyOptions {
    return opts.config === undefined && opts.preset === undefined ? { ...opts, preset: 'tiny' } : opts;
  }

  /** Creates a randomly initialised policy off the event loop. */
  static async create(opts: CreatePolicyOptions = {}): Promise<Policy> {
    const native = loadBinding();
    return new Policy(native, await native.createPolicy(Policy.createArgs(opts)));
  }

  /** Creates a randomly initialised policy (blocking). */
  static createSync(opts: CreatePolicyOptions = {}): Policy {
    const native = loadBinding();
    return new Policy(native, native.createPolicySync(Policy.createArgs(opts)));
  }

  /** Loads config.json + model.safetensors (+ optimizer.safetensors) from a directory. */
  static async load(dir: string): Promise<Policy> {
    const native = loadBinding();
    return new Policy(native, await native.loadPolicy(dir));
  }

  /** Loads a checkpoint directory (blocking). */
  static loadSync(dir: string): Policy {
    const native = loadBinding();
    return new Policy(native, native.loadPolicySync(dir));
  }

  /** Attaches to a policy created elsewhere in this process (e.g. by the main thread). */
  static fromHandle(handle: number): Policy {
    const native = loadBinding();
    return new Policy(native, native.retainPolicy(handle));
  }

  private live(): number {
    if (this.disposed) throw new Error(`Policy ${this.handle} was disposed`);
    return this.handle;
  }

  /** Static facts: config, parameter count, optimizer steps, tensor layout. */
  info(): PolicyInfo {
    return this.native.policyInfo(this.live());
  }

  /** Vocabulary size of the model. */
  get vocabSize(): number {
    return Number(this.config.vocab_size);
  }

  /** The config's eos_token_id as a list (the default stop tokens of generate). */
  get eosTokenIds(): number[] {
    const e = this.config.eos_token_id;
    if (typeof e === 'number') return [e];
    return Array.isArray(e) ? e.filter((x): x is number => typeof x === 'number') : [];
  }

  /** AdamW steps taken so far. */
  get optimizerSteps(): number {
    return this.native.policyInfo(this.live()).optimizerSteps;
  }

  /** Writes config.json + model.safetensors (+ optimizer state) atomically into dir. */
  save(dir: string, opts: OptimizerStateOption = {}): Promise<void> {
    return this.native.savePolicy(this.live(), dir, { optimizer: opts.optimizer ?? false });
  }

  /** Blocking save. */
  saveSync(dir: string, opts: OptimizerStateOption = {}): void {
    this.native.savePolicySync(this.live(), dir, { optimizer: opts.optimizer ?? false });
  }

  /** Copies weights (and optionally optimizer state) from a policy of the same shape. */
  copyFrom(src: Policy, opts: OptimizerStateOption = {}): Promise<void> {
    return this.native.copyPolicy(this.live(), src.live(), { optimizer: opts.optimizer ?? false });
  }

  /** Blocking copyFrom. */
  copyFromSync(src: Policy, opts: OptimizerStateOption = {}): void {
    this.native.copyPolicySync(this.live(), src.live(), { optimizer: opts.optimizer ?? false });
  }

  private logprobOutputs(batch: PackedSequences, opts: ForwardLogprobsOptions): LogprobsResult {
    const T = batch.tokens.length;
    const logp = opts.out ?? allocFloat32(T);
    const entropy = opts.entropy === true ? allocFloat32(T) : opts.entropy || undefined;
    return { logp, entropy };
  }

  /** Per-token log-probs (and entropies) of a packed batch, off the event loop. */
  async forwardLogprobs(batch: PackedSequences, opts: ForwardLogprobsOptions = {}): Promise<LogprobsResult> {
    const r = this.logprobOutputs(batch, opts);
    const t = opts.temperature ?? DEFAULT_SAMPLING.temperature;
    await this.native.forwardLogprobs(this.live(), batchOf(batch), t, r.logp, r.entropy);
    return r;
  }

  /** Blocking forwardLogprobs. */
  forwardLogprobsSync(batch: PackedSequences, opts: ForwardLogprobsOptions = {}): LogprobsResult {
    const r = this.logprobOutputs(batch, opts);
    const t = opts.temperature ?? DEFAULT_SAMPLING.temperature;
    this.native.forwardLogprobsSync(this.live(), batchOf(batch), t, r.logp, r.entropy);
    return r;
  }

  /** Logits [T, vocab] of a packed batch (tests, debugging). */
  async forwardLogits(batch: PackedSequences, out?: Float32Array): Promise<Float32Array> {
    const logits = out ?? allocFloat32(batch.tokens.length * this.vocabSize);
    await this.native.forwardLogits(this.live(), batchOf(batch), logits);
    return logits;
  }

  /** Blocking forwardLogits. */
  forwardLogitsSync(batch: PackedSequences, out?: Float32Array): Float32Array {
    const logits = out ?? allocFloat32(batch.tokens.length * this.vocabSize);
    this.native.forwardLogitsSync(this.live(), batchOf(batch), logits);
    return logits;
  }

  /** Samples completions with the KV cache, off the event loop; outputs are written in place. */
  async generate(req: GenerateRequest): Promise<GenerateResult> {
    const { native, stride, out } = nativeGenerateRequest(req, this.eosTokenIds);
    const stats = await this.native.generate(this.live(), native);
    return { ...out, stride, stats };
  }

  /** Blocking generate (Piscina workers). */
  generateSync(req: GenerateRequest): GenerateResult {
    const { native, stride, out } = nativeGenerateRequest(req, this.eosTokenIds);
    const stats = this.native.generateSync(this.live(), native);
    return { ...out, stride, stats };
  }

  /** Adds one piece's PPO/GRPO gradient to the step's accumulated gradient. */
  accumulate(batch: TrainBatch, loss?: Partial<LossOptions>, piece?: Partial<PieceOptions>): Promise<PieceStats> {
    return this.native.accumulate(this.live(), batch, lossSpec(loss), pieceOptions(piece));
  }

  /** Blocking accumulate. */
  accumulateSync(batch: TrainBatch, loss?: Partial<LossOptions>, piece?: Partial<PieceOptions>): PieceStats {
    return this.native.accumulateSync(this.live(), batch, lossSpec(loss), pieceOptions(piece));
  }

  /** Global-norm clip + AdamW on the accumulated gradient, then zeroes it. */
  step(optim?: Partial<OptimOptions>): Promise<StepStats> {
    return this.native.step(this.live(), optimParams(optim));
  }

  /** Blocking step. */
  stepSync(optim?: Partial<OptimOptions>): StepStats {
    return this.native.stepSync(this.live(), optimParams(optim));
  }

  /** Drops the accumulated gradient. */
  zeroGrad(): void {
    this.native.zeroGrad(this.live());
  }

  /** Frees gradient, optimizer and diagnostic buffers (e.g. a frozen reference policy). */
  releaseTrainingState(): void {
    this.native.releaseTrainingState(this.live());
  }

  /** Memory accounting per category, current and peak, in bytes. */
  memory(): MemoryReport {
    return this.native.memory(this.live());
  }

  /** All parameters, flat, in info().tensors order. */
  async readParams(out?: Float32Array): Promise<Float32Array> {
    const dst = out ?? allocFloat32(this.numParameters);
    await this.native.readParams(this.live(), dst);
    return dst;
  }

  /** Blocking readParams. */
  readParamsSync(out?: Float32Array): Float32Array {
    const dst = out ?? allocFloat32(this.numParameters);
    this.native.readParamsSync(this.live(), dst);
    return dst;
  }

  /** Overwrites all parameters from a flat array. */
  writeParams(params: Float32Array): Promise<void> {
    return this.native.writeParams(this.live(), params);
  }

  /** Blocking writeParams. */
  writeParamsSync(params: Float32Array): void {
    this.native.writeParamsSync(this.live(), params);
  }

  /** The accumulated gradient, flat (zeros when none). */
  readGradsSync(out?: Float32Array): Float32Array {
    const dst = out ?? allocFloat32(this.numParameters);
    this.native.readGradsSync(this.live(), dst);
    return dst;
  }

  /** True once dispose() was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Drops this wrapper's reference; the policy is freed when no thread holds one. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    finalizer.unregister(this);
    this.native.disposePolicy(this.handle);
  }
}

/** Every live policy in the process with its reference count (leak checks, debugging). */
export function listPolicies(): { handle: number; refs: number }[] {
  return loadBinding().listPolicies();
}

/** Best measured GEMM GFLOP/s at this thread's thread count (the MFU denominator). */
export function measureGemmPeak(seconds = 0.5): Promise<GemmPeak> {
  return loadBinding().measureGemmPeak(seconds);
}

/** Blocking measureGemmPeak. */
export function measureGemmPeakSync(seconds = 0.5): GemmPeak {
  return loadBinding().measureGemmPeakSync(seconds);
}
