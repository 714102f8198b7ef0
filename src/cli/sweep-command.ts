// `troupe sweep`: the cartesian grid of workflows x policies x tasks x presets x seeds, each run
// sequentially into its own directory. Every combination is validated before the first run starts
// (a typo found after six hours of runs is the failure a sweep tool exists to prevent), finished
// runs are skipped so an interrupted sweep continues where it stopped, and one failed run is
// recorded in the table without stopping the rest.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../rl/config.js';
import { UsageError, kebab, parseArgs, type FlagDef } from './args.js';
import { coerceField, type Origin } from './fields.js';
import { SWEEP_HELP } from './help.js';
import { readSummary } from './summary-file.js';
import { sweepMarkdown, type SweepFile, type SweepRow } from './sweep-table.js';
import { buildLayers, fieldFlagDefs, pickField, runTraining, type CliIO } from './train-command.js';
import { defaultContext, resolveTrainConfig, type ValidateContext } from './validate.js';

/** Grid axes: the plural flag and the TrainConfig field it varies. */
export const AXES = [
  { flag: 'workflows', field: 'workflow' },
  { flag: 'policies', field: 'policy' },
  { flag: 'tasks', field: 'task' },
  { flag: 'presets', field: 'preset' },
  { flag: 'seeds', field: 'seed' },
] as const satisfies readonly { flag: string; field: keyof TrainConfig }[];

const SWEEP_FLAGS: FlagDef[] = [
  ...fieldFlagDefs(['outDir']),
  ...AXES.map((a) => ({ name: a.flag, boolean: false })),
  { name: 'out', boolean: false },
  { name: 'config', boolean: false },
  { name: 'rerun', boolean: true },
  { name: 'dry-run', boolean: true },
  { name: 'help', boolean: true },
];

/** One grid point: its raw axis values (validated like flags) and its directory name. */
export interface Combo {
  name: string;
  values: Record<(typeof AXES)[number]['field'], string>;
}

/**
 * Splits a list flag. Policies may be mappings that contain commas themselves, so for them ';'
 * separates entries when present, and otherwise consecutive `role=policy` parts join into one.
 */
export function splitList(flag: string, raw: string): string[] {
  if (flag === 'seeds') {
    return raw.split(',').map((s) => s.trim()).filter(Boolean).flatMap((part) => {
      const m = /^(\d+)-(\d+)$/.exec(part);
      if (!m) return [part];
      const [a, b] = [Number(m[1]), Number(m[2])];
      if (b < a || b - a > 10_000) throw new UsageError([`--seeds: bad range '${part}' (expected low-high, e.g. 1-5)`]);
      return Array.from({ length: b - a + 1 }, (_, i) => String(a + i));
    });
  }
  if (flag !== 'policies') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (raw.includes(';')) {
    return raw.split(';').map((s) => s.trim()).filter(Boolean).flatMap((chunk) => (chunk.includes('=') ? [chunk] : chunk.split(',').map((s) => s.trim()).filter(Boolean)));
  }
  const out: string[] = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const prev = out[out.length - 1];
    if (part.includes('=') && prev !== undefined && prev.includes('=')) out[out.length - 1] = `${prev},${part}`;
    else out.push(part);
  }
  return out;
}

/** A directory-safe name for a policy value (`generator=a,aggregator=b` -> `generator.a_aggregator.b`). */
export function policySlug(policy: string): string {
  return policy.split(',').map((p) => p.replace('=', '.')).join('_').replace(/[^A-Za-z0-9._-]/g, '_');
}

function comboName(v: Combo['values']): string {
  return `${v.workflow}-${policySlug(v.policy)}-${v.task}-${v.preset}-s${v.seed}`;
}

/** The grid as combos, axes not given taking the train settings' single value. */
export function expandGrid(axes: Record<(typeof AXES)[number]['field'], string[]>): Combo[] {
  let acc: Partial<Combo['values']>[] = [{}];
  for (const a of AXES) acc = acc.flatMap((v) => axes[a.field].map((x) => ({ ...v, [a.field]: x })));
  return acc.map((v) => ({ name: comboName(v as Combo['values']), values: v as Combo['values'] }));
}

function stringOf(v: unknown): string {
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([k, x]) => `${k}=${String(x)}`).join(',');
  return String(v);
}

