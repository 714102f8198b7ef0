// The rollout record as Arrow record batches: the schema, one batch per policy with role-contiguous
// rows, and the zero-copy contract: the TrainBatch the native train step reads IS the Arrow memory.
// References are built by hand from the input rows (plain concatenation), never by the code under test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RecordBatch } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildRolloutTable,
  gatherRows,
  readArrowFile,
  readRolloutRow,
  roleRanges,
  rolloutFilePath,
  ROLLOUT_SCHEMA,
  sliceRows,
  trainBatchView,
  writeRolloutFile,
} from '../src/data/index.js';
import type { RolloutRow } from '../src/workflows/executor.js';

function row(i: number, policy: string, role: string, promptLen: number, complLen: number): RolloutRow {
  const prompt = Int32Array.from({ length: promptLen }, (_, j) => 1000 * i + j);
  const completion = Int32Array.from({ length: complLen }, (_, j) => 1000 * i + 500 + j);
  return {
    episode: Math.floor(i / 3),
    group: `p${i % 2}`,
    role,
    copy: i % 3,
    turn: i % 2,
    policy,
    callId: `s1.t0.e${i}.c0`,
    call: i % 4,
    promptTokens: prompt,
    completionTokens: completion,
    logprobs: Float32Array.from({ length: complLen }, (_, j) => -0.25 * (j + 1) - i / 64),
    finish: i % 2 ? 'stop' : 'length',
    text: `text ${i} ✓`,
    parse: i % 3 ? 'ok' : 'none',
    parseNote: i === 4 ? 'fallback used' : '',
  };
}

// Roles and policies interleaved in input order, as an isolated-policy Voting step produces them.
const spec: [string, string, number, number][] = [
  ['gen', 'generator', 3, 4],
  ['agg', 'aggregator', 5, 2],
  ['gen', 'generator', 2, 3],
  ['gen', 'critic', 4, 1],
  ['agg', 'aggregator', 6, 5],
  ['gen', 'generator', 1, 0],
  ['gen', 'critic', 2, 2],
];
const rows = spec.map(([p, r, pl, cl], i) => row(i, p, r, pl, cl));
const rewards = rows.map((_, i) => (i % 2 ? 1 : 0));
const advantages = rows.map((_, i) => i / 10 - 0.3);

// Expected batch order: policy by first appearance, then role by first appearance, then input order.
const expectedOrder = new Map([
  ['gen', [0, 2, 5, 3, 6]],
  ['agg', [1, 4]],
]);

