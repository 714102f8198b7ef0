// Builds the native addon (cmake-js, Node-API headers from the npm registry, nothing else
// downloaded) and compiles the TypeScript. `npm install` runs this.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeOnly = process.argv.includes('--native-only');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

function run(cmd, args) {
  console.log(`[troupe build] ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`[troupe build] failed: ${cmd} ${args.join(' ')} (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

if (!existsSync(bin('cmake-js'))) {
  console.error('[troupe build] cmake-js is missing: run `npm install` in the package root first.');
  process.exit(1);
}
const jobs = String(Math.max(1, os.cpus().length));
const cudaFlag = process.env.TROUPE_CUDA ?? 'OFF';
run(bin('cmake-js'), ['compile', '--out', 'build', '--parallel', jobs, '--CDTROUPE_CUDA=' + cudaFlag]);
if (!nativeOnly) run(bin('tsc'), ['-p', 'tsconfig.json']);
