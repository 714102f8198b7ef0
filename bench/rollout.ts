// Rollout throughput (`node dist/bench/rollout.js`): tokens/s of the in-process sampler (one batched
// async generate per policy on the main thread, all cores) against the Piscina pool (workers x
// threads per call = cores) under each schedule: 'auto' (what the trainer uses), and the two it
// chooses between, 'split' and 'serial' (src/rollout/schedule.ts). Scenarios are P policies x R
// requests each (default 1x64, 3x32, 3x8). Completions end at any of K stop tokens (default 8 of
// the 320 ids, so a random model stops after about 40 tokens, ragged like real rollouts; 0 = every
// row generates its whole budget) or at the budget (default 128). Timed: the whole sample() call
// (chat rendering, packing, native sampling, decoding). Two warm-up calls each, and 'auto' warms
// up until it has finished measuring both schedules (at most 16 calls; its steady state is what a
// training run sees, re-measuring calls included). Then rounds in which every sampler runs once
// in turn; tokens/s is from the median time, and "vs in-process" is the median over rounds of
// that round's time ratio to the in-process sampler on all cores (the baseline), which a
// shared machine's slow spells affect far less than a ratio of separately measured medians. Human
// table first, one JSON line last.
//
// Flags: --preset tiny|small|medium  --new-tokens N  --stop-tokens K  --repeats K
//        --scenarios PxR[,PxR...]  --pool WxT|auto  --schedules auto,split,serial
import { performance } from 'node:perf_hooks';
import { hardwareCores, Policy, type PresetName } from '../src/native/index.js';
import { InProcessSampler, RolloutEngine, SCHEDULE_CHOICES, type RolloutSampler, type ScheduleChoice } from '../src/rollout/index.js';
import { ByteTokenizer } from '../src/tokenizer/byte-tokenizer.js';
import type { SampleRequest } from '../src/workflows/sampler.js';

interface Args {
  preset: PresetName;
  newTokens: number;
  repeats: number;
  pool: { workers: number; threadsPerCall: number } | 'auto';
  schedules: ScheduleChoice[];
  scenarios: { policies: number; perPolicy: number }[];
  /** Token ids that end a completion (none: every row generates its whole budget). */
  stopTokens: number[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    preset: 'tiny',
    newTokens: 128,
    repeats: 7,
    pool: 'auto',
    schedules: ['auto', 'split', 'serial'],
    stopTokens: stopIds(8),
    scenarios: [
      { policies: 1, perPolicy: 64 },
      { policies: 3, perPolicy: 32 },
      { policies: 3, perPolicy: 8 },
    ],
  };
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
      const m = /^(\d+)x(\d+)$/.exec(value);
      if (value === 'auto') args.pool = 'auto';
      else if (m) args.pool = { workers: positive(m[1]!), threadsPerCall: positive(m[2]!) };
      else throw new Error(`bench: --pool takes WxT (workers x threads per call) or auto, got '${value}'`);
    } else if (flag === '--schedules') {
      args.schedules = value.split(',').map((s) => {
        if (!SCHEDULE_CHOICES.includes(s as ScheduleChoice)) throw new Error(`bench: --schedules takes ${SCHEDULE_CHOICES.join('|')}, got '${s}'`);
        return s as ScheduleChoice;
      });
    } else if (flag === '--stop-tokens') {
      const k = Number(value);
      if (!Number.isInteger(k) || k < 0 || k > 200) throw new Error(`bench: --stop-tokens must be an integer in [0, 200] (got ${value})`);
      args.stopTokens = stopIds(k);
    } else if (flag === '--scenarios') {
      args.scenarios = value.split(',').map((s) => {
        const m = /^(\d+)x(\d+)$/.exec(s);
        if (!m) throw new Error(`bench: --scenarios takes PxR (policies x requests per policy), got '${s}'`);
        const policies = positive(m[1]!);
        if (policies > POLICY_NAMES.length) throw new Error(`bench: at most ${POLICY_NAMES.length} policies per scenario, got ${policies}`);
        return { policies, perPolicy: positive(m[2]!) };
      });
    } else throw new Error(`bench: unknown flag ${flag} (--preset, --new-tokens, --stop-tokens, --repeats, --scenarios, --pool, --schedules)`);
  }
  return args;
}

// K ids from the middle of the byte range (no special tokens): with random weights each is about
// as likely as any other id, so K/320 is roughly the per-token stop rate.
function stopIds(k: number): number[] {
  return Array.from({ length: k }, (_, i) => 100 + i);
}

const WARMUP_CALLS = 2;

const POLICY_NAMES = ['generator', 'aggregator', 'evaluator', 'orchestrator'];

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
  /** Schedules the pool ran, one per timed round. */
  ran: string[];
}

