// The CLI: flags and config files to TrainConfig, validation messages, progress output, plots and
// the commands end to end with a stand-in trainer. Expected values are written out by hand.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../src/cli/args.js';
import { FIELDS, FIELD_NAMES } from '../src/cli/fields.js';
import { formatSummary } from '../src/cli/format.js';
import { main } from '../src/cli/main.js';
import { metricsFromIPC } from '../src/cli/metrics.js';
import { buildPlots, writePlots } from '../src/cli/plot.js';
import { ProgressPrinter, type ProgressStream } from '../src/cli/progress.js';
import { closest, editDistance } from '../src/cli/suggest.js';
import { splitList } from '../src/cli/sweep-command.js';
import { resolveTrainArgs, type CliIO } from '../src/cli/train-command.js';
import { defaultContext, type ValidateContext } from '../src/cli/validate.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../src/rl/config.js';
import type { StepProgress, TrainHooks, TrainSummary } from '../src/rl/hooks.js';

const tmp = mkdtempSync(join(tmpdir(), 'troupe-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A machine with 8 cores and the real file system and workflows. */
const ctx: ValidateContext = { ...defaultContext(), cores: 8 };

function resolve(argv: string[], c: ValidateContext = ctx): TrainConfig {
  return resolveTrainArgs(argv, c).config;
}

/** The UsageError problems of a command line (fails the test when it is accepted). */
function problemsOf(argv: string[], c: ValidateContext = ctx): string[] {
  try {
    resolveTrainArgs(argv, c);
  } catch (e) {
    if (e instanceof UsageError) return e.problems;
    throw e;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

class FakeStream implements ProgressStream {
  out = '';
  constructor(public isTTY = false, public columns = 100) {}
  write(s: string): boolean {
    this.out += s;
    return true;
  }
}

function fakeIO(extra: Partial<CliIO> = {}): CliIO & { stdout: FakeStream; stderr: FakeStream } {
  return { stdout: new FakeStream(), stderr: new FakeStream(), ctx, ...extra } as CliIO & { stdout: FakeStream; stderr: FakeStream };
}

describe('argv parsing', () => {
  const defs = [
    { name: 'steps', boolean: false },
    { name: 'resume', boolean: true },
    { name: 'seed', boolean: false },
  ];
  it('reads --name value, --name=value, switches, --no- and literal true/false', () => {
    const a = parseArgs(['--steps', '40', '--seed=-3', '--resume', 'run', '--', '--raw'], defs);
    expect(Object.fromEntries(a.flags)).toEqual({ steps: '40', seed: '-3', resume: true });
    expect(a.positionals).toEqual(['run']);
    expect(a.rest).toEqual(['--raw']);
    expect(parseArgs(['--no-resume'], defs).flags.get('resume')).toBe(false);
    expect(parseArgs(['--resume', 'false'], defs).flags.get('resume')).toBe(false);
    expect(parseArgs(['--resume=true'], defs).flags.get('resume')).toBe(true);
  });
  it('rejects unknown flags with a suggestion, and a flag missing its value', () => {
    expect(() => parseArgs(['--step', '4'], defs)).toThrow(/unknown flag --step \(did you mean --steps\?\)/);
    expect(() => parseArgs(['--steps'], defs)).toThrow(/--steps needs a value/);
    expect(() => parseArgs(['--resume=maybe'], defs)).toThrow(/--resume: expected true or false, got 'maybe'/);
  });
  it('edit distance counts an adjacent swap as one edit', () => {
    expect(editDistance('votign', 'voting')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(closest('isolatd', ['shared', 'isolated'])).toBe('isolated');
    expect(closest('zzzz', ['shared', 'isolated'])).toBeNull();
  });
});

describe('flags -> TrainConfig', () => {
  it('has a spec for exactly the fields of TrainConfig', () => {
    expect([...FIELD_NAMES].sort()).toEqual(Object.keys(DEFAULT_TRAIN_CONFIG).sort());
  });

  it('maps kebab-case flags 1:1 to fields, with typed values', () => {
    const c = resolve([
      '--workflow', 'voting', '--policy', 'isolated', '--task', 'code', '--preset', 'small', '--steps', '40', '--seed', '3',
      '--prompts-per-step', '16', '--group-size', '8', '--lr', '1e-5', '--out', 'runs/x', '--no-eval-greedy',
      '--loss-agg', 'token-mean', '--top-k', '20', '--drop-equal-groups', '--coherence-decay=0.95',
    ]);
    expect(c).toEqual({
      ...DEFAULT_TRAIN_CONFIG,
      workflow: 'voting', policy: 'isolated', task: 'code', preset: 'small', steps: 40, seed: 3, promptsPerStep: 16,
      groupSize: 8, lr: 1e-5, outDir: 'runs/x', evalGreedy: false, lossAgg: 'token-mean', topK: 20, dropEqualGroups: true,
      coherenceDecay: 0.95,
    });
  });

  it('defaults are the DEFAULT_TRAIN_CONFIG values', () => {
    expect(resolve([])).toEqual(DEFAULT_TRAIN_CONFIG);
  });

  it('parses a policy mapping, role#copy keys included', () => {
    expect(resolve(['--workflow', 'voting', '--policy', 'generator=a,aggregator=b']).policy).toEqual({ generator: 'a', aggregator: 'b' });
    expect(resolve(['--workflow', 'voting', '--policy', 'generator#0=g0,generator#1=g1,generator=g,aggregator=agg']).policy).toEqual({
      'generator#0': 'g0', 'generator#1': 'g1', generator: 'g', aggregator: 'agg',
    });
    const bad = problemsOf(['--workflow', 'voting', '--policy', 'generator=a']);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatch(/^--policy: .*unmapped roles: aggregator/);
    expect(problemsOf(['--workflow', 'voting', '--policy', 'generator=a,aggregater=b'])).toEqual([
      "--policy: 'aggregater' is not a role of workflow voting; expected one of generator, aggregator (did you mean aggregator?)",
    ]);
    expect(problemsOf(['--workflow', 'voting', '--policy', 'generator=,aggregator=b'])[0]).toMatch(/--policy: role 'generator' needs a non-empty policy name/);
  });

  it('per-role numbers: one value, or a role map completed with 0 for missing roles', () => {
    expect(resolve(['--kl-estimator', 'k3', '--kl-coef', '0.05']).klCoef).toBe(0.05);
    expect(resolve(['--workflow', 'orch-workers', '--kl-estimator', 'k3', '--kl-coef', 'worker=0.1']).klCoef).toEqual({
      orchestrator: 0, worker: 0.1, synthesizer: 0,
    });
    expect(problemsOf(['--workflow', 'voting', '--kl-estimator', 'k3', '--kl-coef', 'evaluator=0.1'])).toEqual([
      "--kl-coef: 'evaluator' is not a role of workflow voting; expected one of generator, aggregator",
    ]);
    expect(problemsOf(['--workflow', 'voting', '--coherence-damping', 'generator=1.5'])[0]).toBe(
      "--coherence-damping (role generator): expected a number >= 0 and <= 1, got '1.5'",
    );
  });
});

describe('config files', () => {
  it('JSON and YAML merge under the flags', () => {
    const json = file('a.json', JSON.stringify({ workflow: 'eval-opt', steps: 12, lr: 3e-5, policy: { generator: 'g', evaluator: 'e' } }));
    const c = resolve(['--config', json, '--steps', '40']);
    expect([c.workflow, c.steps, c.lr, c.policy]).toEqual(['eval-opt', 40, 3e-5, { generator: 'g', evaluator: 'e' }]);

    const yaml = file('b.yaml', 'workflow: orch-workers\nprompts-per-step: 4\nlr: 1e-5\nkl-estimator: k3\nklCoef:\n  worker: 0.2\ntaskFile: null\n');
    const y = resolve(['--config', yaml, '--lr', '2e-4']);
    expect([y.workflow, y.promptsPerStep, y.lr, y.klEstimator, y.klCoef]).toEqual([
      'orch-workers', 4, 2e-4, 'k3', { orchestrator: 0, worker: 0.2, synthesizer: 0 },
    ]);
  });

  it('a resumed run starts from its saved config.json, under the file and the flags', () => {
    const run = join(tmp, 'run-resume');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ ...DEFAULT_TRAIN_CONFIG, workflow: 'eval-opt', steps: 50, seed: 7 }));
    const cfgFile = file('resume.yaml', 'seed: 9\n');
    const c = resolve(['--resume', '--out', run, '--config', cfgFile, '--steps', '60']);
    expect([c.resume, c.workflow, c.seed, c.steps]).toEqual([true, 'eval-opt', 9, 60]);
  });

  it('errors name the key and the file; unknown keys get a suggestion', () => {
    const y = file('bad.yaml', 'promptsPerStp: 4\n');
    expect(problemsOf(['--config', y])).toEqual([`promptsPerStp (in ${y}): unknown config key (did you mean promptsPerStep?)`]);
    const t = file('types.yaml', "lr: '1e-5'\nresume: yes\nworkflow: votin\n");
    expect(problemsOf(['--config', t])).toEqual([
      `lr (in ${t}): expected a number > 0 and <= 1, got '1e-5'`,
      `resume (in ${t}): expected true or false, got 'yes'`,
      `workflow (in ${t}): 'votin' is not a workflow; expected one of single, voting, eval-opt, orch-workers (did you mean voting?)`,
    ]);
    expect(problemsOf(['--config', file('list.json', '[1]')])[0]).toMatch(/must hold a mapping/);
    expect(problemsOf(['--config', file('x.toml', '')])[0]).toMatch(/expected \.json, \.yaml or \.yml/);
    expect(problemsOf(['--config', join(tmp, 'missing.json')])[0]).toMatch(/does not exist/);
    expect(problemsOf(['--config', file('broken.json', '{"steps": ')])[0]).toMatch(/cannot parse .* as JSON/);
  });
});

describe('validation', () => {
  it('every enum field names the flag and lists the allowed values', () => {
    for (const f of FIELD_NAMES) {
      const k = FIELDS[f].kind;
      if (k.type !== 'enum') continue;
      const flag = `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      const [msg] = problemsOf([flag, 'nope']);
      expect(msg.startsWith(`${flag}: 'nope' is not a ${k.noun}; expected one of ${k.values.join(', ')}`), msg).toBe(true);
    }
    expect(problemsOf(['--workflow', 'votin'])).toEqual([
      "--workflow: 'votin' is not a workflow; expected one of single, voting, eval-opt, orch-workers (did you mean voting?)",
    ]);
  });

  it('every numeric field rejects text and values out of range, naming the flag and the range', () => {
    for (const f of FIELD_NAMES) {
      const k = FIELDS[f].kind;
      if (k.type !== 'int' && k.type !== 'number') continue;
      const flag = `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      const [text] = problemsOf([flag, 'abc']);
      expect(text, f).toMatch(new RegExp(`^${flag}: expected (an integer|a number) .*got 'abc'$`));
      if (k.min !== undefined) {
        const [low] = problemsOf([flag, String(k.min - 1)]);
        expect(low, f).toMatch(new RegExp(`^${flag}: expected .*(>=|>) ${k.min}`));
      }
    }
    expect(problemsOf(['--steps', '2.5'])).toEqual(["--steps: expected an integer >= 1, got '2.5'"]);
    expect(problemsOf(['--top-p', '0'])).toEqual(["--top-p: expected a number > 0 and <= 1, got '0'"]);
    expect(problemsOf(['--beta2', '1'])).toEqual(["--beta2: expected a number >= 0 and < 1, got '1'"]);
    expect(problemsOf(['--eval-problems', '0'])).toEqual(["--eval-problems: expected an integer >= 1, got '0'"]);
    expect(problemsOf(['--mini-batch', '0'])).toEqual(["--mini-batch: expected an integer >= 1, got '0'"]);
  });

  it('reports unknown flags with a suggestion together with the other problems', () => {
    expect(problemsOf(['--prompts-per-stp', '4', '--steps', '0'])).toEqual([
      'unknown flag --prompts-per-stp (did you mean --prompts-per-step?)',
      "--steps: expected an integer >= 1, got '0'",
    ]);
    expect(problemsOf(['--frobnicate'])).toEqual(['unknown flag --frobnicate']);
  });

  it('rejects impossible combinations, naming the fields involved', () => {
    expect(problemsOf(['--group-size', '1'])[0]).toMatch(/^--group-size: GRPO needs at least 2 rollouts per prompt \(got 1\)/);
    expect(problemsOf(['--kl-coef', '0.1'])[0]).toMatch(/^--kl-coef: a KL coefficient > 0 needs a KL estimator, but klEstimator \(default\) is none; expected one of k1, k2, k3/);
    expect(problemsOf(['--workers', '3', '--threads-per-call', '3'])[0]).toMatch(/^--workers x --threads-per-call: 3 x 3 = 9 threads exceed the 8 core\(s\)/);
    expect(problemsOf(['--workers', '9'])[0]).toMatch(/9 x 1 = 9 threads exceed the 8 core/);
    expect(problemsOf(['--threads-per-call', '16'])[0]).toMatch(/^--threads-per-call: 16 threads per call exceed the 8 core/);
    expect(problemsOf(['--dual-clip', '1'])[0]).toMatch(/^--dual-clip: 1 would silently disable dual-clip/);
    expect(problemsOf(['--task', 'code', '--task-file', 'test/fixtures/gsm8k-small.jsonl'])[0]).toMatch(/^--task-file: a task file replaces math problems, but --task is code/);
    expect(problemsOf(['--task-file', join(tmp, 'nope.jsonl')])[0]).toMatch(/^--task-file: file '.*nope\.jsonl' does not exist/);
    expect(problemsOf(['--resume', '--out', join(tmp, 'no-such-run')])[0]).toMatch(
      /^--resume: run directory '.*no-such-run' \(--out-dir\) does not exist, so there is nothing to resume/,
    );
    // Fine alone, and fine together: workers x threads within the cores.
    expect(resolve(['--workers', '2', '--threads-per-call', '4']).workers).toBe(2);
  });

  it('warns about settings that are legal but have no effect', () => {
    const r = resolveTrainArgs(['--kl-estimator', 'k3', '--workflow', 'single', '--credit', 'role'], ctx);
    expect(r.warnings.join('\n')).toMatch(/--kl-estimator is k3 but every KL coefficient is 0/);
    expect(r.warnings.join('\n')).toMatch(/workflow single has no per-role rewards/);
  });
});

describe('progress output', () => {
  const ev = (o: Partial<StepProgress>): StepProgress => ({
    step: 0, steps: 5, accuracy: null, reward: 0, tokensPerSecond: 0, seconds: 0, phase: 'train', ...o,
  });

  it('plain mode: one key=value line per RL step with a hand-computed ETA', () => {
    const s = new FakeStream(false);
    const p = new ProgressPrinter(s, { now: () => 0 });
    p.onProgress(ev({ step: 1, seconds: 10, reward: 0.25, tokensPerSecond: 1234 }));
    p.onProgress(ev({ step: 2, seconds: 20, reward: 0.5, accuracy: 0.4125, tokensPerSecond: 850, message: 'train acc 50.0%' }));
    p.onLog('eval @2: pass@1 41.2%');
    p.finish();
    // Two steps in 20 s from the start: 10 s a step, 3 steps left.
    expect(s.out).toBe(
      '[train 1/5] acc=- reward=0.250 tok/s=1.2k elapsed=10s eta=40s\n' +
        '[train 2/5] acc=0.412 reward=0.500 tok/s=850 elapsed=20s eta=30s | train acc 50.0%\n' +
        'eval @2: pass@1 41.2%\n',
    );
  });

  it('plain mode: base warm-up events print on entry, then every few seconds', () => {
    const s = new FakeStream(false);
    let now = 0;
    const p = new ProgressPrinter(s, { now: () => now, plainMs: 5000 });
    for (let i = 1; i <= 20; i++) {
      now = i * 1000;
      p.onProgress(ev({ phase: 'base', step: i, steps: 20, seconds: i }));
    }
    const lines = s.out.trim().split('\n');
    // Entry at 1 s, then 6 s, 11 s and 16 s.
    expect(lines.map((l) => /^\[base (\d+)\/20\]/.exec(l)?.[1])).toEqual(['1', '6', '11', '16']);
  });

  it('TTY mode redraws one line in place and keeps log lines above it', () => {
    const s = new FakeStream(true, 200);
    const p = new ProgressPrinter(s, { now: () => 0, redrawMs: 0 });
    p.onProgress(ev({ step: 1, steps: 4, seconds: 5 }));
    p.onProgress(ev({ step: 2, steps: 4, seconds: 10, accuracy: 0.5 }));
    p.onLog('hello');
    p.finish();
    const frames = s.out.split('\r\x1b[2K').filter(Boolean);
    expect(frames[0]).toMatch(/^train █{5}░{15} 1\/4  acc -  reward 0\.000  0 tok\/s  5s eta 15s$/);
    expect(frames[1]).toMatch(/^train █{10}░{10} 2\/4  acc 0\.500 .* 10s eta 10s$/);
    expect(frames[2]).toBe('hello\n');
    expect(frames[3]).toMatch(/^train .* 2\/4 .*\n$/);
    expect(s.out.split('\n')).toHaveLength(3); // the log line, the final status line, and the empty tail
  });

  it('the final summary table has base / peak / final, delta with CI, greedy and the run dir', () => {
    const summary: TrainSummary = {
      outDir: 'runs/x', base: { accuracy: 0.3125, n: 200 }, peak: { accuracy: 0.45, step: 30 }, final: { accuracy: 0.42, n: 200 },
      delta: { mean: 0.1075, ci95: [0.06, 0.155] }, greedy: { base: 0.3, final: 0.41 }, seconds: 312,
    };
    expect(formatSummary(summary)).toBe(
      [
        'base accuracy    0.313  (n=200)',
        'peak accuracy    0.450  (step 30)',
        'final accuracy   0.420  (n=200)',
        'delta (95% CI)   +0.107 [+0.060, +0.155]',
        'greedy accuracy  0.300 -> 0.410  (base -> final)',
        'time             5m12s',
        'run dir          runs/x',
      ].join('\n'),
    );
  });
});

/** Checks that the text is well-formed XML-ish: balanced tags, quoted attributes, escaped text. */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<\?xml[^>]*\?>|<([^>]*)>/g;
  let last = 0;
  for (let m = re.exec(svg); m; m = re.exec(svg)) {
    const text = svg.slice(last, m.index);
    expect(text, 'raw < or & in text').not.toMatch(/<|&(?!(amp|lt|gt|quot|apos);)/);
    last = re.lastIndex;
    if (m[0].startsWith('<?xml')) continue;
    expect(m[5], `malformed tag ${m[0]}`).toBeUndefined();
    if (m[4] === '/') continue;
    if (m[1] === '/') expect(stack.pop(), `closing ${m[2]}`).toBe(m[2]);
    else stack.push(m[2]);
  }
  expect(stack).toEqual([]);
  expect(svg.trim().endsWith('</svg>')).toBe(true);
}

function metricsIPC(): Uint8Array {
  return tableToIPC(
    tableFromArrays({
      step: [1, 2, 3, 4],
      accuracy: [null, 0.25, null, 0.5],
      reward_mean: [0.1, 0.2, 0.3, 0.4],
      'generator.grad_mass': new Float32Array([3, 3, 1, 1]),
      'aggregator.grad_mass': new Float32Array([1, 1, 3, 3]),
      'generator.grad_norm': new Float32Array([0.5, 0.4, 0.3, 0.2]),
      'aggregator.grad_norm': new Float32Array([0.1, 0.2, 0.3, 0.4]),
      'generator.cos_ema': new Float32Array([0.9, 0.8, -0.5, 1]),
      'aggregator.cos_ema': new Float32Array([0.1, 0.2, 0.3, 0.4]),
    }),
    'stream',
  );
}

/** The (x, y) pixel pairs of a series' polyline. */
function polyline(svg: string, series: string): [number, number][] {
  const g = new RegExp(`<g class="series" data-series="${series}">\\s*<polyline[^>]* points="([^"]+)"`).exec(svg);
  expect(g, `series ${series}`).not.toBeNull();
  return g![1].split(' ').map((p) => p.split(',').map(Number) as [number, number]);
}

describe('plots', () => {
  it('reads whatever columns exist, nulls included, across concatenated IPC streams', () => {
    const second = tableToIPC(tableFromArrays({ step: [5], accuracy: [0.75], extra: [9] }), 'stream');
    const first = metricsIPC();
    const both = new Uint8Array(first.length + second.length);
    both.set(first);
    both.set(second, first.length);
    const m = metricsFromIPC(both);
    expect(m.rows).toBe(5);
    expect(m.columns.get('accuracy')).toEqual([null, 0.25, null, 0.5, 0.75]);
    expect(m.columns.get('extra')).toEqual([null, null, null, null, 9]);
    expect(m.columns.get('generator.grad_mass')).toEqual([3, 3, 1, 1, null]);
  });

  it('draws accuracy/reward, gradient-mass share, grad norm and coherence as well-formed SVG', () => {
    const plots = buildPlots(metricsFromIPC(metricsIPC()));
    expect(plots.map((p) => p.file)).toEqual(['accuracy.svg', 'grad-mass.svg', 'grad-norm.svg', 'coherence.svg']);
    for (const p of plots) assertWellFormed(p.svg);
    const [acc, mass, , coh] = plots.map((p) => p.svg);
    expect(acc).toContain('data-series="accuracy"');
    expect(acc).toContain('data-series="reward_mean"');
    // Accuracy exists at steps 2 and 4 only: two markers, one segment between them.
    expect(polyline(acc, 'accuracy')).toHaveLength(2);
    expect(polyline(acc, 'reward_mean')).toHaveLength(4);
    // Plot area: top 44, height 420 - 44 - 52 = 324, y in [0, 1]. Shares: 3/(3+1) then 1/(1+3).
    const y = (v: number) => 44 + 324 * (1 - v);
    expect(polyline(mass, 'generator').map(([, py]) => py)).toEqual([y(0.75), y(0.75), y(0.25), y(0.25)].map((v) => Number(v.toFixed(1))));
    expect(polyline(mass, 'aggregator').map(([, py]) => py)).toEqual([y(0.25), y(0.25), y(0.75), y(0.75)].map((v) => Number(v.toFixed(1))));
    // Coherence is drawn on [-1, 1]: cos 1 at the top edge, -0.5 at three quarters down.
    const cy = polyline(coh, 'generator').map(([, py]) => py);
    expect(cy[3]).toBe(44);
    expect(cy[2]).toBe(Number((44 + 324 * 0.75).toFixed(1)));
  });

  it('escapes names and leaves out charts whose columns are absent', () => {
    const m = metricsFromIPC(tableToIPC(tableFromArrays({ step: [1, 2], 'a<b&c.cos_ema': [0.1, 0.2] }), 'stream'));
    const plots = buildPlots(m);
    expect(plots.map((p) => p.file)).toEqual(['coherence.svg']);
    assertWellFormed(plots[0].svg);
    expect(plots[0].svg).toContain('a&lt;b&amp;c');
  });

  it('writes the charts next to the metrics file', () => {
    const dir = join(tmp, 'plots-run');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.arrow'), metricsIPC());
    const paths = writePlots(join(dir, 'metrics.arrow'));
    expect(paths).toEqual(['accuracy.svg', 'grad-mass.svg', 'grad-norm.svg', 'coherence.svg'].map((f) => join(dir, f)));
    for (const p of paths) assertWellFormed(readFileSync(p, 'utf8'));
  });
});

/** A trainer stand-in: reports progress and writes summary.json the way the real one does. */
function fakeTrain(accuracyOf: (c: TrainConfig) => number = () => 0.5, fail?: (c: TrainConfig) => boolean) {
  const seen: TrainConfig[] = [];
  const fn = async (c: TrainConfig, hooks: TrainHooks): Promise<TrainSummary> => {
    seen.push(c);
    if (fail?.(c)) throw new Error(`boom in ${c.workflow}`);
    for (let s = 1; s <= c.steps; s++) {
      hooks.onProgress?.({ step: s, steps: c.steps, accuracy: null, reward: 0.5, tokensPerSecond: 100, seconds: s, phase: 'train' });
    }
    hooks.onLog?.('done training');
    const acc = accuracyOf(c);
    const summary: TrainSummary = {
      outDir: c.outDir, base: { accuracy: 0.25, n: 8 }, peak: { accuracy: acc, step: c.steps }, final: { accuracy: acc, n: 8 },
      delta: { mean: acc - 0.25, ci95: [acc - 0.35, acc - 0.15] }, seconds: c.steps,
    };
    mkdirSync(c.outDir, { recursive: true });
    writeFileSync(join(c.outDir, 'summary.json'), JSON.stringify(summary));
    return summary;
  };
  return { fn, seen };
}

describe('commands', () => {
  it('--version, help, unknown commands', async () => {
    let io = fakeIO();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.stdout.out.trim()).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
    io = fakeIO();
    expect(await main(['help', 'sweep'], io)).toBe(0);
    expect(io.stdout.out).toMatch(/--workflows <list>/);
    io = fakeIO();
    expect(await main(['trian'], io)).toBe(2);
    expect(io.stderr.out).toMatch(/no command 'trian' \(did you mean train\?\)/);
    io = fakeIO();
    expect(await main(['train', '--help'], io)).toBe(0);
    for (const f of FIELD_NAMES) expect(io.stdout.out).toContain(f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
  });

  it('train: --dry-run prints the resolved config; bad flags exit 2 listing every problem', async () => {
    let io = fakeIO();
    expect(await main(['--steps', '7', '--dry-run'], io)).toBe(0);
    expect(JSON.parse(io.stdout.out)).toEqual({ ...DEFAULT_TRAIN_CONFIG, steps: 7 });
    io = fakeIO();
    expect(await main(['train', '--stepz', '7', '--workflow', 'x'], io)).toBe(2);
    expect(io.stderr.out).toMatch(/troupe train: 2 errors:\n {2}unknown flag --stepz \(did you mean --steps\?\)\n {2}--workflow: 'x' is not a workflow/);
  });

  it('train: runs the trainer with plain progress and prints the summary', async () => {
    const t = fakeTrain();
    const out = join(tmp, 'train-run');
    const io = fakeIO({ train: t.fn });
    expect(await main(['train', '--steps', '2', '--out', out, '--eval-every', '1', '--warmup-steps', '0'], io)).toBe(0);
    expect(t.seen[0]).toEqual({ ...DEFAULT_TRAIN_CONFIG, steps: 2, outDir: out, evalEvery: 1, warmupSteps: 0 });
    expect(io.stdout.out).toMatch(/\[train 1\/2\] acc=- reward=0\.500/);
    expect(io.stdout.out).toMatch(/done training\n/);
    expect(io.stdout.out).toMatch(/final accuracy +0\.500 {2}\(n=8\)/);
    expect(io.stdout.out).toMatch(new RegExp(`run dir +${out}\n`));
  });

  it('train: a trainer failure exits 1 with its message', async () => {
    const t = fakeTrain(undefined, () => true);
    const io = fakeIO({ train: t.fn });
    expect(await main(['--workflow', 'voting', '--steps', '1', '--out', join(tmp, 'fail-run')], io)).toBe(1);
    expect(io.stderr.out).toMatch(/troupe train: failed: boom in voting/);
  });

  it('report: prints the summary and writes plots next to the metrics', async () => {
    const dir = join(tmp, 'report-run');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.arrow'), metricsIPC());
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...DEFAULT_TRAIN_CONFIG, workflow: 'voting', outDir: dir }));
    writeFileSync(join(dir, 'summary.json'), JSON.stringify({
      outDir: dir, base: { accuracy: 0.2, n: 10 }, peak: { accuracy: 0.6, step: 4 }, final: { accuracy: 0.5, n: 10 },
      delta: { mean: 0.3, ci95: [0.1, 0.5] }, seconds: 65,
    }));
    const io = fakeIO();
    expect(await main(['report', dir], io)).toBe(0);
    expect(io.stdout.out).toMatch(/^run: voting \/ shared policy \/ math/);
    expect(io.stdout.out).toMatch(/peak accuracy +0\.600 {2}\(step 4\)/);
    expect(io.stdout.out).toContain(join(dir, 'coherence.svg'));
    expect(existsSync(join(dir, 'grad-mass.svg'))).toBe(true);
    const bad = fakeIO();
    expect(await main(['report', join(tmp, 'nowhere')], bad)).toBe(2);
    expect(bad.stderr.out).toMatch(/run directory '.*nowhere' does not exist/);
  });

  it('sweep: validates the whole grid first, runs each combo, tabulates, skips finished runs', async () => {
    const out = join(tmp, 'sweep');
    const bad = fakeIO({ train: fakeTrain().fn });
    expect(await main(['sweep', '--workflows', 'voting,eval-opt', '--policies', 'generator=a,aggregator=b', '--out', out], bad)).toBe(2);
    expect(bad.stderr.out).toMatch(/eval-opt-generator\.a_aggregator\.b-math-tiny-s1: --policy: 'aggregator' is not a role of workflow eval-opt/);
    expect(existsSync(out)).toBe(false);

    const t = fakeTrain((c) => (c.policy === 'isolated' ? 0.75 : 0.5), (c) => c.workflow === 'single' && c.seed === 2);
    const io = fakeIO({ train: t.fn });
    const argv = ['sweep', '--workflows', 'single,voting', '--policies', 'shared,isolated', '--seeds', '1-2', '--steps', '2', '--warmup-steps', '0', '--out', out];
    expect(await main(argv, io)).toBe(1); // the single/seed-2 runs fail
    expect(t.seen.map((c) => [c.workflow, c.policy, c.seed, c.outDir])).toEqual([
      ['single', 'shared', 1, join(out, 'single-shared-math-tiny-s1')],
      ['single', 'shared', 2, join(out, 'single-shared-math-tiny-s2')],
      ['single', 'isolated', 1, join(out, 'single-isolated-math-tiny-s1')],
      ['single', 'isolated', 2, join(out, 'single-isolated-math-tiny-s2')],
      ['voting', 'shared', 1, join(out, 'voting-shared-math-tiny-s1')],
      ['voting', 'shared', 2, join(out, 'voting-shared-math-tiny-s2')],
      ['voting', 'isolated', 1, join(out, 'voting-isolated-math-tiny-s1')],
      ['voting', 'isolated', 2, join(out, 'voting-isolated-math-tiny-s2')],
    ]);
    const sweep = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
    expect(sweep.runs.map((r: { status: string }) => r.status)).toEqual(['done', 'failed', 'done', 'failed', 'done', 'done', 'done', 'done']);
    expect(sweep.runs[6].summary.final.accuracy).toBe(0.75);
    const md = readFileSync(join(out, 'sweep.md'), 'utf8');
    expect(md).toMatch(/\| voting-isolated-math-tiny-s1 \| voting \| isolated \| math \| tiny \| 1 \| 0\.250 \| 0\.750 \(2\) \| 0\.750 \| \+0\.500 \[\+0\.400, \+0\.600\] \| - \| 2s \| done \|/);
    expect(md).toMatch(/failed: boom in single/);
    // Mean over seeds: voting/isolated had two seeds at 0.75 each.
    expect(md).toMatch(/## Mean over seeds[\s\S]*\| voting \| isolated \| math \| tiny \| 2 \| 0\.250 \| 0\.750 \| 0\.750 \| \+0\.500 \| \+0\.500 \.\. \+0\.500 \|/);

    // A second invocation skips the finished runs and retries only the failed ones.
    const t2 = fakeTrain();
    const io2 = fakeIO({ train: t2.fn });
    expect(await main(argv, io2)).toBe(0);
    expect(t2.seen.map((c) => c.outDir)).toEqual([join(out, 'single-shared-math-tiny-s2'), join(out, 'single-isolated-math-tiny-s2')]);
    const again = fakeIO();
    expect(await main(['report', out], again)).toBe(0);
    expect(again.stdout.out).toMatch(/^# troupe sweep/);
  });

  it('sweep lists: policy mappings keep their commas; seed ranges expand', () => {
    expect(splitList('policies', 'shared,isolated,generator=a,aggregator=b')).toEqual(['shared', 'isolated', 'generator=a,aggregator=b']);
    expect(splitList('policies', 'shared;generator=a,aggregator=b;generator=x,aggregator=x')).toEqual([
      'shared', 'generator=a,aggregator=b', 'generator=x,aggregator=x',
    ]);
    expect(splitList('seeds', '1-3,7')).toEqual(['1', '2', '3', '7']);
  });

  it('eval: checks its arguments, then needs evaluateCheckpoint from src/rl/evaluate.ts', async () => {
    let io = fakeIO();
    expect(await main(['eval', join(tmp, 'nope'), '--eval-problems', '0'], io)).toBe(2);
    expect(io.stderr.out).toMatch(/checkpoint directory '.*nope' does not exist/);
    expect(io.stderr.out).toMatch(/--eval-problems: expected an integer >= 1, got '0'/);
    io = fakeIO();
    // tmp holds no checkpoint: without evaluateCheckpoint the "not available" error, with it a failure.
    expect(await main(['eval', tmp, '--eval-problems', '5'], io)).toBe(1);
    expect(io.stderr.out).toMatch(/troupe eval: (checkpoint evaluation is not available|failed: )/);
  });
});
