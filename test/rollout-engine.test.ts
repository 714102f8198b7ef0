// The rollout engine: the Piscina pool and the in-process sampler draw exactly the completions a
// direct native generate call draws for the same call keys, whatever the batch composition,
// request order, worker count or policy mix; stop tokens end the text but stay in the tokens; the
// thread budget is validated. The pool runs dist/src/rollout/worker.js: `npm run build` first.
import { afterAll, describe, expect, it } from 'vitest';
import { renderChatTokens } from '../src/chat/render.js';
import { listPolicies, packSequences, Policy } from '../src/native/index.js';
import {
  CALL_ID_LIMITS,
  createRolloutSampler,
  InProcessSampler,
  mixSeeds,
  nativeCallId,
  resolveThreadBudget,
  RolloutEngine,
  splitCallId,
} from '../src/rollout/index.js';
import { planChunks } from '../src/rollout/plan.js';
import { buildRolloutTable, roleRanges, sliceRows, trainBatchView } from '../src/data/index.js';
import { isolatedRouting } from '../src/rl/routing.js';
import { MathTask } from '../src/tasks/math/task.js';
import { executeEpisodes } from '../src/workflows/executor.js';
import { VotingWorkflow } from '../src/workflows/voting.js';
import { ByteTokenizer } from '../src/tokenizer/byte-tokenizer.js';
import type { SampleRequest, SampleResult } from '../src/workflows/sampler.js';
import { callIdOf } from '../src/workflows/sampler.js';

const tok = new ByteTokenizer();
const V = tok.vocabSize;
const pa = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 11 });
const pb = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 12 });
const pc = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 13 });
const policies = new Map([
  ['a', pa],
  ['b', pb],
  ['c', pc],
]);
const RUN_SEED = 5;
const sampling = { temperature: 0.7, seed: RUN_SEED };
// The random tiny models rarely emit <|im_end|>; no stop tokens keeps every completion at its
// budget so rows of different lengths are exercised by the budgets below.
const noStops: number[] = [];
const samplers: { destroy(): Promise<void> }[] = [];
afterAll(async () => {
  for (const s of samplers) await s.destroy();
  for (const p of policies.values()) p.dispose();
});

function request(episode: number, call: number, policy: string, opts: { step?: number; seed?: number } = {}): SampleRequest {
  const key = { seed: opts.seed ?? 1, step: opts.step ?? 3, episode, call };
  return {
    callId: callIdOf(key),
    key,
    policy,
    role: policy === 'a' ? 'generator' : 'aggregator',
    copy: call,
    turn: 0,
    messages: [
      { role: 'system', content: 'You solve problems.' },
      { role: 'user', content: `Problem ${episode}: what is ${episode} + ${call}?`.repeat(1 + (episode % 3)) },
    ],
    maxTokens: 6 + ((episode * 7 + call * 3) % 11),
  };
}

// 18 requests over three policies, interleaved, with different prompt lengths and budgets.
const requests: SampleRequest[] = [];
for (let e = 0; e < 6; e++) for (let c = 0; c < 3; c++) requests.push(request(e, c, ['a', 'b', 'c'][(e + c) % 3]!));

/** The independent reference: one direct native call per request, outside any sampler code. */
function direct(r: SampleRequest, stopTokens: number[] = noStops) {
  const prompt = renderChatTokens(tok, r.messages, { addGenerationPrompt: true });
  const out = policies.get(r.policy)!.generateSync({
    prompts: packSequences([prompt]),
    maxNewTokens: r.maxTokens,
    callIds: [(BigInt(r.key.step) << 40n) | (BigInt(r.key.episode) << 16n) | BigInt(r.key.call)],
    sampling: { temperature: 0.7, seed: mixSeeds(RUN_SEED, r.key.seed) },
    stopTokens,
  });
  const n = out.lengths[0]!;
  return { prompt: Array.from(prompt), tokens: Array.from(out.tokens.subarray(0, n)), logp: Array.from(out.logp.subarray(0, n)), finish: out.finish[0] ? 'length' : 'stop' };
}
const reference = requests.map((r) => direct(r));

