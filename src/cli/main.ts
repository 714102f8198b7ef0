#!/usr/bin/env node
// The `troupe` command: dispatches to a subcommand and turns errors into exit codes (2 for a bad
// command line or config, with every problem listed; 1 for a run that failed).
import { pathToFileURL } from 'node:url';
import { realpathSync } from 'node:fs';
import { UsageError } from './args.js';
import { benchCommand } from './bench-command.js';
import { evalCommand } from './eval-command.js';
import { BENCH_HELP, EVAL_HELP, MAIN_HELP, REPORT_HELP, SWEEP_HELP, trainHelp } from './help.js';
import { NotAvailableError } from './load.js';
import { packageVersion } from './package-info.js';
import { reportCommand } from './report-command.js';
import { didYouMean } from './suggest.js';
import { sweepCommand } from './sweep-command.js';
import { trainCommand, type CliIO } from './train-command.js';

type Command = (argv: readonly string[], io: CliIO) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: () => string }> = {
  train: { run: trainCommand, help: trainHelp },
  eval: { run: evalCommand, help: () => EVAL_HELP },
  sweep: { run: sweepCommand, help: () => SWEEP_HELP },
  report: { run: reportCommand, help: () => REPORT_HELP },
  bench: { run: benchCommand, help: () => BENCH_HELP },
};

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const first = argv[0];
  let name = 'train';
  let rest = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    io.stdout.write(MAIN_HELP);
    return 0;
  }
  if (first === '--version' || first === '-v') {
    io.stdout.write(packageVersion() + '\n');
    return 0;
  }
  if (first === 'help') {
    const topic = argv[1];
    if (topic === undefined) io.stdout.write(MAIN_HELP);
    else if (topic in COMMANDS) io.stdout.write(COMMANDS[topic].help());
    else {
      io.stderr.write(`troupe: no command '${topic}'${didYouMean(topic, Object.keys(COMMANDS))}\n`);
      return 2;
    }
    return 0;
  }
  // `troupe --steps 5` means `troupe train --steps 5`: training is the default job.
  if (!first.startsWith('-')) {
    if (!(first in COMMANDS)) {
      io.stderr.write(`troupe: no command '${first}'${didYouMean(first, Object.keys(COMMANDS))}; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
      return 2;
    }
    name = first;
    rest = argv.slice(1);
  }
  try {
    return await COMMANDS[name].run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      const lines = e.problems.map((p) => `  ${p}`).join('\n');
      io.stderr.write(`troupe ${name}: ${e.problems.length === 1 ? 'error' : `${e.problems.length} errors`}:\n${lines}\n(see troupe ${name} --help)\n`);
      return 2;
    }
    if (e instanceof NotAvailableError) {
      io.stderr.write(`troupe ${name}: ${e.message}\n`);
      return 1;
    }
    const err = e as Error;
    io.stderr.write(`troupe ${name}: failed: ${process.env.TROUPE_DEBUG ? err.stack ?? err.message : err.message}\n`);
    return 1;
  }
}

// Run only when executed as the program (through the npm bin link too), not when imported.
function isEntryPoint(): boolean {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`troupe: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
