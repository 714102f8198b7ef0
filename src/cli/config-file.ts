// Config files for `troupe train --config` and `troupe sweep --config`: JSON or YAML chosen by
// extension, a flat mapping of TrainConfig fields (camelCase or the flags' kebab-case).
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UsageError } from './args.js';

/** Reads a .json/.yaml/.yml file whose top level is a mapping; throws a UsageError naming the file. */
export function loadConfigFile(path: string): Record<string, unknown> {
  const ext = extname(path).toLowerCase();
  if (!['.json', '.yaml', '.yml'].includes(ext)) {
    throw new UsageError([`--config: '${path}' has extension '${ext || '(none)'}'; expected .json, .yaml or .yml`]);
  }
  if (!existsSync(path)) throw new UsageError([`--config: file '${path}' does not exist`]);
  const text = readFileSync(path, 'utf8');
  let data: unknown;
  try {
    data = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError([`--config: cannot parse '${path}' as ${ext === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`]);
  }
  // An empty YAML file is a config that sets nothing.
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new UsageError([`--config: '${path}' must hold a mapping of field: value, got ${Array.isArray(data) ? 'a list' : typeof data}`]);
  }
  return data as Record<string, unknown>;
}
