// Option objects of the Policy API with the paper's reference configuration as defaults
// (DESIGN.md, "The paper's defaults"). The addon would fall back to the C++ defaults for unset
// fields; filling them here keeps one visible source of truth on the TypeScript side.
import type {
  KlEstimatorName,
  LossAggregation,
  NativeLossSpec,
  NativeOptimParams,
  NativePieceOptions,
} from './binding.js';

/** Sampling settings of a generate call. */
export interface SamplingOptions {
  /** Softmax temperature; 0 samples greedily. */
  temperature: number;
  /** Nucleus mass kept (1 = no truncation). */
  topP: number;
  /** Keep only the k most likely tokens (0 = no top-k). */
  topK: number;
  /** Argmax instead of sampling. */
  greedy: boolean;
  /** Run seed; with the call id and position it keys every random draw. */
  seed: number | bigint;
}

/** The paper's sampling: temperature 0.7, top-p 1, no top-k (training and evaluation). */
export const DEFAULT_SAMPLING: Readonly<SamplingOptions> = Object.freeze({
  temperature: 0.7,
  topP: 1,
  topK: 0,
  greedy: false,
  seed: 0,
});

/** PPO/GRPO loss settings of one accumulation piece. */
export interface LossOptions {
  /** Ratio lower bound is 1 - clipEpsLow. */
  clipEpsLow: number;
  /** Ratio upper bound is 1 + clipEpsHigh (asymmetric "clip-higher"). */
  clipEpsHigh: number;
  /** Dual-clip constant for negative advantages (<= 1 disables). */
  dualClipC: number;
  /** ratio = exp(clamp(logp - oldLogp, -c, c)). */
  logRatioClamp: number;
  /** KL estimator to the reference policy ('none' = no penalty). */
  kl: KlEstimatorName;
  klCoef: number;
  entropyCoef: number;
  /** Logit temperature of the loss; must equal the sampling temperature for on-policy ratios of 1. */
  temperature: number;
  aggregation: LossAggregation;
  /** Sequences in the whole optimizer step (0 = this piece alone), for piece-wise accumulation. */
  globalNumSeqs: number;
  /** Trained tokens in the whole optimizer step (0 = this piece alone). */
  globalNumTokens: number;
  /** Normaliser of the 'constant' aggregation. */
  constantNorm: number;
  /** Cross-entropy on masked tokens instead of PPO (warm-up). */
  supervised: boolean;
}

/**
 * The paper's loss: eps_low 0.2, eps_high 0.28, dual-clip 3, log-ratio clamp 20,
 * seq-mean-token-mean, no KL, no entropy. The loss temperature equals the sampling temperature
 * (0.7) so that the recomputed log-probs match the rollout's (the C++ default of 1 would not).
 */
export const DEFAULT_LOSS: Readonly<LossOptions> = Object.freeze({
  clipEpsLow: 0.2,
  clipEpsHigh: 0.28,
  dualClipC: 3,
  logRatioClamp: 20,
  kl: 'none',
  klCoef: 0,
  entropyCoef: 0,
  temperature: DEFAULT_SAMPLING.temperature,
  aggregation: 'seq-mean-token-mean',
  globalNumSeqs: 0,
  globalNumTokens: 0,
  constantNorm: 0,
  supervised: false,
});

/** Options of one accumulation piece (typically one role's rows). */
export interface PieceOptions {
  /** Key of the running-average gradient used for coherence diagnostics and damping. */
  role: string;
  /** Compute the piece's own gradient norm and cosine to its role's running average. */
  track: boolean;
  /** Running-average decay: e = decay * e + (1 - decay) * g. */
  emaDecay: number;
  /** Coherence damping: scale g by 1 - lambda * clamp(cos(g, e), 0, 1). */
  dampingLambda: number;
  /** Extra multiplier on this piece's gradient. */
  gradScale: number;
  /** Activation-memory bound per micro-batch (sequences are never split). */
  maxTokensPerMicro: number;
}

/** No damping, tracking on, micro-batches of up to 4096 tokens. */
export const DEFAULT_PIECE: Readonly<PieceOptions> = Object.freeze({
  role: '',
  track: true,
  emaDecay: 0.9,
  dampingLambda: 0,
  gradScale: 1,
  maxTokensPerMicro: 4096,
});

/** AdamW and gradient clipping settings of one optimizer step. */
export interface OptimOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global-norm clip (<= 0 disables). */
  maxGradNorm: number;
}

/** The paper's optimizer: AdamW lr 2e-5, betas (0.9, 0.999), weight decay 0.01, clip 1.0. */
export const DEFAULT_OPTIM: Readonly<OptimOptions> = Object.freeze({
  lr: 2e-5,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1,
});

/**
 * `defaults` overridden by the fields of `opts` that are set. Unlike a spread, a field explicitly
 * set to undefined keeps the default instead of erasing it (which would hand the addon an unset
 * field and silently select the C++ default).
 */
export function withDefaults<T extends object>(defaults: Readonly<T>, opts?: Partial<T>): T {
  const out = { ...defaults } as T;
  if (opts) {
    for (const [k, v] of Object.entries(opts)) {
      if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}

/** Full loss settings for the addon. */
export function lossSpec(opts?: Partial<LossOptions>): NativeLossSpec {
  return withDefaults(DEFAULT_LOSS, opts);
}

/** Full piece options for the addon. */
export function pieceOptions(opts?: Partial<PieceOptions>): NativePieceOptions {
  return withDefaults(DEFAULT_PIECE, opts);
}

/** Full optimizer settings for the addon. */
export function optimParams(opts?: Partial<OptimOptions>): NativeOptimParams {
  return withDefaults(DEFAULT_OPTIM, opts);
}