function expectMatches(results: SampleResult[], reqs: SampleRequest[]): void {
  expect(results.length).toBe(reqs.length);
  results.forEach((res, i) => {
    const ref = reference[requests.indexOf(reqs[i]!)]!;
    expect(Array.from(res.promptTokens), reqs[i]!.callId).toEqual(ref.prompt);
    expect(Array.from(res.completionTokens), reqs[i]!.callId).toEqual(ref.tokens);
    expect(Array.from(res.logprobs), reqs[i]!.callId).toEqual(ref.logp);
    expect(res.finish).toBe(ref.finish);
    expect(res.text).toBe(tok.decode(ref.tokens));
  });
}

function engine(opts: Partial<ConstructorParameters<typeof RolloutEngine>[0]> = {}): RolloutEngine {
  const e = new RolloutEngine({ policies, tokenizer: tok, sampling, stopTokens: noStops, cores: 2, ...opts });
  samplers.push(e);
  return e;
}

describe('call ids and seeds', () => {
  it('packs (step, episode, call) into 63 bits and checks each range', () => {
    expect(nativeCallId({ seed: 0, step: 1, episode: 2, call: 3 })).toBe(1n * 2n ** 40n + 2n * 2n ** 16n + 3n);
    const max = { seed: 0, step: CALL_ID_LIMITS.step - 1, episode: CALL_ID_LIMITS.episode - 1, call: CALL_ID_LIMITS.call - 1 };
    expect(nativeCallId(max)).toBe(2n ** 63n - 1n);
    expect(splitCallId(nativeCallId({ seed: 9, step: 4 << 20, episode: 77, call: 5 }))).toEqual({ step: 4 << 20, episode: 77, call: 5 });
    expect(() => nativeCallId({ seed: 0, step: 2 ** 23, episode: 0, call: 0 })).toThrow(/key.step must be an integer in \[0, 8388608\)/);
    expect(() => nativeCallId({ seed: 0, step: 0, episode: 2 ** 24, call: 0 })).toThrow(/key.episode/);
    expect(() => nativeCallId({ seed: 0, step: 0, episode: 0, call: 65536 })).toThrow(/key.call/);
    expect(() => nativeCallId({ seed: 0, step: -1, episode: 0, call: 0 })).toThrow(/key.step/);
  });

  it('mixes the run seed with the key seed deterministically into distinct 64-bit seeds', () => {
    expect(mixSeeds(5, 1)).toBe(mixSeeds(5, 1));
    const seen = new Set<bigint>();
    for (let r = 0; r < 8; r++) for (let k = 0; k < 8; k++) seen.add(mixSeeds(r, k));
    expect(seen.size).toBe(64);
    for (const s of seen) expect(s >= 0n && s < 2n ** 64n).toBe(true);
    expect(() => mixSeeds(-1, 0)).toThrow(/runSeed/);
  });
});

describe('thread budget', () => {
  it('auto: min(cores, max(policies, 2)) workers and floor(cores / workers) threads', () => {
    expect(resolveThreadBudget({ cores: 2, policies: 1 })).toEqual({ workers: 2, threadsPerCall: 1, cores: 2 });
    expect(resolveThreadBudget({ cores: 16, policies: 1 })).toEqual({ workers: 2, threadsPerCall: 8, cores: 16 });
    expect(resolveThreadBudget({ cores: 16, policies: 3 })).toEqual({ workers: 3, threadsPerCall: 5, cores: 16 });
    expect(resolveThreadBudget({ cores: 1, policies: 3 })).toEqual({ workers: 1, threadsPerCall: 1, cores: 1 });
    expect(resolveThreadBudget({ cores: 8, policies: 3, workers: 2 })).toEqual({ workers: 2, threadsPerCall: 4, cores: 8 });
  });

  it('rejects workers x threadsPerCall > cores and malformed counts', () => {
    expect(() => resolveThreadBudget({ cores: 2, policies: 1, workers: 2, threadsPerCall: 2 })).toThrow(/2 workers x 2 threads per call = 4 exceeds the 2 cores/);
    expect(() => resolveThreadBudget({ cores: 2, policies: 1, workers: 3 })).toThrow(/3 workers exceed the 2 cores/);
    expect(() => resolveThreadBudget({ cores: 2, policies: 1, workers: 1.5 })).toThrow(/workers must be a positive integer/);
    expect(() => resolveThreadBudget({ cores: 2, policies: 1, threadsPerCall: 0 })).toThrow(/threadsPerCall must be a positive integer/);
    expect(() => new RolloutEngine({ policies, tokenizer: tok, cores: 2, workers: 2, threadsPerCall: 2 })).toThrow(/exceeds the 2 cores/);
  });
});

