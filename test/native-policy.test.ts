// The Policy binding end to end on the tiny preset: shapes, scoring, sampling, training, checkpoint
// round trips, memory accounting and disposal. References are independent of the code under test:
// parameter counts from the architecture formula, log-probs from float64 log-softmax over the
// logits, hand-packed batches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  completionLogprobs,
  completionTokens,
  listPolicies,
  packSequences,
  packTrainBatch,
  Policy,
  threadsPerCall,
  unpackSequences,
  type PackedSequences,
  type TrainBatch,
} from '../src/native/index.js';

const V = 320;
const tmpRoot = mkdtempSync(path.join(tmpdir(), 'troupe-policy-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** Deterministic token ids in [lo, V). */
function tokenSeq(n: number, seed: number, lo = 0): number[] {
  let x = seed * 2654435761 + 12345;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return lo + (x % (V - lo));
  });
}

/** float64 log-softmax of logits[row] / t, its value at `target` and the entropy. */
function refLogprob(logits: Float32Array, row: number, target: number, t: number): { logp: number; entropy: number } {
  const z = Array.from(logits.subarray(row * V, (row + 1) * V), (x) => x / t);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
  const entropy = -z.reduce((s, x) => s + Math.exp(x - lse) * (x - lse), 0);
  return { logp: z[target] - lse, entropy };
}

describe('Policy: creation and introspection', () => {
  it('creates the tiny preset with the architecture formula parameter count', () => {
    const p = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 1 });
    // tiny: hidden 128, 4 layers, 4 q heads, 2 kv heads, head dim 32, MLP 384, tied embedding.
    const H = 128, L = 4, hd = 32, Hq = 4, Hkv = 2, I = 384;
    const perLayer = H /* input norm */ + (Hq + 2 * Hkv) * hd * H /* q,k,v */ + Hq * hd * H /* o */ +
      2 * hd /* q/k norm */ + H /* post norm */ + 3 * H * I; /* gate, up, down */
    expect(p.numParameters).toBe(V * H + L * perLayer + H);
    expect(p.config.hidden_size).toBe(H);
    expect(p.config.num_hidden_layers).toBe(L);
    expect(p.config.vocab_size).toBe(V);
    expect(p.optimizerSteps).toBe(0);
    const info = p.info();
    expect(info.backend).toBe('cpu');
    const numelSum = info.tensors.reduce((s, t) => s + t.numel, 0);
    expect(numelSum).toBe(p.numParameters);
    for (const t of info.tensors) expect(t.shape.reduce((a, b) => a * b, 1)).toBe(t.numel);
    p.dispose();
  });

  it('creates from a Hugging Face config object and counts weights once in memory()', async () => {
    const base = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 2 });
    const q = await Policy.create({ config: base.config, vocabSize: 96, seed: 3 });
    expect(q.vocabSize).toBe(96);
    expect(q.numParameters).toBe(base.numParameters - (V - 96) * 128);
    const mem = q.memory();
    expect(mem.current.weights).toBe(q.numParameters * 4);
    expect(mem.current.grads).toBe(0);
    expect(mem.current.optimizer).toBe(0);
    expect(mem.totalCurrent).toBeGreaterThanOrEqual(mem.current.weights);
    base.dispose();
    q.dispose();
  });

  it('same seed gives the same weights, another seed different ones', () => {
    const a = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 7 });
    const b = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 7 });
    const c = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 8 });
    const pa = a.readParamsSync(), pb = b.readParamsSync(), pc = c.readParamsSync();
    expect(Buffer.compare(Buffer.from(pa.buffer), Buffer.from(pb.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(pa.buffer), Buffer.from(pc.buffer))).not.toBe(0);
    [a, b, c].forEach((p) => p.dispose());
  });
});

