// Core throughput benchmark (`npm run bench`): for each preset, (a) one full training step
// (forward, GRPO loss, backward, grad clip, AdamW) on 16 sequences x 128 tokens with the first
// quarter of each sequence masked as prompt, and (b) sampling with the KV cache for a batch of 64
// prompts of 32 tokens, 64 new tokens each at temperature 0.7. Reports tokens/s, achieved GFLOP/s
// and MFU against the GEMM peak measured first on the same threads. One warm-up run, then the
// median of the timed runs. Human table first, one JSON line last.
//
// Flags: --presets tiny,small,medium  --threads N  --repeats K  --gemm-seconds S
import { performance } from 'node:perf_hooks';
import {
  allocFloat32,
  allocUint8,
  callIdArray,
  hardwareCores,
  measureGemmPeakSync,
  packSequences,
  Policy,
  setThreads,
  type GemmPeak,
  type PresetName,
  type TrainBatch,
} from '../src/native/index.js';

const VOCAB = 320;
const TRAIN_SEQS = 16, TRAIN_LEN = 128;
const SAMPLE_BATCH = 64, PROMPT_LEN = 32, NEW_TOKENS = 64;

interface Args {
  presets: PresetName[];
  threads: number;
  repeats: number;
  gemmSeconds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { presets: ['tiny', 'small', 'medium'], threads: hardwareCores(), repeats: 3, gemmSeconds: 1 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const need = (): string => {
      if (value === undefined) throw new Error(`bench: ${flag} needs a value`);
      i++;
      return value;
    };
    const positiveInt = (s: string): number => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`bench: ${flag} must be a positive integer (got ${s})`);
      return n;
    };
    if (flag === '--presets') {
      const names = need().split(',').map((s) => s.trim()).filter(Boolean);
      for (const n of names) if (!['tiny', 'small', 'medium'].includes(n)) throw new Error(`bench: unknown preset '${n}' (tiny, small, medium)`);
      args.presets = names as PresetName[];
    } else if (flag === '--threads') args.threads = positiveInt(need());
    else if (flag === '--repeats') args.repeats = positiveInt(need());
    else if (flag === '--gemm-seconds') args.gemmSeconds = Number(need());
    else throw new Error(`bench: unknown flag ${flag} (--presets, --threads, --repeats, --gemm-seconds)`);
  }
  return args;
}

/** mulberry32: a small deterministic PRNG so every run benchmarks the same data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs fn once to warm up, then `repeats` times; returns the per-run seconds. */
function timeRuns<T>(repeats: number, fn: () => T): { seconds: number[]; last: T } {
  let last = fn();
  const seconds: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    last = fn();
    seconds.push((performance.now() - t0) / 1000);
  }
  return { seconds, last };
}

interface Shape {
  layers: number;
  qHeads: number;
  headDim: number;
  /** Parameters that take part in matrix products (the tied embedding counts once, as the LM head). */
  matmulParams: number;
}

function shapeOf(p: Policy): Shape {
  const c = p.config;
  const hidden = Number(c.hidden_size), vocab = Number(c.vocab_size);
  return {
    layers: Number(c.num_hidden_layers),
    qHeads: Number(c.num_attention_heads),
    headDim: Number(c.head_dim),
    // Untied: the input embedding is a lookup, not a GEMM.
    matmulParams: p.numParameters - (c.tie_word_embeddings ? 0 : vocab * hidden),
  };
}

/** Causal attention FLOPs of one forward over a sequence of n tokens: QK^T and PV, 2 FLOPs/MAC. */
function causalAttentionFlops(s: Shape, n: number): number {
  return s.layers * 4 * s.qHeads * s.headDim * ((n * (n + 1)) / 2);
}

interface Measured {
  seconds: number;
  runs: number[];
  tokensPerSec: number;
  gflops: number;
  mfu: number;
}

function measured(runs: number[], tokens: number, flops: number, peak: GemmPeak): Measured {
  const seconds = median(runs);
  const gflops = flops / seconds / 1e9;
  return { seconds, runs, tokensPerSec: tokens / seconds, gflops, mfu: gflops / peak.gflops };
}

function trainBatch(p: Policy, seed: number): TrainBatch {
  const rand = rng(seed);
  const seqs = Array.from({ length: TRAIN_SEQS }, () => Array.from({ length: TRAIN_LEN }, () => Math.floor(rand() * VOCAB)));
  const packed = packSequences(seqs);
  const lossMask = allocUint8(packed.tokens.length);
  for (let s = 0; s < TRAIN_SEQS; s++) lossMask.fill(1, s * TRAIN_LEN + TRAIN_LEN / 4, (s + 1) * TRAIN_LEN);
  const advantages = allocFloat32(TRAIN_SEQS);
  for (let s = 0; s < TRAIN_SEQS; s++) advantages[s] = rand() < 0.5 ? -1 : 1;
  const batch: TrainBatch = { ...packed, lossMask, advantages };
  batch.oldLogp = p.forwardLogprobsSync(batch).logp; // rollout log-probs from a forward pass
  return batch;
}

