// Loads whichever tokenizer a checkpoint directory holds, dispatching on tokenizer.json's "type".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BYTE_TOKENIZER_TYPE, ByteTokenizer } from './byte-tokenizer.js';
import type { Tokenizer } from './types.js';

/** Loads `dir`/tokenizer.json; throws an error naming the file when it is missing or unsupported. */
export function loadTokenizer(dir: string): Tokenizer {
  const path = join(dir, 'tokenizer.json');
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`loadTokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
  const type = (doc as { type?: unknown } | null)?.type;
  if (type === BYTE_TOKENIZER_TYPE) return ByteTokenizer.fromJSON(doc);
  throw new Error(`loadTokenizer: ${path} has unsupported type ${JSON.stringify(type)}`);
}
