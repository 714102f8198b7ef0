// Runs the native unit-test binary built by `npm install` (plain C++, no Node inside).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const candidates = ['build/Release/troupe_native_tests', 'build/troupe_native_tests'];
const exe = candidates.map((c) => path.join(root, c)).find((p) => existsSync(p));
if (!exe) {
  console.error('native test binary not found; build first with `npm install` or `npm run build`');
  process.exit(1);
}
// Every CPU buffer starts as NaN in the tests (cpu_backend.cpp), so a kernel that reads memory it
// never wrote fails here instead of passing on the zero pages a fresh allocation happens to get.
const env = { ...process.env, TROUPE_POISON_ALLOCATIONS: '1' };
const r = spawnSync(exe, process.argv.slice(2), { stdio: 'inherit', env });
process.exit(r.status ?? 1);