describe('Policy: scoring', () => {
  const p = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 11 });
  const seqs = [tokenSeq(9, 1), tokenSeq(1, 2), tokenSeq(17, 3), tokenSeq(5, 4)];
  const batch = packSequences(seqs);
  afterAll(() => p.dispose());

  it('forwardLogprobs equals float64 log-softmax of forwardLogits, shifted by one, at two temperatures', () => {
    const logits = p.forwardLogitsSync(batch);
    for (const t of [1, 0.7]) {
      const { logp, entropy } = p.forwardLogprobsSync(batch, { temperature: t, entropy: true });
      for (let s = 0; s < seqs.length; s++) {
        const b0 = batch.cuSeqlens[s], b1 = batch.cuSeqlens[s + 1];
        expect(logp[b0]).toBe(0); // the first token of a sequence is never scored
        for (let i = b0 + 1; i < b1; i++) {
          const ref = refLogprob(logits, i - 1, batch.tokens[i], t);
          expect(logp[i]).toBeCloseTo(ref.logp, 4);
          expect(entropy![i]).toBeCloseTo(ref.entropy, 4);
        }
      }
    }
  });

  it('a sequence scores the same alone as packed with others (no cross-sequence attention)', () => {
    const packed = p.forwardLogprobsSync(batch, { temperature: 1 }).logp;
    const views = unpackSequences(batch);
    seqs.forEach((s, i) => {
      const alone = p.forwardLogprobsSync(packSequences([s]), { temperature: 1 }).logp;
      const mine = packed.subarray(batch.cuSeqlens[i], batch.cuSeqlens[i + 1]);
      expect(Array.from(views[i])).toEqual(s);
      for (let j = 0; j < s.length; j++) expect(mine[j]).toBeCloseTo(alone[j], 5);
    });
  });

  it('async and sync scoring give bit-identical results', async () => {
    const a = p.forwardLogprobsSync(batch, { entropy: true });
    const b = await p.forwardLogprobs(batch, { entropy: true });
    expect(Array.from(b.logp)).toEqual(Array.from(a.logp));
    expect(Array.from(b.entropy!)).toEqual(Array.from(a.entropy!));
  });
});