/** Every run of the sweep, validated; throws a UsageError listing the problems of all combos. */
export function planSweep(
  flags: ReadonlyMap<string, string | boolean>,
  ctx: ValidateContext,
): { out: string; grid: SweepFile['grid']; runs: { combo: Combo; config: TrainConfig; dir: string }[]; warnings: string[] } {
  const problems: string[] = [];
  const out = typeof flags.get('out') === 'string' ? (flags.get('out') as string) : 'runs/sweep';
  const resume = flags.get('resume') === true;
  const base = new Map([...flags].filter(([k]) => k !== 'resume'));
  // An axis not given as a list takes its single value from the config file, flags or defaults
  // (resolving the whole base config here could fail for a default that the grid replaces).
  const baseLayers = buildLayers(base, ctx.exists);
  const single = (f: keyof TrainConfig) => pickField(baseLayers, f) ?? DEFAULT_TRAIN_CONFIG[f];
  const axes = {} as Record<(typeof AXES)[number]['field'], string[]>;
  for (const a of AXES) {
    const list = flags.get(a.flag);
    if (typeof list === 'string' && flags.has(kebab(a.field))) problems.push(`--${a.flag} and --${kebab(a.field)} both given; use one`);
    const values = typeof list === 'string' ? splitList(a.flag, list) : [stringOf(single(a.field))];
    if (values.length === 0) problems.push(`--${a.flag}: the list is empty`);
    for (const v of values) {
      const c = coerceField(a.field, v, { kind: 'flag' });
      if (!c.ok) problems.push(c.error.replace(`--${kebab(a.field)}:`, `--${a.flag}:`));
    }
    axes[a.field] = [...new Set(values)];
  }
  if (problems.length > 0) throw new UsageError(problems);

  const runs: { combo: Combo; config: TrainConfig; dir: string }[] = [];
  const warnings = new Set<string>();
  // The same problem usually hits many combos (every seed); report it once with the combos it hits.
  const byProblem = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const combo of expandGrid(axes)) {
    const dir = join(out, combo.name);
    if (seen.has(combo.name)) problems.push(`two combinations map to the directory ${dir}; give the policies distinct names`);
    seen.add(combo.name);
    const origin: Origin = { kind: 'flag' };
    const values: Record<string, unknown> = { ...combo.values, outDir: dir, resume: resume && ctx.exists(dir) };
    try {
      const r = resolveTrainConfig(buildLayers(base, ctx.exists, [{ origin, values }]), ctx);
      runs.push({ combo, config: r.config, dir });
      for (const w of r.warnings) warnings.add(w);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      for (const p of e.problems) byProblem.set(p, [...(byProblem.get(p) ?? []), combo.name]);
    }
  }
  for (const [p, names] of byProblem) {
    const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
    problems.push(`${shown}: ${p}`);
  }
  if (problems.length > 0) throw new UsageError(problems);
  const grid = {
    workflows: axes.workflow, policies: axes.policy, tasks: axes.task, presets: axes.preset, seeds: axes.seed.map(Number),
  };
  return { out, grid, runs, warnings: [...warnings] };
}

function writeSweep(out: string, file: SweepFile): void {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'sweep.json'), JSON.stringify(file, null, 2) + '\n');
  writeFileSync(join(out, 'sweep.md'), sweepMarkdown(file));
}

/** `troupe sweep [grid flags] [train flags]`; exit code 1 when any run failed. */
export async function sweepCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, SWEEP_FLAGS, true);
  if (args.flags.get('help') === true) {
    io.stdout.write(SWEEP_HELP);
    return 0;
  }
  const problems = [...args.problems];
  if (args.positionals.length > 0) problems.push(`unexpected argument '${args.positionals[0]}'`);
  const ctx = io.ctx ?? defaultContext();
  let plan: ReturnType<typeof planSweep> | null = null;
  try {
    plan = planSweep(args.flags, ctx);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    problems.push(...e.problems);
  }
  if (problems.length > 0 || plan === null) throw new UsageError(problems);
  for (const w of plan.warnings) io.stderr.write(`warning: ${w}\n`);
  const rerun = args.flags.get('rerun') === true;
  const rows: SweepRow[] = plan.runs.map(({ combo, config }) => ({
    name: combo.name, workflow: config.workflow, policy: combo.values.policy, task: config.task, preset: config.preset, seed: config.seed, status: 'pending',
  }));
  if (args.flags.get('dry-run') === true) {
    io.stdout.write(`${plan.runs.length} run(s) into ${plan.out}:\n${plan.runs.map((r) => `  ${r.dir}${!rerun && ctx.exists(join(r.dir, 'summary.json')) ? ' (done, skipped)' : ''}`).join('\n')}\n`);
    return 0;
  }
  const file: SweepFile = { grid: plan.grid, runs: rows };
  let failed = 0;
  for (let i = 0; i < plan.runs.length; i++) {
    const { config, dir } = plan.runs[i];
    const row = rows[i];
    const summaryPath = join(dir, 'summary.json');
    io.stdout.write(`\n[${i + 1}/${plan.runs.length}] ${row.name}\n`);
    if (!rerun && ctx.exists(summaryPath)) {
      row.status = 'skipped';
      io.stdout.write(`already done (${summaryPath}); --rerun runs it again\n`);
    } else {
      try {
        const returned = await runTraining(config, io);
        row.status = 'done';
        row.summary = returned;
      } catch (e) {
        row.status = 'failed';
        row.error = (e as Error).message.split('\n')[0];
        failed++;
        io.stderr.write(`run ${row.name} failed: ${(e as Error).message}\n`);
      }
    }
    // The table is built from the files, so it shows exactly what each run directory holds.
    if (row.status !== 'failed' && ctx.exists(summaryPath)) {
      try {
        row.summary = readSummary(summaryPath);
      } catch (e) {
        if (row.status === 'skipped') {
          row.status = 'failed';
          row.error = (e as Error).message;
          failed++;
        }
      }
    }
    writeSweep(plan.out, file);
  }
  io.stdout.write(`\n${sweepMarkdown(file)}\nwrote ${join(plan.out, 'sweep.md')} and ${join(plan.out, 'sweep.json')}\n`);
  return failed > 0 ? 1 : 0;
}
