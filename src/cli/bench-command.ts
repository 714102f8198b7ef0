// `troupe bench`: runs the built core benchmark in a child process with the flags passed through,
// so its JSON last line reaches the caller's stdout untouched.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_HELP } from './help.js';
import { NotAvailableError } from './load.js';
import { packageRoot } from './package-info.js';
import type { CliIO } from './train-command.js';

/** The built benchmark script: next to this module when built, else under dist/ of the package. */
export function benchScript(): string | null {
  const candidates = [fileURLToPath(new URL('../../bench/core.js', import.meta.url)), join(packageRoot(), 'dist', 'bench', 'core.js')];
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** `troupe bench [flags]`; returns the benchmark's exit code. */
export async function benchCommand(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(BENCH_HELP);
    return 0;
  }
  const script = benchScript();
  if (script === null) throw new NotAvailableError('the benchmark is not built (dist/bench/core.js is missing); run `npm run build` first');
  return await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...argv], { stdio: 'inherit' });
    child.on('error', reject);
    // A benchmark killed by a signal exits like a shell would report it: 128 + the signal number.
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
