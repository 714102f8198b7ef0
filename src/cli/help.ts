// Help texts. The train flags are generated from the field specs and defaults, so the help can
// never disagree with what the parser accepts.
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../rl/config.js';
import { kebab } from './args.js';
import { FIELDS, FIELD_NAMES, type FieldKind, type FieldSpec } from './fields.js';

const GROUP_TITLES: Record<FieldSpec['group'], string> = {
  run: 'Run',
  batch: 'Batch shape',
  optimizer: 'Optimizer',
  loss: 'Loss',
  rl: 'RL and diagnostics',
  sampling: 'Sampling',
  eval: 'Evaluation and checkpoints',
  system: 'System and base model',
};

const FLAG_COLUMN = 40;

function valueHint(k: FieldKind): string {
  switch (k.type) {
    case 'int':
      return '<int>';
    case 'number':
      return '<num>';
    case 'enum':
      return `<${k.values.join('|')}>`;
    case 'bool':
      return '';
    case 'string':
    case 'path-or-null':
      return '<path>';
    case 'role-number':
      return '<num|role=num,..>';
    case 'policy':
      return '<shared|isolated|role=policy,..>';
  }
}

function defaultText(v: unknown): string {
  if (v === null) return 'none';
  if (typeof v === 'number' && v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(); // 2e-5, not 0.00002
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** `--flag <hint>  help (default: x)` lines for the given fields, grouped by section. */
export function fieldFlagHelp(fields: readonly (keyof TrainConfig)[] = FIELD_NAMES): string {
  const out: string[] = [];
  for (const group of Object.keys(GROUP_TITLES) as FieldSpec['group'][]) {
    const inGroup = fields.filter((f) => FIELDS[f].group === group);
    if (inGroup.length === 0) continue;
    out.push(`${GROUP_TITLES[group]}:`);
    const rows = inGroup.map((f) => {
      const k = FIELDS[f].kind;
      const flag = k.type === 'bool' ? `--[no-]${kebab(f)}` : `--${kebab(f)} ${valueHint(k)}`;
      return [flag, `${FIELDS[f].help} (default: ${defaultText(DEFAULT_TRAIN_CONFIG[f])})`];
    });
    // Long flag forms (enums with many values) put their help on the next line instead of
    // pushing every other line of the section far to the right.
    const w = Math.min(FLAG_COLUMN, Math.max(...rows.map(([a]) => a.length)));
    for (const [a, b] of rows) {
      if (a.length <= w) out.push(`  ${a.padEnd(w)}  ${b}`);
      else out.push(`  ${a}`, `  ${''.padEnd(w)}  ${b}`);
    }
    out.push('');
  }
  return out.join('\n') + '\n';
}

/** Top-level usage. */
export const MAIN_HELP = `troupe: train multi-agent LLM workflows with RL

Usage: troupe <command> [flags]

Commands:
  train     train a workflow (the default when the first argument is a flag)
  eval      evaluate a checkpoint on the held-out split
  sweep     run a grid of training runs and tabulate them
  report    print a run's summary and render its metric plots
  bench     run the core throughput benchmark
  help      show help for a command

Flags:
  --help, -h     show help (also: troupe <command> --help)
  --version      print the version

Exit codes: 0 success, 1 run failed, 2 bad command line or config.
`;

/** `troupe train --help`. */
export function trainHelp(): string {
  return `Usage: troupe train [flags]

Trains one workflow. Settings come from, lowest to highest precedence: defaults, the saved config
of a run being resumed (<out-dir>/config.json), --config FILE, then flags.

General:
  --config <file>   JSON or YAML file of settings (camelCase or kebab-case keys)
  --out <path>      alias of --out-dir
  --dry-run         validate and print the resolved config as JSON, then exit
  --help, -h        show this help

${fieldFlagHelp()}Per-role values: --kl-coef generator=0.01,aggregator=0.05 (roles missing from the list get 0).
Policy mapping: --policy generator=a,aggregator=b (keys: role or role#copy, e.g. generator#1).
`;
}

/** `troupe sweep --help`. */
export const SWEEP_HELP = `Usage: troupe sweep [grid flags] [train flags]

Runs every combination of the grid sequentially, each into <out>/<workflow>-<policy>-<task>-<preset>-s<seed>,
and writes <out>/sweep.md and <out>/sweep.json (rewritten after every run). Every combination is
validated before the first one starts. Combinations whose summary.json already exists are skipped.

Grid flags (comma-separated lists; default: the single value from the train settings):
  --workflows <list>   e.g. single,voting,eval-opt,orch-workers
  --policies <list>    e.g. shared,isolated; separate mappings with ';' (shared;generator=a,aggregator=b)
  --tasks <list>       e.g. math,code
  --presets <list>     e.g. tiny,small
  --seeds <list>       e.g. 1,2,3 or a range 1-5

Sweep flags:
  --out <dir>          sweep directory (default: runs/sweep)
  --config <file>      JSON or YAML settings shared by every run
  --rerun              run combinations again even if they have a summary.json
  --resume             resume combinations whose run directory exists but has no summary.json
  --dry-run            validate and list the combinations, then exit
  --help, -h           show this help

Any train flag (--steps, --lr, ...) sets that value for every run; see troupe train --help.
`;

/** `troupe eval --help`. */
export const EVAL_HELP = `Usage: troupe eval <checkpoint-dir> [flags]

Evaluates a checkpoint (a run directory or one of its checkpoints) on the held-out split, with the
run's saved settings unless overridden here.

Flags:
  --eval-problems <int>      held-out problems
  --[no-]eval-greedy         also evaluate with greedy decoding
  --seed <int>               sampling seed
  --temperature <num>        sampling temperature
  --max-new-tokens <int>     completion budget per role call
  --transcripts <int>        full transcripts to save
  --workers <int>            rollout worker threads (0 = auto)
  --threads-per-call <int>   native threads per call (0 = cores / workers)
  --rollout-schedule <name>  auto (measured), split (side by side) or serial
  --json                     print the result as JSON
  --help, -h                 show this help
`;

/** `troupe report --help`. */
export const REPORT_HELP = `Usage: troupe report <run-dir> [flags]

Prints the run's summary.json as a table and writes SVG plots next to its metrics file
(accuracy.svg, grad-mass.svg, grad-norm.svg, coherence.svg; each when its columns exist).
Given a sweep directory (with sweep.json), prints the sweep table.

Flags:
  --no-plots     only print the summary
  --json         print the summary as JSON
  --help, -h     show this help
`;

/** `troupe bench --help`. */
export const BENCH_HELP = `Usage: troupe bench [flags]

Runs the core benchmark (dist/bench/core.js): one training step and KV-cached sampling per preset.
Prints a table, then one JSON line. Flags are passed through:
  --presets tiny,small,medium   --threads N   --repeats K   --gemm-seconds S
`;
