// Byte-level tokenizer for the tiny CPU models: ids 0..255 are bytes, then the five chat specials,
// then a fixed table of multi-byte tokens (frequent format strings) matched greedily longest-first.
// Nothing is learned: the table is code, so a checkpoint's tokenizer.json records it for safety.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHAT_TEMPLATE_JINJA } from '../chat/template.js';
import { DEFAULT_MULTIBYTE_TOKENS } from './multibyte-table.js';
import {
  SPECIAL_TOKEN_TEXT,
  type DecodeOptions,
  type EncodeOptions,
  type SpecialTokenIds,
  type Tokenizer,
} from './types.js';

/** The "type" field of a byte tokenizer's tokenizer.json. */
export const BYTE_TOKENIZER_TYPE = 'troupe-byte';

/** Default vocabulary size of the tiny models (bytes + specials + multi-byte table). */
export const DEFAULT_VOCAB_SIZE = 320;

/** Order of the specials after the 256 byte ids. */
const SPECIAL_ORDER: readonly (keyof SpecialTokenIds)[] = ['endOfText', 'imStart', 'imEnd', 'thinkStart', 'thinkEnd'];

/** First id after the bytes and specials. */
const FIRST_MULTIBYTE_ID = 256 + SPECIAL_ORDER.length;

const REPLACEMENT = new Uint8Array([0xef, 0xbf, 0xbd]);
const encoder = new TextEncoder();

/** Options of the ByteTokenizer constructor. */
export interface ByteTokenizerOptions {
  /** Vocabulary size; at least 261. Table tokens that do not fit are dropped. */
  vocabSize?: number;
  /** Multi-byte token table in priority order (default: the built-in table). */
  multibyteTokens?: readonly string[];
}

interface TrieNode {
  next: Map<number, TrieNode>;
  id: number;
}

/** The byte-level tokenizer with chat specials and a fixed multi-byte table. */
export class ByteTokenizer implements Tokenizer {
  /** Number of ids (the embedding size). */
  readonly vocabSize: number;
  /** `<|im_end|>`, `<|endoftext|>`. */
  readonly eosIds: readonly number[];
  /** Special token ids (256..260). */
  readonly specials: Readonly<SpecialTokenIds>;
  /** Multi-byte tokens in use, id = 261 + index. */
  readonly multibyteTokens: readonly string[];

  private readonly idBytes: Uint8Array[];
  private readonly specialIds: ReadonlyMap<number, string>;
  private readonly trie: TrieNode;

  constructor(opts: ByteTokenizerOptions = {}) {
    const vocabSize = opts.vocabSize ?? DEFAULT_VOCAB_SIZE;
    if (!Number.isInteger(vocabSize) || vocabSize < FIRST_MULTIBYTE_ID || vocabSize > 1 << 20) {
      throw new RangeError(`ByteTokenizer: vocabSize must be an integer in [${FIRST_MULTIBYTE_ID}, 2^20], got ${vocabSize}`);
    }
    this.vocabSize = vocabSize;
    const table = (opts.multibyteTokens ?? DEFAULT_MULTIBYTE_TOKENS).slice(0, vocabSize - FIRST_MULTIBYTE_ID);
    checkTable(table);
    this.multibyteTokens = Object.freeze([...table]);

    const specials = {} as SpecialTokenIds;
    const specialIds = new Map<number, string>();
    SPECIAL_ORDER.forEach((name, i) => {
      specials[name] = 256 + i;
      specialIds.set(256 + i, SPECIAL_TOKEN_TEXT[name]);
    });
    this.specials = Object.freeze(specials);
    this.specialIds = specialIds;
    this.eosIds = Object.freeze([specials.imEnd, specials.endOfText]);

    this.idBytes = [];
    for (let b = 0; b < 256; b++) this.idBytes.push(new Uint8Array([b]));
    for (const name of SPECIAL_ORDER) this.idBytes.push(encoder.encode(SPECIAL_TOKEN_TEXT[name]));
    this.trie = { next: new Map(), id: -1 };
    table.forEach((text, i) => {
      const bytes = encoder.encode(text);
      this.idBytes.push(bytes);
      let node = this.trie;
      for (const b of bytes) {
        let child = node.next.get(b);
        if (!child) {
          child = { next: new Map(), id: -1 };
          node.next.set(b, child);
        }
        node = child;
      }
      node.id = FIRST_MULTIBYTE_ID + i;
    });
  }