describe('Policy: sampling', () => {
  const p = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 21 });
  const prompts = packSequences([tokenSeq(6, 5), tokenSeq(3, 6), tokenSeq(11, 7)]);
  const callIds = [101n, 202n, 303n];
  afterAll(() => p.dispose());

  it('returns the sampled tokens with log-probs equal to rescoring the completion at the sampling temperature', () => {
    const r = p.generateSync({ prompts, maxNewTokens: 12, callIds, sampling: { seed: 9 }, stopTokens: [] });
    expect(r.stats.newTokens).toBe(36);
    expect(r.stats.promptTokens).toBe(20);
    const full = unpackSequences(prompts).map((pr, b) => [...pr, ...completionTokens(r, b)]);
    const rescored = p.forwardLogprobsSync(packSequences(full), { temperature: 0.7 }).logp;
    let off = 0;
    unpackSequences(prompts).forEach((pr, b) => {
      expect(r.lengths[b]).toBe(12);
      expect(r.finish[b]).toBe(1); // no stop tokens: every row hits its limit
      const lp = completionLogprobs(r, b);
      for (let j = 0; j < 12; j++) {
        expect(completionTokens(r, b)[j]).toBeGreaterThanOrEqual(0);
        expect(completionTokens(r, b)[j]).toBeLessThan(V);
        expect(lp[j]).toBeCloseTo(rescored[off + pr.length + j], 4);
      }
      off += pr.length + 12;
    });
  });

  it('a row depends only on (seed, call id, position): alone, reordered and batched rows agree', () => {
    const all = p.generateSync({ prompts, maxNewTokens: 8, callIds, sampling: { seed: 4 }, stopTokens: [] });
    const seqs = unpackSequences(prompts);
    const reversed = p.generateSync({
      prompts: packSequences([...seqs].reverse()),
      maxNewTokens: 8,
      callIds: [...callIds].reverse(),
      sampling: { seed: 4 },
      stopTokens: [],
    });
    for (let b = 0; b < 3; b++) {
      const alone = p.generateSync({ prompts: packSequences([seqs[b]]), maxNewTokens: 8, callIds: [callIds[b]], sampling: { seed: 4 }, stopTokens: [] });
      expect(Array.from(completionTokens(alone, 0))).toEqual(Array.from(completionTokens(all, b)));
      expect(Array.from(completionTokens(reversed, 2 - b))).toEqual(Array.from(completionTokens(all, b)));
    }
    const other = p.generateSync({ prompts, maxNewTokens: 8, callIds, sampling: { seed: 5 }, stopTokens: [] });
    expect(Array.from(other.tokens)).not.toEqual(Array.from(all.tokens));
  });

  it('greedy picks the argmax of the logits; a stop token ends a row and is included', () => {
    const one = packSequences([tokenSeq(7, 8)]);
    const g = p.generateSync({ prompts: one, maxNewTokens: 1, callIds: [1n], sampling: { greedy: true }, stopTokens: [] });
    const logits = p.forwardLogitsSync(one);
    const last = logits.subarray(6 * V, 7 * V);
    expect(g.tokens[0]).toBe(last.indexOf(Math.max(...last)));
    // Use the greedy first token as the stop token: the row must end right after it.
    const s = p.generateSync({ prompts: one, maxNewTokens: 10, callIds: [1n], sampling: { greedy: true }, stopTokens: [g.tokens[0]] });
    expect(s.lengths[0]).toBe(1);
    expect(s.finish[0]).toBe(0);
    expect(s.tokens[0]).toBe(g.tokens[0]);
  });

  it('per-row limits and an explicit stride place rows at row * stride', () => {
    const r = p.generateSync({ prompts, maxNewTokens: new Int32Array([2, 0, 5]), stride: 7, callIds, stopTokens: [] });
    expect(r.stride).toBe(7);
    expect(Array.from(r.lengths)).toEqual([2, 0, 5]);
    expect(r.tokens.length).toBe(21);
    const ref = p.generateSync({ prompts, maxNewTokens: 5, callIds, stopTokens: [] });
    expect(Array.from(completionTokens(r, 2))).toEqual(Array.from(completionTokens(ref, 2)));
    expect(Array.from(completionTokens(r, 0))).toEqual(Array.from(completionTokens(ref, 0)).slice(0, 2));
  });

  it('async and sync sampling give bit-identical results', async () => {
    const req = { prompts, maxNewTokens: 10, callIds, sampling: { seed: 3 }, stopTokens: [] };
    const a = p.generateSync(req);
    const b = await p.generate(req);
    expect(Array.from(b.tokens)).toEqual(Array.from(a.tokens));
    expect(Array.from(b.logp)).toEqual(Array.from(a.logp));
    expect(Array.from(b.lengths)).toEqual(Array.from(a.lengths));
  });
});

