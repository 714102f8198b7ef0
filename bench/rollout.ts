// Rollout throughput (`node dist/bench/rollout.js`): tokens/s of the in-process sampler (one batched
// async generate per policy on the main thread, all cores) against the Piscina pool (workers x
// threads per call = cores), for (a) one policy x 64 requests and (b) three isolated policies x 32
// requests each, tiny preset, 48 new tokens per request (no stop tokens, so every row generates
// exactly its budget). Timed: the whole sample() call (chat rendering, packing, native sampling,
// decoding). One warm-up each, then rounds in which every sampler runs once in turn; tokens/s is
// from the median time, and "vs in-process" is the median over rounds of that round's time ratio
// to the in-process sampler on all cores (the baseline), which a shared machine's slow
// spells affect far less than a ratio of separately measured medians. Human table first, one
// JSON line last.
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

interface Timed {
  label: string;
  sampler: RolloutSampler;
  times: number[];
  tokens: number;
}

// Samplers run in turn within each round (A B C, A B C, ...), so a slow spell of a shared machine
// hits all of them alike; the speedup is the median over rounds of the round's own ratio.
async function measureInterleaved(timed: Timed[], names: string[], perPolicy: number, args: Args): Promise<void> {
  for (const t of timed) await t.sampler.sample(requests(names, perPolicy, args.newTokens, 0)); // warm-up
  for (let r = 1; r <= args.repeats; r++) {
    for (const t of timed) {
      const t0 = performance.now();
      await t.sampler.sample(requests(names, perPolicy, args.newTokens, r));
      t.times.push((performance.now() - t0) / 1000);
      t.tokens = t.sampler.lastStats!.newTokens;
    }
  }
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
    const timed: Timed[] = [{ label: `in-process ${cores} thread(s)`, sampler: new InProcessSampler(common), times: [], tokens: 0 }];
    // Context for the comparison: the same single call with one thread.
    if (cores > 1) timed.push({ label: 'in-process 1 thread', sampler: new InProcessSampler({ ...common, threads: 1 }), times: [], tokens: 0 });
    const engines: RolloutEngine[] = [];
    try {
      for (const shape of args.pools) {
        const engine = new RolloutEngine({ ...common, ...(shape === 'auto' ? {} : shape) });
        engines.push(engine);
        const { workers, threadsPerCall } = engine.budget;
        timed.push({ label: `pool ${workers}x${threadsPerCall}`, sampler: engine, times: [], tokens: 0 });
      }
      await measureInterleaved(timed, sc.names, sc.perPolicy, args);
    } finally {
      for (const e of engines) await e.destroy();
    }
    const base = timed[0]!;
    for (const t of timed) {
      const seconds = median(t.times);
      const speedup = median(t.times.map((x, r) => base.times[r]! / x));
      results.push({ scenario: sc.name, sampler: t.label, tokens: t.tokens, seconds, tokensPerS: t.tokens / seconds, speedup });
    }
  }
  console.log(`troupe rollout benchmark: ${args.preset} preset, ${args.newTokens} new tokens per request, T=0.7, ${cores} cores, ${args.repeats} interleaved rounds after 1 warm-up (medians)`);
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
