import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHAT_TEMPLATE_JINJA } from '../src/chat/template.js';
import { SeededRng } from '../src/tasks/rng.js';
import { ByteTokenizer } from '../src/tokenizer/byte-tokenizer.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { DEFAULT_MULTIBYTE_TOKENS } from '../src/tokenizer/multibyte-table.js';

const tok = new ByteTokenizer();
const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
const tableId = (s: string): number => {
  const i = DEFAULT_MULTIBYTE_TOKENS.indexOf(s);
  if (i < 0) throw new Error(`not in table: ${s}`);
  return 261 + i;
};

/** A random well-formed string mixing ASCII, table strings, specials, BMP and astral code points. */
function randomText(rng: SeededRng): string {
  const parts: string[] = [];
  const n = rng.int(0, 40);
  for (let i = 0; i < n; i++) {
    const kind = rng.int(0, 6);
    if (kind === 0) parts.push(String.fromCharCode(rng.int(0, 127)));
    else if (kind === 1) parts.push(rng.pick(DEFAULT_MULTIBYTE_TOKENS));
    else if (kind === 2) parts.push(rng.pick(['<|im_start|>', '<|im_end|>', '<think>', '</think>', '<|endoftext|>', '<|im', '<']));
    else if (kind === 3) parts.push(String.fromCodePoint(rng.int(0x80, 0xd7ff)));
    else if (kind === 4) parts.push(String.fromCodePoint(rng.int(0xe000, 0xffff)));
    else if (kind === 5) parts.push(String.fromCodePoint(rng.int(0x10000, 0x10ffff)));
    else parts.push(rng.pick(['\uFEFF', '\u0000', '\r\n', 'e\u0301', '👩‍👩‍👧', '\\boxed{41}']));
  }
  return parts.join('');
}

describe('ByteTokenizer ids', () => {
  it('has 320 ids: bytes, five specials, a full multi-byte table', () => {
    expect(tok.vocabSize).toBe(320);
    expect(tok.specials).toEqual({ endOfText: 256, imStart: 257, imEnd: 258, thinkStart: 259, thinkEnd: 260 });
    expect(tok.eosIds).toEqual([258, 256]);
    expect(tok.multibyteTokens.length).toBe(320 - 261);
    expect(new Set(tok.multibyteTokens).size).toBe(tok.multibyteTokens.length);
    for (const t of tok.multibyteTokens) expect(utf8(t).length).toBeGreaterThanOrEqual(2);
  });

  it('maps each byte id to that byte and each special id to its text', () => {
    for (let b = 0; b < 256; b++) expect([...tok.decodeBytes([b])]).toEqual([b]);
    expect(tok.decode([256, 257, 258, 259, 260])).toBe('<|endoftext|><|im_start|><|im_end|><think></think>');
    expect(tok.decode([257, 104, 258], { skipSpecial: true })).toBe('h');
  });

  it('encodes plain ASCII without table matches as its bytes', () => {
    expect([...tok.encode('hi')]).toEqual([104, 105]);
    expect([...tok.encode('')]).toEqual([]);
  });

  it('matches table strings greedily, longest first', () => {
    expect([...tok.encode('\\boxed{41}')]).toEqual([tableId('\\boxed{'), 52, 49, 125]);
    expect([...tok.encode('return x')]).toEqual([tableId('return x')]);
    expect([...tok.encode('return y')]).toEqual([tableId('return '), 121]);
    expect([...tok.encode('Incorrect')]).toEqual([tableId('Incorrect')]);
    expect([...tok.encode('Correct')]).toEqual([tableId('Correct')]);
  });

  it('treats special text as plain bytes unless allowSpecial', () => {
    expect([...tok.encode('<|im_end|>')]).toEqual(utf8('<|im_end|>'));
    expect([...tok.encode('<|im_end|>', { allowSpecial: true })]).toEqual([258]);
    expect([...tok.encode('a<think>\n\n</think>b<|im', { allowSpecial: true })]).toEqual([
      97,
      259,
      tableId('\n\n'),
      260,
      98,
      ...utf8('<|im'),
    ]);
  });

  it('round-trips arbitrary well-formed unicode, with and without specials', () => {
    const rng = new SeededRng(11);
    for (let i = 0; i < 2000; i++) {
      const s = randomText(rng);
      const plain = tok.encode(s);
      expect(tok.decode(plain)).toBe(s);
      expect(tok.decode(tok.encode(s, { allowSpecial: true }))).toBe(s);
      expect([...plain].filter((id) => !(id >= 0 && id < 320 && (id < 256 || id > 260)))).toEqual([]);
    }
  });

  it('round-trips arbitrary bytes through encodeBytes/decodeBytes', () => {
    const rng = new SeededRng(12);
    for (let i = 0; i < 500; i++) {
      const bytes = Uint8Array.from({ length: rng.int(0, 64) }, () => rng.int(0, 255));
      expect([...tok.decodeBytes(tok.encodeBytes(bytes))]).toEqual([...bytes]);
    }
  });

  it('decodes invalid UTF-8 and unknown ids to U+FFFD without throwing', () => {
    expect(tok.decode([0xff])).toBe('\uFFFD');
    expect(tok.decode([65, 0xff, 66])).toBe('A\uFFFDB');
    expect(tok.decode([0xe2, 0x82])).toBe('\uFFFD');
    expect(tok.decode([0xe2, 0x82, 0xac])).toBe('€');
    expect(tok.decode([65, 99999, -1, Number.NaN, 1.5, 66])).toBe('A\uFFFD\uFFFD\uFFFD\uFFFDB');
    const rng = new SeededRng(13);
    for (let i = 0; i < 500; i++) {
      const ids = Array.from({ length: rng.int(0, 50) }, () => rng.int(-5, 400));
      expect(typeof tok.decode(ids)).toBe('string');
    }
  });

  it('encodes a lone surrogate as U+FFFD (what TextEncoder does)', () => {
    expect(tok.decode(tok.encode('a\ud800b'))).toBe('a\uFFFDb');
  });

  it('keeps a prefix of the table for a smaller vocabulary', () => {
    const bytesOnly = new ByteTokenizer({ vocabSize: 261 });
    expect(bytesOnly.multibyteTokens.length).toBe(0);
    expect([...bytesOnly.encode('\\boxed{')]).toEqual(utf8('\\boxed{'));
    const small = new ByteTokenizer({ vocabSize: 265 });
    expect(small.multibyteTokens).toEqual(DEFAULT_MULTIBYTE_TOKENS.slice(0, 4));
    expect(() => new ByteTokenizer({ vocabSize: 200 })).toThrow(/vocabSize/);
  });
});