describe('Policy: training', () => {
  /** A fixed batch: 4 sequences, prompt of 6 tokens then a completion of 10. */
  function fixedBatch(p: Policy, advantages: number[]): TrainBatch {
    const rows = advantages.map((a, i) => ({ promptTokens: tokenSeq(6, 40 + i), completionTokens: tokenSeq(10, 50 + i), logprobs: new Array<number>(10).fill(0), advantage: a }));
    const batch = packTrainBatch(rows);
    batch.oldLogp = p.forwardLogprobsSync(batch).logp; // on-policy: ratio 1 at the first step
    return batch;
  }

  /** Mean log-prob of the masked tokens of sequence s. */
  function maskedMean(batch: TrainBatch, logp: Float32Array, s: number): number {
    let sum = 0, n = 0;
    for (let t = batch.cuSeqlens[s]; t < batch.cuSeqlens[s + 1]; t++) if (batch.lossMask[t]) { sum += logp[t]; n++; }
    return sum / n;
  }

  it('supervised steps lower the cross-entropy on a fixed batch', () => {
    const p = Policy.createSync({ seed: 31 });
    const batch = fixedBatch(p, [0, 0, 0, 0]);
    const losses: number[] = [];
    for (let i = 0; i < 6; i++) {
      losses.push(p.accumulateSync(batch, { supervised: true }).loss);
      const st = p.stepSync({ lr: 3e-3 });
      expect(st.step).toBe(i + 1);
      expect(st.skipped).toBe(false);
    }
    expect(p.optimizerSteps).toBe(6);
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    // seq-mean-token-mean of -log p: at init it is close to ln(V) for a near-uniform model.
    expect(losses[0]).toBeGreaterThan(0.8 * Math.log(V));
    p.dispose();
  });

  it('GRPO steps raise the log-probs of positive-advantage sequences and lower the negative ones', () => {
    const p = Policy.createSync({ seed: 32 });
    const adv = [1, -1, 1, -1];
    const batch = fixedBatch(p, adv);
    const before = p.forwardLogprobsSync(batch).logp;
    let first: number | undefined;
    for (let i = 0; i < 4; i++) {
      const st = p.accumulateSync(batch, {}, { role: 'generator' });
      if (i === 0) {
        // On-policy first step: ratio 1, no clipping, loss = -mean_s(A_s) = 0 here.
        expect(st.ratioMean).toBeCloseTo(1, 5);
        expect(st.clipLowFrac + st.clipHighFrac + st.dualClipFrac).toBe(0);
        expect(st.tokens).toBe(40);
        first = st.loss;
      }
      p.stepSync({ lr: 2e-3 });
    }
    expect(first).toBeCloseTo(0, 5);
    const after = p.forwardLogprobsSync(batch).logp;
    adv.forEach((a, s) => {
      const delta = maskedMean(batch, after, s) - maskedMean(batch, before, s);
      expect(Math.sign(delta)).toBe(a);
    });
    p.dispose();
  });

  it('async and sync training give bit-identical weights and statistics', async () => {
    const a = Policy.createSync({ seed: 33 });
    const b = Policy.createSync({ seed: 33 });
    const batchA = fixedBatch(a, [1, -1, 0.5, -0.5]);
    const batchB = fixedBatch(b, [1, -1, 0.5, -0.5]);
    for (let i = 0; i < 2; i++) {
      const sa = a.accumulateSync(batchA, {}, { role: 'r' });
      const sb = await b.accumulate(batchB, {}, { role: 'r' });
      expect(sb).toEqual(sa);
      expect(await b.step({ lr: 1e-3 })).toEqual(a.stepSync({ lr: 1e-3 }));
    }
    const pa = a.readParamsSync(), pb = await b.readParams();
    expect(Buffer.compare(Buffer.from(pa.buffer), Buffer.from(pb.buffer))).toBe(0);
    a.dispose();
    b.dispose();
  });

  it('accounts gradient and optimizer memory and releases it', () => {
    const p = Policy.createSync({ seed: 34 });
    const n = p.numParameters;
    const batch = fixedBatch(p, [1, -1, 1, -1]);
    p.accumulateSync(batch, {}, { track: false });
    expect(p.memory().current.grads).toBeGreaterThanOrEqual(4 * n);
    const g = p.readGradsSync();
    expect(g.some((x) => x !== 0)).toBe(true);
    p.zeroGrad();
    expect(p.readGradsSync().every((x) => x === 0)).toBe(true);
    p.accumulateSync(batch, {}, { track: false });
    p.stepSync();
    const m = p.memory();
    expect(m.current.optimizer).toBe(2 * 4 * n); // AdamW m and v
    expect(m.peak.optimizer).toBe(2 * 4 * n);
    p.releaseTrainingState();
    const r = p.memory();
    expect(r.current.grads).toBe(0);
    expect(r.current.optimizer).toBe(0);
    expect(r.current.weights).toBe(4 * n);
    expect(r.totalPeak).toBeGreaterThanOrEqual(m.totalCurrent);
    p.dispose();
  });
});

