// Rollout throughput (`node dist/bench/rollout.js`): tokens/s of the in-process sampler (one batched
// async generate per policy on the main thread, all cores) against the Piscina pool (workers x
// threads per call = cores), for (a) one policy x 64 requests and (b) three isolated policies x 32
// requests each, tiny preset, 48 new tokens per request (no stop tokens, so every row generates
// exactly its budget). Timed: the whole sample() call (chat rendering, packing, native sampling,
// decoding). One warm-up, then the median of the timed runs. Human table first, one JSON line last.
// "vs in-process" is relative to the in-process sampler on all cores (the baseline).
//
// Flags: --preset tiny|small|medium  --new-tokens N  --repeats K  --pool WxT[,WxT...] (default: auto)
import { performance } from 'node:perf_hooks';
import { hardwareCores, Policy, type PresetName } from '../src/native/index.js';
import { InProcessSampler, RolloutEngine, type RolloutSampler } from '../src/rollout/index.js';
import { ByteTokenizer } from '../src/tokenizer/byte-tokenizer.js';
import type { SampleRequest } from '../src/workflows/sampler.js';

interface Args {
  preset: PresetName;
  newTokens: number;
  repeats: number;
  pools: ({ workers: number; threadsPerCall: number } | 'auto')[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { preset: 'tiny', newTokens: 48, repeats: 5, pools: ['auto'] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) throw new Error(`bench: ${flag} needs a value`);
    const positive = (s: string): number => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`bench: ${flag} must be a positive integer (got ${s})`);
      return n;
    };
    if (flag === '--preset') {
      if (!['tiny', 'small', 'medium'].includes(value)) throw new Error(`bench: unknown preset '${value}'`);
      args.preset = value as PresetName;
    } else if (flag === '--new-tokens') args.newTokens = positive(value);
    else if (flag === '--repeats') args.repeats = positive(value);
    else if (flag === '--pool') {
      args.pools = value.split(',').map((s) => {
        if (s === 'auto') return 'auto';
        const m = /^(\d+)x(\d+)$/.exec(s);
        if (!m) throw new Error(`bench: --pool takes WxT (workers x threads per call) or auto, got '${s}'`);
        return { workers: positive(m[1]!), threadsPerCall: positive(m[2]!) };
      });
    } else throw new Error(`bench: unknown flag ${flag} (--preset, --new-tokens, --repeats, --pool)`);
  }
  return args;
}

const PROBLEMS = [
  'A farmer has 17 sheep and buys 8 more, then sells 5. How many sheep are left?',
  'Compute 12 * 7 - 19 and give the result.',
  'Three friends share 45 apples equally. How many apples does each get?',
  'What is the remainder when 100 is divided by 7?',
];

function requests(policies: string[], perPolicy: number, newTokens: number, step: number): SampleRequest[] {
  const out: SampleRequest[] = [];
  policies.forEach((policy, p) => {
    for (let i = 0; i < perPolicy; i++) {
      const key = { seed: 1, step, episode: p * perPolicy + i, call: 0 };
      out.push({
        callId: `bench.${step}.${p}.${i}`,
        key,
        policy,
        role: policy,
        copy: 0,
        turn: 0,
        messages: [
          { role: 'system', content: 'Solve the problem. Put the final answer in \\boxed{}.' },
          { role: 'user', content: PROBLEMS[i % PROBLEMS.length]! },
        ],
        maxTokens: newTokens,
      });
    }
  });
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function measure(sampler: RolloutSampler, names: string[], perPolicy: number, args: Args): Promise<{ tokensPerS: number; seconds: number; tokens: number }> {
  await sampler.sample(requests(names, perPolicy, args.newTokens, 0)); // warm-up
  const times: number[] = [];
  let tokens = 0;
  for (let r = 1; r <= args.repeats; r++) {
    const t0 = performance.now();
    await sampler.sample(requests(names, perPolicy, args.newTokens, r));
    times.push((performance.now() - t0) / 1000);
    tokens = sampler.lastStats!.newTokens;
  }
  const seconds = median(times);
  return { tokensPerS: tokens / seconds, seconds, tokens };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cores = hardwareCores();
  const tokenizer = new ByteTokenizer();
  const all = new Map<string, Policy>();
  for (const [i, name] of ['generator', 'aggregator', 'evaluator'].entries()) {
    all.set(name, await Policy.create({ preset: args.preset, vocabSize: tokenizer.vocabSize, seed: 100 + i }));
  }
  const scenarios = [
    { name: '1 policy x 64', names: ['generator'], perPolicy: 64 },
    { name: '3 policies x 32', names: ['generator', 'aggregator', 'evaluator'], perPolicy: 32 },
  ];
  const results: Record<string, unknown>[] = [];
  for (const sc of scenarios) {
    const policies = new Map(sc.names.map((n) => [n, all.get(n)!]));
    const common = { policies, tokenizer, sampling: { temperature: 0.7, seed: 1 }, stopTokens: [] };
    const base = await measure(new InProcessSampler(common), sc.names, sc.perPolicy, args);
    results.push({ scenario: sc.name, sampler: `in-process ${cores} thread(s)`, ...base, speedup: 1 });
    if (cores > 1) {
      // Context for the comparison: the same single call with one thread.
      const single = await measure(new InProcessSampler({ ...common, threads: 1 }), sc.names, sc.perPolicy, args);
      results.push({ scenario: sc.name, sampler: 'in-process 1 thread', ...single, speedup: single.tokensPerS / base.tokensPerS });
    }
    for (const shape of args.pools) {
      const engine = new RolloutEngine({ ...common, ...(shape === 'auto' ? {} : shape) });
      try {
        const m = await measure(engine, sc.names, sc.perPolicy, args);
        const { workers, threadsPerCall } = engine.budget;
        results.push({ scenario: sc.name, sampler: `pool ${workers}x${threadsPerCall}`, ...m, speedup: m.tokensPerS / base.tokensPerS });
      } finally {
        await engine.destroy();
      }
    }
  }
  console.log(`troupe rollout benchmark: ${args.preset} preset, ${args.newTokens} new tokens per request, T=0.7, ${cores} cores, median of ${args.repeats} after 1 warm-up`);
  const header = ['scenario', 'sampler', 'tokens', 'seconds', 'tokens/s', 'vs in-process'];
  const rows = results.map((r) => [
    String(r.scenario),
    String(r.sampler),
    String(r.tokens),
    (r.seconds as number).toFixed(3),
    (r.tokensPerS as number).toFixed(0),
    `${(r.speedup as number).toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  for (const p of all.values()) p.dispose();
  console.log(JSON.stringify({ bench: 'rollout', preset: args.preset, newTokens: args.newTokens, cores, repeats: args.repeats, results }));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