  /** Token ids of a text. Lone UTF-16 surrogates are encoded as U+FFFD (as TextEncoder does). */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    const out: number[] = [];
    if (!opts.allowSpecial) {
      this.encodeBytes(encoder.encode(text), out);
      return Int32Array.from(out);
    }
    let start = 0;
    let i = text.indexOf('<');
    while (i >= 0) {
      const id = this.specialAt(text, i);
      if (id >= 0) {
        if (i > start) this.encodeBytes(encoder.encode(text.slice(start, i)), out);
        out.push(id);
        start = i + (this.specialIds.get(id) as string).length;
        i = text.indexOf('<', start);
      } else {
        i = text.indexOf('<', i + 1);
      }
    }
    if (start < text.length) this.encodeBytes(encoder.encode(text.slice(start)), out);
    return Int32Array.from(out);
  }

  /** Token ids of raw bytes (no specials): the exact inverse of decodeBytes. */
  encodeBytes(bytes: Uint8Array, out: number[] = []): number[] {
    let pos = 0;
    while (pos < bytes.length) {
      let node: TrieNode | undefined = this.trie;
      let bestId = bytes[pos] as number;
      let bestLen = 1;
      for (let j = pos; j < bytes.length; j++) {
        node = node.next.get(bytes[j] as number);
        if (!node) break;
        if (node.id >= 0) {
          bestId = node.id;
          bestLen = j - pos + 1;
        }
      }
      out.push(bestId);
      pos += bestLen;
    }
    return out;
  }

  /** The bytes of token ids; unknown ids give the bytes of U+FFFD. Specials give their text. */
  decodeBytes(ids: ArrayLike<number>, opts: DecodeOptions = {}): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k] as number;
      if (opts.skipSpecial && this.specialIds.has(id)) continue;
      const bytes = Number.isInteger(id) && id >= 0 && id < this.idBytes.length ? (this.idBytes[id] as Uint8Array) : REPLACEMENT;
      parts.push(bytes);
      total += bytes.length;
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** Text of token ids; invalid UTF-8 becomes U+FFFD; never throws. */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    // A fresh decoder per call: TextDecoder keeps no state in non-stream mode, but ignoreBOM must be
    // set so that a leading U+FEFF survives the round trip.
    return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(this.decodeBytes(ids, opts));
  }

  /** The text of one id ("" for unused ids), for debugging and reports. */
  idToText(id: number): string {
    return this.decode([id]);
  }

  /** The tokenizer.json document. */
  toJSON(): ByteTokenizerJson {
    return {
      type: BYTE_TOKENIZER_TYPE,
      version: 1,
      vocab_size: this.vocabSize,
      bytes: { first_id: 0, count: 256, note: 'id b is the single byte b' },
      special_tokens: SPECIAL_ORDER.map((name) => ({ id: this.specials[name], content: SPECIAL_TOKEN_TEXT[name] })),
      multibyte_tokens: this.multibyteTokens.map((content, i) => ({ id: FIRST_MULTIBYTE_ID + i, content })),
      matching: 'special tokens first (when allowed), then greedy longest match over UTF-8 bytes',
      eos_ids: [...this.eosIds],
    };
  }

  /** Rebuilds a tokenizer from its tokenizer.json document; throws on an inconsistent document. */
  static fromJSON(doc: unknown): ByteTokenizer {
    const d = doc as Partial<ByteTokenizerJson> | null;
    if (!d || typeof d !== 'object' || d.type !== BYTE_TOKENIZER_TYPE) {
      throw new Error(`tokenizer.json: type must be "${BYTE_TOKENIZER_TYPE}"`);
    }
    if (d.version !== 1) throw new Error(`tokenizer.json: unsupported version ${String(d.version)}`);
    if (!Array.isArray(d.special_tokens) || !Array.isArray(d.multibyte_tokens) || typeof d.vocab_size !== 'number') {
      throw new Error('tokenizer.json: vocab_size, special_tokens and multibyte_tokens are required');
    }
    SPECIAL_ORDER.forEach((name, i) => {
      const s = d.special_tokens?.[i];
      if (!s || s.id !== 256 + i || s.content !== SPECIAL_TOKEN_TEXT[name]) {
        throw new Error(`tokenizer.json: special token ${256 + i} must be ${SPECIAL_TOKEN_TEXT[name]}`);
      }
    });
    const table = d.multibyte_tokens.map((t, i) => {
      if (!t || t.id !== FIRST_MULTIBYTE_ID + i || typeof t.content !== 'string') {
        throw new Error(`tokenizer.json: multibyte_tokens[${i}] must have id ${FIRST_MULTIBYTE_ID + i} and a string content`);
      }
      return t.content;
    });
    if (table.length > d.vocab_size - FIRST_MULTIBYTE_ID) {
      throw new Error('tokenizer.json: more multibyte tokens than vocab_size allows');
    }
    return new ByteTokenizer({ vocabSize: d.vocab_size, multibyteTokens: table });
  }

  /** The tokenizer_config.json document (Hugging Face style, informational). */
  configJSON(): Record<string, unknown> {
    const added: Record<string, unknown> = {};
    for (const [id, content] of this.specialIds) {
      added[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
    }
    return {
      tokenizer_class: 'TroupeByteTokenizer',
      tokenizer_type: BYTE_TOKENIZER_TYPE,
      add_bos_token: false,
      add_prefix_space: false,
      bos_token: null,
      eos_token: SPECIAL_TOKEN_TEXT.imEnd,
      pad_token: SPECIAL_TOKEN_TEXT.endOfText,
      errors: 'replace',
      added_tokens_decoder: added,
      chat_template: CHAT_TEMPLATE_JINJA,
    };
  }

  /** Writes tokenizer.json and tokenizer_config.json into `dir` (each via a temp file + rename). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeAtomic(join(dir, 'tokenizer.json'), JSON.stringify(this.toJSON(), null, 2) + '\n');
    writeAtomic(join(dir, 'tokenizer_config.json'), JSON.stringify(this.configJSON(), null, 2) + '\n');
  }

  private specialAt(text: string, i: number): number {
    for (const [id, content] of this.specialIds) {
      if (text.startsWith(content, i)) return id;
    }
    return -1;
  }
}

/** The tokenizer.json layout of a ByteTokenizer. */
export interface ByteTokenizerJson {
  type: typeof BYTE_TOKENIZER_TYPE;
  version: 1;
  vocab_size: number;
  bytes: { first_id: 0; count: 256; note: string };
  special_tokens: { id: number; content: string }[];
  multibyte_tokens: { id: number; content: string }[];
  matching: string;
  eos_ids: number[];
}

function checkTable(table: readonly string[]): void {
  const seen = new Set<string>();
  for (const t of table) {
    if (typeof t !== 'string' || encoder.encode(t).length < 2) {
      throw new Error(`ByteTokenizer: multi-byte token ${JSON.stringify(t)} must be a string of at least 2 bytes`);
    }
    if (seen.has(t)) throw new Error(`ByteTokenizer: duplicate multi-byte token ${JSON.stringify(t)}`);
    if (Object.values(SPECIAL_TOKEN_TEXT).some((s) => t.includes(s))) {
      throw new Error(`ByteTokenizer: multi-byte token ${JSON.stringify(t)} contains a special token`);
    }
    seen.add(t);
  }
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