function benchTrain(p: Policy, s: Shape, repeats: number, peak: GemmPeak): Measured & { loss: number } {
  const batch = trainBatch(p, 1);
  // lr 0 keeps the weights (and so every timed step's work) identical; AdamW still runs in full.
  const { seconds, last } = timeRuns(repeats, () => {
    const st = p.accumulateSync(batch, {}, { role: 'bench', track: false });
    p.stepSync({ lr: 0 });
    return st;
  });
  const tokens = TRAIN_SEQS * TRAIN_LEN;
  const flops = 6 * s.matmulParams * tokens + 3 * TRAIN_SEQS * causalAttentionFlops(s, TRAIN_LEN);
  return { ...measured(seconds, tokens, flops, peak), loss: last.loss };
}

interface SampleMeasured extends Measured {
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

function benchSample(p: Policy, s: Shape, repeats: number, peak: GemmPeak): SampleMeasured {
  const rand = rng(2);
  const prompts = packSequences(Array.from({ length: SAMPLE_BATCH }, () => Array.from({ length: PROMPT_LEN }, () => Math.floor(rand() * VOCAB))));
  const callIds = callIdArray(Array.from({ length: SAMPLE_BATCH }, (_, i) => i));
  const stats: { prefill: number; decode: number; newTokens: number }[] = [];
  const { seconds } = timeRuns(repeats, () => {
    // No stop tokens: every row generates exactly NEW_TOKENS, so each run does the same work.
    const r = p.generateSync({ prompts, maxNewTokens: NEW_TOKENS, callIds, sampling: { temperature: 0.7 }, stopTokens: [] });
    stats.push({ prefill: r.stats.prefillSeconds, decode: r.stats.decodeSeconds, newTokens: r.stats.newTokens });
    return r;
  });
  const timed = stats.slice(1);
  const newTokens = timed[0].newTokens;
  // Prefill: 2N per prompt token + causal attention; decode: 2N per token + attention over the
  // cache (the token at completion position j attends to PROMPT_LEN + j + 1 keys).
  let decodeAttn = 0;
  for (let j = 0; j < NEW_TOKENS; j++) decodeAttn += s.layers * 4 * s.qHeads * s.headDim * (PROMPT_LEN + j + 1);
  const flops =
    2 * s.matmulParams * SAMPLE_BATCH * (PROMPT_LEN + NEW_TOKENS) +
    SAMPLE_BATCH * (causalAttentionFlops(s, PROMPT_LEN) + decodeAttn);
  const prefillSeconds = median(timed.map((t) => t.prefill));
  const decodeSeconds = median(timed.map((t) => t.decode));
  return {
    ...measured(seconds, newTokens, flops, peak),
    prefillSeconds,
    decodeSeconds,
    prefillTokensPerSec: prefillSeconds > 0 ? (SAMPLE_BATCH * PROMPT_LEN) / prefillSeconds : 0,
    decodeTokensPerSec: decodeSeconds > 0 ? newTokens / decodeSeconds : 0,
  };
}

function fmt(x: number, digits = 1): string {
  if (x >= 1e6) return (x / 1e6).toFixed(2) + 'M';
  if (x >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  return x.toFixed(digits);
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  setThreads(args.threads);
  const peak = measureGemmPeakSync(args.gemmSeconds);
  const results = [];
  for (const preset of args.presets) {
    const p = Policy.createSync({ preset, vocabSize: VOCAB, seed: 1 });
    const shape = shapeOf(p);
    const train = benchTrain(p, shape, args.repeats, peak);
    p.releaseTrainingState(); // sampling memory is measured without training buffers around
    const sample = benchSample(p, shape, args.repeats, peak);
    results.push({ preset, params: p.numParameters, train, sample, memoryPeakBytes: p.memory().totalPeak });
    p.dispose();
  }

  console.log(`troupe core benchmark: ${args.threads} thread(s), GEMM peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.size}^3 on ${peak.threads} thread(s)), median of ${args.repeats} after 1 warm-up`);
  console.log(`train: ${TRAIN_SEQS} x ${TRAIN_LEN} tokens, first quarter prompt; sample: batch ${SAMPLE_BATCH}, prompt ${PROMPT_LEN}, ${NEW_TOKENS} new tokens, T=0.7`);
  const header = ['preset', 'params', 'train tok/s', 'train GFLOP/s', 'train MFU', 'sample tok/s', 'prefill tok/s', 'decode tok/s', 'sample GFLOP/s', 'sample MFU'];
  const rows = results.map((r) => [
    r.preset,
    fmt(r.params),
    fmt(r.train.tokensPerSec),
    r.train.gflops.toFixed(1),
    (100 * r.train.mfu).toFixed(1) + '%',
    fmt(r.sample.tokensPerSec),
    fmt(r.sample.prefillTokensPerSec),
    fmt(r.sample.decodeTokensPerSec),
    r.sample.gflops.toFixed(1),
    (100 * r.sample.mfu).toFixed(1) + '%',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
  console.log(JSON.stringify({ bench: 'core', threads: args.threads, repeats: args.repeats, gemmPeak: peak, results }));
}

main();
