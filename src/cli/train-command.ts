// `troupe train`: flags and an optional config file become a validated TrainConfig, then the
// trainer runs with a progress printer attached and the summary is printed at the end.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from '../rl/config.js';
import type { TrainHooks, TrainSummary } from '../rl/hooks.js';
import { UsageError, camel, kebab, parseArgs, type FlagDef, type ParsedArgs } from './args.js';
import { loadConfigFile } from './config-file.js';
import { FIELDS, FIELD_NAMES, coerceField } from './fields.js';
import { formatSummary } from './format.js';
import { trainHelp } from './help.js';
import { loadTrainer, type TrainFn } from './load.js';
import { ProgressPrinter, type ProgressStream } from './progress.js';
import { defaultContext, fileLayer, resolveTrainConfig, type ConfigLayer, type ResolvedConfig, type ValidateContext } from './validate.js';

/** Where a command writes, and what it runs against (tests substitute all of it). */
export interface CliIO {
  stdout: ProgressStream;
  stderr: { write(chunk: string): unknown };
  ctx?: ValidateContext;
  /** The trainer; loaded from src/rl/trainer.ts when absent. */
  train?: TrainFn;
}

/** Flag aliases: a short name for a field flag. */
export const FLAG_ALIASES: Readonly<Record<string, keyof TrainConfig>> = { out: 'outDir' };

/** One flag per TrainConfig field (kebab-case), booleans as switches. */
export function fieldFlagDefs(exclude: readonly (keyof TrainConfig)[] = []): FlagDef[] {
  const defs = FIELD_NAMES.filter((f) => !exclude.includes(f)).map((f) => ({ name: kebab(f), boolean: FIELDS[f].kind.type === 'bool' }));
  for (const [alias, field] of Object.entries(FLAG_ALIASES)) if (!exclude.includes(field)) defs.push({ name: alias, boolean: false });
  return defs;
}

const TRAIN_FLAGS: FlagDef[] = [
  ...fieldFlagDefs(),
  { name: 'config', boolean: false },
  { name: 'dry-run', boolean: true },
  { name: 'help', boolean: true },
];

/** The field-valued flags of a parsed command line as a layer (aliases resolved, others dropped). */
export function flagLayer(flags: ReadonlyMap<string, string | boolean>): ConfigLayer {
  const values: Record<string, unknown> = {};
  for (const [name, v] of flags) {
    const field = FLAG_ALIASES[name] ?? camel(name);
    if (field in FIELDS) values[field] = v;
  }
  return { origin: { kind: 'flag' }, values };
}

/** A field's value from the highest layer that sets it validly, or undefined (bad values are reported by the full resolution). */
export function pickField(layers: readonly ConfigLayer[], field: keyof TrainConfig): unknown {
  for (let i = layers.length - 1; i >= 0; i--) {
    if (field in layers[i].values) {
      const c = coerceField(field, layers[i].values[field], layers[i].origin);
      return c.ok ? c.value : undefined;
    }
  }
  return undefined;
}

/**
 * Layers for a run: config file under flags (under `extra`, e.g. a sweep's grid values), and when
 * resuming, the run's saved config.json under all of them, so `--resume --out runs/x` continues
 * runs/x with the settings it started with.
 */
export function buildLayers(
  flags: ReadonlyMap<string, string | boolean>,
  exists: (p: string) => boolean = existsSync,
  extra: readonly ConfigLayer[] = [],
): ConfigLayer[] {
  const layers: ConfigLayer[] = [];
  const configPath = flags.get('config');
  if (typeof configPath === 'string') layers.push(fileLayer(loadConfigFile(configPath), configPath));
  layers.push(flagLayer(flags), ...extra);
  const pick = (field: keyof TrainConfig) => pickField(layers, field);
  const outDir = (pick('outDir') as string | undefined) ?? null;
  const saved = outDir === null ? null : join(outDir, 'config.json');
  if (pick('resume') === true && saved !== null && exists(saved)) {
    layers.unshift(fileLayer(JSON.parse(readFileSync(saved, 'utf8')) as Record<string, unknown>, saved));
  }
  return layers;
}

function resolveParsed(args: ParsedArgs, ctx: ValidateContext): ResolvedConfig {
  const problems = [...args.problems];
  if (args.positionals.length > 0) problems.push(`unexpected argument '${args.positionals[0]}' (flags take the form --name value)`);
  try {
    const r = resolveTrainConfig(buildLayers(args.flags, ctx.exists), ctx);
    if (problems.length === 0) return r;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    // Unknown flags and bad values are reported together, so one run shows every problem.
    problems.push(...e.problems);
  }
  throw new UsageError(problems);
}

/** Parses and validates a train command line; throws a UsageError listing every problem. */
export function resolveTrainArgs(argv: readonly string[], ctx: ValidateContext = defaultContext()): ResolvedConfig {
  return resolveParsed(parseArgs(argv, TRAIN_FLAGS, true), ctx);
}

/** One line saying what is about to run. */
export function describeRun(c: TrainConfig): string {
  const policy = typeof c.policy === 'string' ? c.policy : Object.entries(c.policy).map(([r, p]) => `${r}=${p}`).join(',');
  const model = c.model ?? `${c.preset} preset`;
  return `troupe train: ${c.workflow} / ${policy} policy / ${c.task} / ${model}, seed ${c.seed}: ${c.steps} steps x ${c.promptsPerStep} prompts x ${c.groupSize} rollouts -> ${c.outDir}`;
}

/** Runs the trainer with a progress printer; the printer's line is closed even when training fails. */
export async function runTraining(config: TrainConfig, io: CliIO, extraHooks: TrainHooks = {}): Promise<TrainSummary> {
  const train = io.train ?? (await loadTrainer());
  const printer = new ProgressPrinter(io.stdout);
  const onSigint = () => {
    printer.finish();
    io.stderr.write('troupe: interrupted\n');
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    return await train(config, {
      onProgress: (p) => {
        printer.onProgress(p);
        extraHooks.onProgress?.(p);
      },
      onLog: (line) => {
        printer.onLog(line);
        extraHooks.onLog?.(line);
      },
    });
  } finally {
    printer.finish();
    process.removeListener('SIGINT', onSigint);
  }
}

/** `troupe train [flags]`; returns the exit code. */
export async function trainCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, TRAIN_FLAGS, true);
  if (args.flags.get('help') === true) {
    io.stdout.write(trainHelp());
    return 0;
  }
  const r = resolveParsed(args, io.ctx ?? defaultContext());
  for (const w of r.warnings) io.stderr.write(`warning: ${w}\n`);
  if (args.flags.get('dry-run') === true) {
    io.stdout.write(JSON.stringify(r.config, null, 2) + '\n');
    return 0;
  }
  io.stdout.write(describeRun(r.config) + '\n');
  const summary = await runTraining(r.config, io);
  io.stdout.write('\n' + formatSummary(summary) + '\n');
  return 0;
}