describe('work split', () => {
  it('cuts rows into contiguous per-policy chunks, at most workers + policies - 1, covering every row once', () => {
    const batches = [new Int32Array(32).fill(10), new Int32Array(32).fill(10), new Int32Array(32).fill(10)];
    const chunks = planChunks(batches, 2);
    expect(chunks.length).toBeLessThanOrEqual(2 + 3 - 1);
    const covered = batches.map((b) => new Int32Array(b.length));
    for (const c of chunks) for (let r = c.lo; r < c.hi; r++) covered[c.batch]![r]!++;
    expect(covered.every((c) => c.every((x) => x === 1))).toBe(true);
    // Largest first; the two workers then get equal work (48 rows each).
    expect(chunks.map((c) => c.hi - c.lo)).toEqual([32, 32, 16, 16]);
    expect(planChunks([new Int32Array(64).fill(1)], 2).map((c) => [c.lo, c.hi])).toEqual([[0, 32], [32, 64]]);
  });
});

describe('samplers', () => {
  it('the pool draws exactly the direct native completions (three policies, mixed budgets)', async () => {
    const e = engine();
    expect(e.budget).toEqual({ workers: 2, threadsPerCall: 1, cores: 2 });
    const results = await e.sample(requests);
    expectMatches(results, requests);
    expect(e.lastStats!.rows).toBe(requests.length);
    expect(e.lastStats!.newTokens).toBe(requests.reduce((s, r) => s + r.maxTokens, 0));
    // Results are views into SharedArrayBuffers (what crossed to the workers without a copy).
    expect(results[0]!.completionTokens).toBeInstanceOf(Int32Array);
    expect((results[0]!.completionTokens as Int32Array).buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it('the in-process sampler draws the same completions', async () => {
    const s = new InProcessSampler({ policies, tokenizer: tok, sampling, stopTokens: noStops });
    samplers.push(s);
    expectMatches(await s.sample(requests), requests);
    expect(s.lastStats!.calls).toBe(3);
  });

  it('completions do not depend on batch composition, order or worker count', async () => {
    const one = engine({ workers: 1, threadsPerCall: 2 });
    const reversed = [...requests].reverse();
    expectMatches(await one.sample(reversed), reversed);
    const subset = requests.filter((_, i) => i % 4 === 1);
    expectMatches(await one.sample(subset), subset);
    const two = engine({ workers: 2 });
    const onlyB = requests.filter((r) => r.policy === 'b');
    expectMatches(await two.sample(onlyB), onlyB);
    expectMatches(await two.sample(requests.slice(5, 6)), requests.slice(5, 6));
  });

  it('routes each row to its policy: the same key under another policy is another completion', async () => {
    const e = engine();
    const key = requests[0]!;
    const [onA, onB] = await e.sample([
      { ...key, policy: 'a' },
      { ...key, policy: 'b', key: { ...key.key, seed: 2 }, callId: 'other' },
    ]);
    const again = await e.sample([{ ...key, policy: 'b' }]);
    expect(Array.from(onA!.completionTokens)).not.toEqual(Array.from(again[0]!.completionTokens));
    expect(Array.from(onB!.completionTokens)).not.toEqual(Array.from(again[0]!.completionTokens));
  });

  it('keeps the stop token in completionTokens and out of the text', async () => {
    // A token row 0 draws at position 2 becomes a stop token; the prefix before it is unchanged.
    const r = requests[0]!;
    const stop = reference[0]!.tokens[2]!;
    const stopAt = reference[0]!.tokens.indexOf(stop);
    const expected = direct(r, [stop]);
    expect(expected.tokens).toEqual(reference[0]!.tokens.slice(0, stopAt + 1));
    const e = engine({ stopTokens: [stop] });
    const [res] = await e.sample([r]);
    expect(res!.finish).toBe('stop');
    expect(Array.from(res!.completionTokens)).toEqual(expected.tokens);
    expect(Array.from(res!.logprobs)).toEqual(expected.logp);
    expect(res!.text).toBe(tok.decode(expected.tokens.slice(0, -1)));
  });

  it('withSampling({greedy: true}) shares the pool and decodes greedily', async () => {
    const e = engine();
    const greedy = e.withSampling({ greedy: true });
    const [g1] = await greedy.sample([requests[1]!]);
    const [g2] = await greedy.sample([{ ...requests[1]!, key: { ...requests[1]!.key, seed: 99 } }]);
    // Greedy ignores the seed; sampling does not.
    expect(Array.from(g1!.completionTokens)).toEqual(Array.from(g2!.completionTokens));
    expect(Array.from(g1!.logprobs).every((x) => x <= 0)).toBe(true);
  });

  it('rejects unknown policies and duplicate keys with errors naming them', async () => {
    const e = engine();
    await expect(e.sample([{ ...requests[0]!, policy: 'zzz' }])).rejects.toThrow(/policy 'zzz', not one of: a, b, c/);
    await expect(e.sample([requests[0]!, { ...requests[0]!, policy: 'b' }])).rejects.toThrow(/same call key/);
    await expect(e.sample([{ ...requests[0]!, maxTokens: -1 }])).rejects.toThrow(/maxTokens must be a non-negative integer/);
    expect(await e.sample([])).toEqual([]);
  });

  it('end to end: a Voting step through the pool lands in per-policy Arrow batches the trainer reads as views', async () => {
    const gen = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 21 });
    const agg = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 22 });
    const ip = new Map([['generator', gen], ['aggregator', agg]]);
    const e = new RolloutEngine({ policies: ip, tokenizer: tok, sampling, cores: 2 });
    const inProc = new InProcessSampler({ policies: ip, tokenizer: tok, sampling });
    try {
      const workflow = new VotingWorkflow();
      const task = new MathTask();
      const run = (sampler: typeof e | typeof inProc) =>
        executeEpisodes({ workflow, task, problems: task.problems('train', 2, 1), rollouts: 2, sampler, router: isolatedRouting(workflow.roles), seed: 1, step: 4, maxTokens: 12 });
      const [viaPool, viaMain] = [await run(e), await run(inProc)];
      expect(viaPool.flushes).toBe(2); // generators, then aggregators
      expect(viaPool.rows.map((r) => r.text)).toEqual(viaMain.rows.map((r) => r.text));
      const advantages = viaPool.rows.map((_, i) => (i % 3) - 1);
      const t = buildRolloutTable({ rows: viaPool.rows, advantages });
      expect([...t.batches.keys()]).toEqual(['generator', 'aggregator']);
      expect(t.batches.get('generator')!.numRows).toBe(12);
      expect(t.batches.get('aggregator')!.numRows).toBe(4);
      for (const [policy, batch] of t.batches) {
        const view = trainBatchView(batch);
        const src = t.sourceRows.get(policy)!;
        src.forEach((i, k) => {
          const r = viaPool.rows[i]!;
          const seq = view.tokens.subarray(view.cuSeqlens[k]!, view.cuSeqlens[k + 1]!);
          expect(Array.from(seq)).toEqual([...Array.from(r.promptTokens), ...Array.from(r.completionTokens)]);
          expect(view.advantages![k]).toBe(advantages[i]);
        });
        const [[role, range]] = [...roleRanges(batch)];
        expect(role).toBe(policy);
        expect(sliceRows(view, range!.start, range!.end).tokens.length).toBe(view.tokens.length);
        // The trained sequences score under their own policy like the sampler scored them.
        const lp = ip.get(policy)!.forwardLogprobsSync(view, { temperature: 0.7 }).logp;
        for (let j = 0; j < lp.length; j++) if (view.lossMask[j]) expect(lp[j]!).toBeCloseTo(view.oldLogp![j]!, 3);
      }
    } finally {
      await e.destroy();
      gen.dispose();
      agg.dispose();
    }
  });

  it('createRolloutSampler: workers 0 is in-process, otherwise the pool; destroy returns worker references', async () => {
    const inProc = createRolloutSampler({ policies, tokenizer: tok, workers: 0 });
    expect(inProc).toBeInstanceOf(InProcessSampler);
    const pool = createRolloutSampler({ policies, tokenizer: tok, sampling, stopTokens: noStops, cores: 2 });
    expect(pool).toBeInstanceOf(RolloutEngine);
    expectMatches(await pool.sample(requests.slice(0, 4)), requests.slice(0, 4));
    await pool.destroy();
    await expect(pool.sample(requests.slice(0, 1))).rejects.toThrow(/after destroy/);
    // Pool workers exit and give their policy references back (the other engines still hold theirs).
    const refs = () => listPolicies().find((x) => x.handle === pa.handle)!.refs;
    for (const s of samplers.splice(0)) await s.destroy();
    for (let i = 0; i < 50 && refs() > 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(refs()).toBe(1);
  });
});
