// `troupe report <dir>`: a run's summary as a table plus SVG plots of its metrics, or, given a
// sweep directory, the sweep table. Works on a run still in progress (plots, no summary yet).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, parseArgs } from './args.js';
import { formatSummary } from './format.js';
import { REPORT_HELP } from './help.js';
import { findMetricsFile } from './metrics.js';
import { writePlots } from './plot.js';
import { readSummary } from './summary-file.js';
import { sweepMarkdown, type SweepFile } from './sweep-table.js';
import { describeRun, type CliIO } from './train-command.js';

const REPORT_FLAGS = [
  { name: 'plots', boolean: true },
  { name: 'json', boolean: true },
  { name: 'help', boolean: true },
];

/** `troupe report <run-dir> [--no-plots] [--json]`; returns the exit code. */
export async function reportCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const args = parseArgs(argv, REPORT_FLAGS);
  if (args.flags.get('help') === true) {
    io.stdout.write(REPORT_HELP);
    return 0;
  }
  if (args.positionals.length !== 1) throw new UsageError([`expected one run directory, got ${args.positionals.length} argument(s)`]);
  const dir = args.positionals[0];
  if (!existsSync(dir)) throw new UsageError([`run directory '${dir}' does not exist`]);
  const json = args.flags.get('json') === true;
  const summaryPath = join(dir, 'summary.json');
  const sweepPath = join(dir, 'sweep.json');
  const metrics = findMetricsFile(dir);

  if (!existsSync(summaryPath) && existsSync(sweepPath)) {
    const sweep = JSON.parse(readFileSync(sweepPath, 'utf8')) as SweepFile;
    io.stdout.write(json ? JSON.stringify(sweep, null, 2) + '\n' : sweepMarkdown(sweep));
    return 0;
  }
  if (!existsSync(summaryPath) && metrics === null) {
    throw new UsageError([`'${dir}' holds neither summary.json, sweep.json nor a metrics file; is it a run directory?`]);
  }
  if (existsSync(summaryPath)) {
    const summary = readSummary(summaryPath);
    if (json) {
      io.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    } else {
      const configPath = join(dir, 'config.json');
      if (existsSync(configPath)) io.stdout.write(describeRun(JSON.parse(readFileSync(configPath, 'utf8'))).replace(/^troupe train: /, 'run: ') + '\n\n');
      io.stdout.write(formatSummary(summary) + '\n');
    }
  } else {
    io.stdout.write(`no summary.json in ${dir} yet (run not finished)\n`);
  }
  if (args.flags.get('plots') !== false && metrics !== null) {
    const paths = writePlots(metrics);
    // Plot paths go to stderr under --json so stdout stays one JSON document.
    const sink = json ? io.stderr : io.stdout;
    sink.write(paths.length > 0 ? `\nplots:\n${paths.map((p) => `  ${p}`).join('\n')}\n` : `\nno plottable columns in ${metrics}\n`);
  }
  return 0;
}
