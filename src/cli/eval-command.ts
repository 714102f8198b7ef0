// `troupe eval <checkpoint>`: held-out accuracy of a saved checkpoint with the run's settings,
// optionally overridden by the few flags that make sense for evaluation.
import { existsSync } from 'node:fs';
import type { TrainConfig } from '../rl/config.js';
import { UsageError, camel, kebab, parseArgs } from './args.js';
import { coerceField } from './fields.js';
import { formatDuration, formatRate } from './format.js';
import { EVAL_HELP } from './help.js';
import { loadEvaluateCheckpoint } from './load.js';
import { ProgressPrinter } from './progress.js';
import { keyValueBlock } from './table.js';
import type { CliIO } from './train-command.js';

/** Train settings `troupe eval` may override. */
export const EVAL_FIELDS = ['evalProblems', 'evalGreedy', 'seed', 'temperature', 'maxNewTokens', 'transcripts', 'workers', 'threadsPerCall', 'rolloutSchedule'] as const satisfies readonly (keyof TrainConfig)[];

const EVAL_FLAGS = [
  ...EVAL_FIELDS.map((f) => ({ name: kebab(f), boolean: f === 'evalGreedy' })),
  { name: 'json', boolean: true },
  { name: 'help', boolean: true },
];

/** `troupe eval <checkpoint-dir> [flags]`; returns the exit code. */
export async function evalCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, EVAL_FLAGS, true);
  if (args.flags.get('help') === true) {
    io.stdout.write(EVAL_HELP);
    return 0;
  }
  const problems = [...args.problems];
  if (args.positionals.length !== 1) problems.push(`expected one checkpoint directory, got ${args.positionals.length} argument(s)`);
  const checkpoint = args.positionals[0];
  const exists = io.ctx?.exists ?? existsSync;
  if (checkpoint !== undefined && !exists(checkpoint)) problems.push(`checkpoint directory '${checkpoint}' does not exist`);
  const overrides: Partial<Record<keyof TrainConfig, unknown>> = {};
  for (const [name, raw] of args.flags) {
    const field = camel(name) as keyof TrainConfig;
    if (!(EVAL_FIELDS as readonly string[]).includes(field)) continue;
    const c = coerceField(field, raw, { kind: 'flag' });
    if (c.ok) overrides[field] = c.value;
    else problems.push(c.error);
  }
  if (problems.length > 0) throw new UsageError(problems);

  const evaluateCheckpoint = await loadEvaluateCheckpoint();
  const printer = new ProgressPrinter(io.stdout);
  let result;
  try {
    result = await evaluateCheckpoint({ checkpoint: checkpoint!, overrides: overrides as Partial<TrainConfig>, hooks: printer });
  } finally {
    printer.finish();
  }
  if (args.flags.get('json') === true) {
    io.stdout.write(JSON.stringify({ checkpoint, ...result }) + '\n');
    return 0;
  }
  const rows: [string, string][] = [
    ['checkpoint', checkpoint!],
    ['accuracy', `${formatRate(result.accuracy)}  (n=${result.n})`],
  ];
  if (typeof result.greedy === 'number') rows.push(['greedy accuracy', formatRate(result.greedy)]);
  if (typeof result.seconds === 'number') rows.push(['time', formatDuration(result.seconds)]);
  io.stdout.write(keyValueBlock(rows) + '\n');
  return 0;
}