describe('Policy: checkpoints, copies and lifetime', () => {
  it('save/load round-trips weights, config and optimizer state', async () => {
    const p = Policy.createSync({ seed: 41 });
    const batch = packTrainBatch([{ promptTokens: [1, 2, 3], completionTokens: [4, 5, 6], logprobs: [-1, -1, -1], advantage: 1 }]);
    p.accumulateSync(batch);
    p.stepSync({ lr: 1e-3 });
    const dir = path.join(tmpRoot, 'ckpt');
    await p.save(dir, { optimizer: true });
    const q = await Policy.load(dir);
    expect(q.config).toEqual(p.config);
    expect(q.optimizerSteps).toBe(1);
    const a = p.readParamsSync(), b = q.readParamsSync();
    expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer))).toBe(0);
    // Same optimizer state: one more identical step keeps them identical.
    p.accumulateSync(batch);
    q.accumulateSync(batch);
    p.stepSync({ lr: 1e-3 });
    q.stepSync({ lr: 1e-3 });
    expect(Buffer.compare(Buffer.from(p.readParamsSync().buffer), Buffer.from(q.readParamsSync().buffer))).toBe(0);
    p.dispose();
    q.dispose();
  });

  it('copyFrom and writeParams replace the weights', async () => {
    const a = Policy.createSync({ seed: 42 });
    const b = Policy.createSync({ seed: 43 });
    await b.copyFrom(a);
    expect(Buffer.compare(Buffer.from(b.readParamsSync().buffer), Buffer.from(a.readParamsSync().buffer))).toBe(0);
    const w = a.readParamsSync();
    w.fill(0.001);
    b.writeParamsSync(w);
    expect(b.readParamsSync().every((x) => x === Math.fround(0.001))).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('concurrent copies in opposite directions complete (no lock-order deadlock)', async () => {
    const a = Policy.createSync({ seed: 45 });
    const b = Policy.createSync({ seed: 46 });
    await Promise.all(Array.from({ length: 64 }, (_, i) => (i % 2 ? a.copyFrom(b) : b.copyFrom(a))));
    expect(Buffer.compare(Buffer.from(a.readParamsSync().buffer), Buffer.from(b.readParamsSync().buffer))).toBe(0);
    a.dispose();
    b.dispose();
  });

  it('fromHandle shares one policy; dispose drops references until it is freed', () => {
    const before = listPolicies().length;
    const p = Policy.createSync({ seed: 44 });
    const q = Policy.fromHandle(p.handle);
    expect(listPolicies().find((e) => e.handle === p.handle)?.refs).toBe(2);
    p.dispose();
    // Still alive through q: it scores, and it is the same weights.
    expect(q.forwardLogprobsSync(packSequences([[1, 2, 3]])).logp[1]).toBeLessThan(0);
    q.dispose();
    expect(listPolicies().length).toBe(before);
    expect(() => q.memory()).toThrow(/disposed/);
    expect(() => Policy.fromHandle(p.handle)).toThrow(/not a live policy/);
    p.dispose(); // idempotent
  });
});

describe('packing helpers and thread budget', () => {
  it('packTrainBatch aligns masks and log-probs with the completion tokens (hand-packed)', () => {
    const b = packTrainBatch([
      { promptTokens: [7, 8], completionTokens: [9], logprobs: [-0.5], advantage: 2 },
      { promptTokens: [1], completionTokens: [2, 3], logprobs: [-1, -2], advantage: -1 },
    ]);
    expect(Array.from(b.tokens)).toEqual([7, 8, 9, 1, 2, 3]);
    expect(Array.from(b.cuSeqlens)).toEqual([0, 3, 6]);
    expect(Array.from(b.lossMask)).toEqual([0, 0, 1, 0, 1, 1]);
    expect(Array.from(b.oldLogp!)).toEqual([0, 0, -0.5, 0, -1, -2]);
    expect(Array.from(b.advantages!)).toEqual([2, -1]);
    expect(b.tokens.buffer).toBeInstanceOf(SharedArrayBuffer);
    const plain: PackedSequences = packSequences([[1]], { shared: false });
    expect(plain.tokens.buffer).toBeInstanceOf(ArrayBuffer);
  });

  it('threadsPerCall is floor(cores / pool) and at least 1', () => {
    expect(threadsPerCall(1, 16)).toBe(16);
    expect(threadsPerCall(3, 16)).toBe(5);
    expect(threadsPerCall(4, 2)).toBe(1);
    expect(() => threadsPerCall(0, 2)).toThrow(/poolSize/);
  });
});