describe('ByteTokenizer save/load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'troupe-tok-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes tokenizer.json and tokenizer_config.json and loads back identically', () => {
    tok.save(dir);
    const doc = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    expect(doc.type).toBe('troupe-byte');
    expect(doc.vocab_size).toBe(320);
    expect(doc.special_tokens[2]).toEqual({ id: 258, content: '<|im_end|>' });
    expect(doc.multibyte_tokens[0]).toEqual({ id: 261, content: DEFAULT_MULTIBYTE_TOKENS[0] });
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(config.eos_token).toBe('<|im_end|>');
    expect(config.pad_token).toBe('<|endoftext|>');
    expect(config.chat_template).toBe(CHAT_TEMPLATE_JINJA);
    expect(config.added_tokens_decoder['257'].content).toBe('<|im_start|>');

    const loaded = loadTokenizer(dir);
    expect(loaded.vocabSize).toBe(320);
    const rng = new SeededRng(14);
    for (let i = 0; i < 200; i++) {
      const s = randomText(rng);
      expect([...loaded.encode(s, { allowSpecial: true })]).toEqual([...tok.encode(s, { allowSpecial: true })]);
    }
  });

  it('keeps a custom table through save/load', () => {
    const custom = new ByteTokenizer({ vocabSize: 300, multibyteTokens: ['ab', 'abc'] });
    const sub = join(dir, 'custom');
    custom.save(sub);
    const loaded = loadTokenizer(sub);
    expect(loaded.vocabSize).toBe(300);
    expect([...loaded.encode('abcab')]).toEqual([262, 261]);
  });

  it('rejects missing, foreign and inconsistent files with a message naming the problem', () => {
    expect(() => loadTokenizer(join(dir, 'nope'))).toThrow(/tokenizer\.json/);
    const foreign = join(dir, 'foreign');
    new ByteTokenizer().save(foreign);
    writeFileSync(join(foreign, 'tokenizer.json'), JSON.stringify({ type: 'bpe' }));
    expect(() => loadTokenizer(foreign)).toThrow(/unsupported type "bpe"/);
    const doc = tok.toJSON();
    doc.multibyte_tokens[3] = { id: 999, content: 'zz' };
    expect(() => ByteTokenizer.fromJSON(doc)).toThrow(/multibyte_tokens\[3\]/);
    expect(() => new ByteTokenizer({ multibyteTokens: ['a'] })).toThrow(/at least 2 bytes/);
    expect(() => new ByteTokenizer({ multibyteTokens: ['x<|im_end|>'] })).toThrow(/special/);
  });
});
