// Where the installed package lives and its version, found by walking up from this module, which
// sits at src/cli/ when run from source and at dist/src/cli/ when built.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | null = null;

/** The directory holding troupe's package.json. */
export function packageRoot(): string {
  if (cachedRoot !== null) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'troupe') return (cachedRoot = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find troupe\'s package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The package version from package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