function concat<T extends Int32Array | Float32Array | Uint8Array>(make: (n: number) => T, parts: ArrayLike<number>[]): T {
  const out = make(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function reference(indices: number[]) {
  const rs = indices.map((i) => rows[i]!);
  const cu = [0];
  for (const r of rs) cu.push(cu[cu.length - 1]! + r.promptTokens.length + r.completionTokens.length);
  return {
    cuSeqlens: cu,
    tokens: Array.from(concat((n) => new Int32Array(n), rs.flatMap((r) => [r.promptTokens as Int32Array, r.completionTokens as Int32Array]))),
    lossMask: Array.from(concat((n) => new Uint8Array(n), rs.flatMap((r) => [new Uint8Array(r.promptTokens.length), new Uint8Array(r.completionTokens.length).fill(1)]))),
    oldLogp: Array.from(concat((n) => new Float32Array(n), rs.flatMap((r) => [new Float32Array(r.promptTokens.length), r.logprobs as Float32Array]))),
    advantages: Array.from(Float32Array.from(indices.map((i) => advantages[i]!))),
  };
}

function listValues(batch: RecordBatch, name: string): ArrayBufferView {
  return batch.getChild(name)!.data[0]!.children[0]!.values as ArrayBufferView;
}

const built = buildRolloutTable({ rows, rewards, advantages });

describe('rollout record schema', () => {
  it('has the DESIGN.md columns with list columns of the right element types', () => {
    const types = Object.fromEntries(ROLLOUT_SCHEMA.fields.map((f) => [f.name, String(f.type)]));
    expect(types).toMatchObject({
      episode: 'Int32',
      group: 'Utf8',
      role: 'Utf8',
      copy: 'Int32',
      turn: 'Int32',
      policy: 'Utf8',
      callId: 'Utf8',
      tokens: 'List<Int32>',
      promptLength: 'Int32',
      logprobs: 'List<Float32>',
      lossMask: 'List<Uint8>',
      finish: 'Utf8',
      reward: 'Float32',
      advantage: 'Float32',
    });
    expect(built.table.schema.fields.map((f) => f.name)).toEqual(ROLLOUT_SCHEMA.fields.map((f) => f.name));
  });

  it('builds one batch per policy, rows grouped by role, in input order within a role', () => {
    expect([...built.batches.keys()]).toEqual(['gen', 'agg']);
    for (const [policy, order] of expectedOrder) {
      expect(Array.from(built.sourceRows.get(policy)!)).toEqual(order);
      expect(built.batches.get(policy)!.numRows).toBe(order.length);
    }
    expect(built.table.numRows).toBe(rows.length);
    expect(built.table.batches.length).toBe(2);
  });

  it('stores every field of every row (full sequence = prompt + completion, logprobs 0 on the prompt)', () => {
    for (const [policy, order] of expectedOrder) {
      const batch = built.batches.get(policy)!;
      order.forEach((src, k) => {
        const r = rows[src]!;
        const got = readRolloutRow(batch, k);
        expect(got).toMatchObject({
          episode: r.episode, group: r.group, role: r.role, copy: r.copy, turn: r.turn, policy: r.policy,
          callId: r.callId, call: r.call, finish: r.finish, text: r.text, parse: r.parse, parseNote: r.parseNote,
          reward: rewards[src],
        });
        expect(got.advantage).toBeCloseTo(advantages[src]!, 6);
        expect(Array.from(got.promptTokens)).toEqual(Array.from(r.promptTokens));
        expect(Array.from(got.completionTokens)).toEqual(Array.from(r.completionTokens));
        expect(Array.from(got.logprobs)).toEqual(Array.from(r.logprobs));
        expect(batch.getChild('promptLength')!.get(k)).toBe(r.promptTokens.length);
        const lp = batch.getChild('logprobs')!.get(k)!.toArray() as Float32Array;
        expect(Array.from(lp.subarray(0, r.promptTokens.length)).every((x) => x === 0)).toBe(true);
      });
    }
  });

  it('leaves out rows with keep = 0 and rejects misaligned inputs', () => {
    const keep = rows.map((_, i) => (i === 2 || i === 4 ? 0 : 1));
    const t = buildRolloutTable({ rows, keep, advantages });
    expect(Array.from(t.sourceRows.get('gen')!)).toEqual([0, 5, 3, 6]);
    expect(Array.from(t.sourceRows.get('agg')!)).toEqual([1]);
    expect(() => buildRolloutTable({ rows, rewards: [1, 2] })).toThrow(/rewards has 2 entries for 7 rows/);
    const bad = { ...rows[0]!, logprobs: new Float32Array(1) };
    expect(() => buildRolloutTable({ rows: [bad] })).toThrow(/1 logprobs for 4 completion tokens/);
    expect(() => buildRolloutTable({ rows, policies: ['gen'] })).toThrow(/policy 'agg'/);
    const empty = buildRolloutTable({ rows: [] });
    expect(empty.batches.size).toBe(0);
    expect(empty.table.numRows).toBe(0);
    expect(empty.table.schema.fields.length).toBe(ROLLOUT_SCHEMA.fields.length);
  });
});

describe('zero-copy training views', () => {
  it('trainBatchView equals the hand-packed batch of the policy rows', () => {
    for (const [policy, order] of expectedOrder) {
      const view = trainBatchView(built.batches.get(policy)!);
      const ref = reference(order);
      expect(Array.from(view.cuSeqlens)).toEqual(ref.cuSeqlens);
      expect(Array.from(view.tokens)).toEqual(ref.tokens);
      expect(Array.from(view.lossMask)).toEqual(ref.lossMask);
      expect(Array.from(view.oldLogp!)).toEqual(ref.oldLogp);
      expect(Array.from(view.advantages!)).toEqual(ref.advantages);
    }
  });

  it('shares the ArrayBuffers of the Arrow columns (same buffer, same offset) and sees writes both ways', () => {
    const batch = built.batches.get('gen')!;
    const view = trainBatchView(batch);
    const tokensData = batch.getChild('tokens')!.data[0]!;
    const pairs: [ArrayBufferView, ArrayBufferView][] = [
      [view.tokens, listValues(batch, 'tokens')],
      [view.oldLogp!, listValues(batch, 'logprobs')],
      [view.lossMask, listValues(batch, 'lossMask')],
      [view.cuSeqlens, tokensData.valueOffsets],
      [view.advantages!, batch.getChild('advantage')!.data[0]!.values],
    ];
    for (const [a, b] of pairs) {
      expect(a.buffer).toBe(b.buffer);
      expect(a.byteOffset).toBe(b.byteOffset);
      expect(a.byteLength).toBe(b.byteLength);
      expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    }
    // The three list columns share one offsets array: cu_seqlens exists once.
    expect(batch.getChild('logprobs')!.data[0]!.valueOffsets).toBe(tokensData.valueOffsets);

    const savedTok = view.tokens[3]!;
    const savedAdv = view.advantages![1]!;
    view.tokens[3] = 4242; // row 0, position 3
    view.advantages![1] = 7.5;
    expect((batch.getChild('tokens')!.get(0)!.toArray() as Int32Array)[3]).toBe(4242);
    expect(batch.getChild('advantage')!.get(1)).toBe(7.5);
    (listValues(batch, 'logprobs') as Float32Array)[5] = -9;
    expect(view.oldLogp![5]).toBe(-9);
    view.tokens[3] = savedTok;
    view.advantages![1] = savedAdv;
    (listValues(batch, 'logprobs') as Float32Array)[5] = reference(expectedOrder.get('gen')!).oldLogp[5]!;
  });

  it('role ranges are contiguous and slicing them gives views with cu_seqlens rebased to 0', () => {
    const batch = built.batches.get('gen')!;
    const view = trainBatchView(batch);
    const ranges = roleRanges(batch);
    expect([...ranges.entries()]).toEqual([
      ['generator', { start: 0, end: 3 }],
      ['critic', { start: 3, end: 5 }],
    ]);
    for (const [role, { start, end }] of ranges) {
      const piece = sliceRows(view, start, end);
      const order = expectedOrder.get('gen')!.slice(start, end);
      expect(order.every((i) => rows[i]!.role === role)).toBe(true);
      const ref = reference(order);
      expect(Array.from(piece.cuSeqlens)).toEqual(ref.cuSeqlens);
      expect(Array.from(piece.tokens)).toEqual(ref.tokens);
      expect(Array.from(piece.lossMask)).toEqual(ref.lossMask);
      expect(Array.from(piece.oldLogp!)).toEqual(ref.oldLogp);
      expect(Array.from(piece.advantages!)).toEqual(ref.advantages);
      // Per-token arrays are views at the piece's offset; no token was copied.
      const first = view.cuSeqlens[start]!;
      expect(piece.tokens.buffer).toBe(view.tokens.buffer);
      expect(piece.tokens.byteOffset).toBe(view.tokens.byteOffset + 4 * first);
      expect(piece.oldLogp!.buffer).toBe(view.oldLogp!.buffer);
      expect(piece.lossMask.byteOffset).toBe(view.lossMask.byteOffset + first);
      expect(piece.advantages!.buffer).toBe(view.advantages!.buffer);
    }
    // A range starting at row 0 keeps even cu_seqlens as a view.
    expect(sliceRows(view, 0, 2).cuSeqlens.buffer).toBe(view.cuSeqlens.buffer);
    expect(() => sliceRows(view, 2, 9)).toThrow(/not a row range of a batch of 5 rows/);
  });

  it('gatherRows packs arbitrary rows (a copy) and contiguous ones as a view', () => {
    const view = trainBatchView(built.batches.get('gen')!);
    const order = expectedOrder.get('gen')!;
    const g = gatherRows(view, [4, 0, 2]);
    const ref = reference([order[4]!, order[0]!, order[2]!]);
    expect(Array.from(g.cuSeqlens)).toEqual(ref.cuSeqlens);
    expect(Array.from(g.tokens)).toEqual(ref.tokens);
    expect(Array.from(g.oldLogp!)).toEqual(ref.oldLogp);
    expect(Array.from(g.lossMask)).toEqual(ref.lossMask);
    expect(Array.from(g.advantages!)).toEqual(ref.advantages);
    expect(gatherRows(view, [1, 2]).tokens.buffer).toBe(view.tokens.buffer);
    expect(() => gatherRows(view, [7])).toThrow(/rows\[0\] = 7/);
  });
});

describe('rollout IPC files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'troupe-rollouts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips through rollouts/step-NNNNNN.arrow with per-policy batches intact', () => {
    const file = writeRolloutFile(dir, 12, built);
    expect(file).toBe(rolloutFilePath(dir, 12));
    expect(path.basename(file)).toBe('step-000012.arrow');
    const t = readArrowFile(file);
    expect(t.numRows).toBe(rows.length);
    expect(t.batches.length).toBe(2);
    t.batches.forEach((b, bi) => {
      const policy = ['gen', 'agg'][bi]!;
      const ref = reference(expectedOrder.get(policy)!);
      const view = trainBatchView(b);
      expect(Array.from(view.cuSeqlens)).toEqual(ref.cuSeqlens);
      expect(Array.from(view.tokens)).toEqual(ref.tokens);
      expect(Array.from(view.oldLogp!)).toEqual(ref.oldLogp);
      expect(readRolloutRow(b, 0).text).toBe(rows[expectedOrder.get(policy)![0]!]!.text);
    });
  });
});