// Samplers run in turn within each round (A B C, A B C, ...), so a slow spell of a shared machine
// hits all of them alike; the speedup is the median over rounds of the round's own ratio.
async function measureInterleaved(timed: Timed[], names: string[], perPolicy: number, args: Args): Promise<void> {
  let step = 1000;
  for (const t of timed) {
    for (let w = 0; w < WARMUP_CALLS; w++) await t.sampler.sample(requests(names, perPolicy, args.newTokens, step++));
    const tuner = t.sampler instanceof RolloutEngine ? t.sampler : null;
    while (tuner && tuner.scheduleReport().some((r) => !r.decided)) await tuner.sample(requests(names, perPolicy, args.newTokens, step++));
  }
  for (let r = 1; r <= args.repeats; r++) {
    for (const t of timed) {
      const t0 = performance.now();
      await t.sampler.sample(requests(names, perPolicy, args.newTokens, r));
      t.times.push((performance.now() - t0) / 1000);
      t.tokens = t.sampler.lastStats!.newTokens;
      t.ran.push(t.sampler.lastStats!.schedule ?? '');
    }
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cores = hardwareCores();
  const tokenizer = new ByteTokenizer();
  const all = new Map<string, Policy>();
  const needed = Math.max(...args.scenarios.map((s) => s.policies));
  for (const [i, name] of POLICY_NAMES.slice(0, needed).entries()) {
    all.set(name, await Policy.create({ preset: args.preset, vocabSize: tokenizer.vocabSize, seed: 100 + i }));
  }
  const scenarios = args.scenarios.map((s) => ({
    name: `${s.policies} ${s.policies === 1 ? 'policy' : 'policies'} x ${s.perPolicy}`,
    names: POLICY_NAMES.slice(0, s.policies),
    perPolicy: s.perPolicy,
  }));
  const results: Record<string, unknown>[] = [];
  for (const sc of scenarios) {
    const policies = new Map(sc.names.map((n) => [n, all.get(n)!]));
    const common = { policies, tokenizer, sampling: { temperature: 0.7, seed: 1 }, stopTokens: args.stopTokens };
    const timed: Timed[] = [{ label: `in-process ${cores} thread(s)`, sampler: new InProcessSampler(common), tokens: 0, times: [], ran: [] }];
    // Context for the comparison: the same single call with one thread.
    if (cores > 1) timed.push({ label: 'in-process 1 thread', sampler: new InProcessSampler({ ...common, threads: 1 }), tokens: 0, times: [], ran: [] });
    const engines: RolloutEngine[] = [];
    try {
      for (const schedule of args.schedules) {
        const engine = new RolloutEngine({ ...common, ...(args.pool === 'auto' ? {} : args.pool), schedule });
        engines.push(engine);
        const { workers, threadsPerCall } = engine.budget;
        timed.push({ label: `pool ${workers}x${threadsPerCall} ${schedule}`, sampler: engine, tokens: 0, times: [], ran: [] });
      }
      await measureInterleaved(timed, sc.names, sc.perPolicy, args);
    } finally {
      for (const e of engines) await e.destroy();
    }
    const base = timed[0]!;
    for (const t of timed) {
      const seconds = median(t.times);
      const speedup = median(t.times.map((x, r) => base.times[r]! / x));
      const split = t.ran.filter((x) => x === 'split').length;
      const ran = t.ran[0] === '' ? '' : `split ${split}/serial ${t.ran.length - split}`;
      results.push({ scenario: sc.name, sampler: t.label, tokens: t.tokens, seconds, tokensPerS: t.tokens / seconds, speedup, ran });
    }
  }
  const stops = args.stopTokens.length === 0 ? 'no stop tokens' : `${args.stopTokens.length} stop tokens`;
  console.log(
    `troupe rollout benchmark: ${args.preset} preset, up to ${args.newTokens} new tokens per request (${stops}), T=0.7, ${cores} cores, ` +
      `${args.repeats} interleaved rounds after warm-up (medians)`,
  );
  const header = ['scenario', 'sampler', 'tokens', 'seconds', 'tokens/s', 'vs in-process', 'schedules run'];
  const rows = results.map((r) => [
    String(r.scenario),
    String(r.sampler),
    String(r.tokens),
    (r.seconds as number).toFixed(3),
    (r.tokensPerS as number).toFixed(0),
    `${(r.speedup as number).toFixed(2)}x`,
    String(r.ran),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  for (const p of all.values()) p.dispose();
  console.log(JSON.stringify({ bench: 'rollout', preset: args.preset, newTokens: args.newTokens, stopTokens: args.stopTokens.length, cores, repeats: args.repeats, results }));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
