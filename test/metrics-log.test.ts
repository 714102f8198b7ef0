// The metrics log: one Arrow stream batch per step, read back exactly; --resume truncation; and a
// run killed mid-write (simulated by cutting the file at every byte) leaves its complete rows
// readable and appendable.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Field, Float64, Int32, Schema, Utf8 } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { MetricsLog } from '../src/data/ipc.js';

const dir = mkdtempSync(path.join(tmpdir(), 'troupe-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => path.join(dir, `m${n++}`, 'metrics.arrow');

function rowsOf(file: string): Record<string, unknown>[] {
  return MetricsLog.read(file)
    .toArray()
    .map((r) => ({ ...r.toJSON() }));
}

const stepRow = (s: number) => ({ step: s, loss: 1 / (s + 1), accuracy: s % 2 ? 0.5 + s / 100 : null, note: `step ${s}` });

describe('MetricsLog', () => {
  it('appends rows and reads them back with the schema fixed by the first row', () => {
    const file = fresh();
    const log = MetricsLog.open(file);
    expect(log.schema).toBeNull();
    for (let s = 0; s < 5; s++) log.append(stepRow(s));
    expect(log.schema!.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual(['step:Float64', 'loss:Float64', 'accuracy:Float64', 'note:Utf8']);
    expect(rowsOf(file)).toEqual([0, 1, 2, 3, 4].map(stepRow));
    expect(log.readAll().numRows).toBe(5);
    log.close();
    expect(() => log.append(stepRow(5))).toThrow(/append after close/);
  });

  it('fills missing columns with null and drops columns the schema lacks', () => {
    const file = fresh();
    const log = MetricsLog.open(file);
    log.append({ step: 0, a: 1 });
    log.append({ step: 1 });
    log.append({ step: 2, a: 3, late: 9 });
    log.close();
    expect(rowsOf(file)).toEqual([
      { step: 0, a: 1 },
      { step: 1, a: null },
      { step: 2, a: 3 },
    ]);
    expect([...log.droppedColumns]).toEqual(['late']);
  });

  it('uses a schema given at open (readable before any row) and rejects wrong value types', () => {
    const file = fresh();
    const schema = new Schema([new Field('step', new Int32(), true), new Field('x', new Float64(), true), new Field('tag', new Utf8(), true)]);
    const log = MetricsLog.open(file, { schema });
    expect(MetricsLog.read(file).schema.fields.map((f) => f.name)).toEqual(['step', 'x', 'tag']);
    expect(MetricsLog.read(file).numRows).toBe(0);
    log.append({ step: 3, x: 0.25 });
    expect(() => log.append({ step: 4, x: 'nope' })).toThrow(/column 'x' is Float64 but the row has string/);
    log.close();
    expect(rowsOf(file)).toEqual([{ step: 3, x: 0.25, tag: null }]);
  });

  it('truncateAfter keeps rows with step <= N, atomically, and appending continues after them', () => {
    const file = fresh();
    const log = MetricsLog.open(file);
    for (let s = 0; s < 6; s++) log.append(stepRow(s));
    expect(log.truncateAfter(3)).toBe(4);
    log.append(stepRow(4));
    log.close();
    expect(rowsOf(file)).toEqual([0, 1, 2, 3, 4].map(stepRow));
    expect(MetricsLog.truncateAfter(file, -1)).toBe(0);
    expect(MetricsLog.read(file).numRows).toBe(0);
    expect(MetricsLog.read(file).schema.fields.length).toBe(4);
    expect(MetricsLog.truncateAfter(path.join(dir, 'missing.arrow'), 3)).toBe(0);
    expect(() => MetricsLog.truncateAfter(file, 3, 'epoch')).toThrow(/no 'epoch' column/);
  });

  it('a file cut at any byte (a killed writer) reads as its complete rows', () => {
    const file = fresh();
    const log = MetricsLog.open(file);
    // File size after each append: the independent record of where each row ends.
    const ends: number[] = [];
    for (let s = 0; s < 4; s++) {
      log.append(stepRow(s));
      ends.push(statSync(file).size);
    }
    log.close();
    const bytes = readFileSync(file);
    const cut = path.join(dir, 'cut.arrow');
    for (let len = 0; len <= bytes.length; len++) {
      // Every byte through the schema and first row and near each row end (where off-by-ones
      // live), every 7th byte elsewhere.
      const nearBoundary = len <= ends[0]! || ends.some((e) => Math.abs(len - e) <= 16);
      if (!nearBoundary && len % 7 !== 0) continue;
      writeFileSync(cut, bytes.subarray(0, len));
      const complete = ends.filter((e) => e <= len).length;
      expect(MetricsLog.read(cut).numRows, `cut at ${len}`).toBe(complete);
      if (complete > 0 && ends.includes(len)) expect(rowsOf(cut)).toEqual([0, 1, 2, 3].slice(0, complete).map(stepRow));
    }
  });

  it('reopening a torn log for appending cuts the torn row and continues a valid stream', () => {
    const file = fresh();
    const log = MetricsLog.open(file);
    for (let s = 0; s < 3; s++) log.append(stepRow(s));
    log.close();
    const full = statSync(file).size;
    const torn = path.join(path.dirname(file), 'torn.arrow');
    copyFileSync(file, torn);
    writeFileSync(torn, readFileSync(file).subarray(0, full - 17));
    const again = MetricsLog.open(torn, { append: true });
    again.append(stepRow(7));
    again.close();
    expect(rowsOf(torn)).toEqual([stepRow(0), stepRow(1), stepRow(7)]);
    // Without append, open starts an empty log.
    MetricsLog.open(torn).close();
    expect(statSync(torn).size).toBe(0);
    expect(MetricsLog.read(torn).numRows).toBe(0);
  });

  it('refuses to append rows of another schema to an existing log', () => {
    const file = fresh();
    const log = MetricsLog.open(file);
    log.append({ step: 0, a: 1 });
    log.close();
    const other = new Schema([new Field('step', new Float64(), true)]);
    expect(() => MetricsLog.open(file, { append: true, schema: other })).toThrow(/has columns \[step, a\]/);
  });
});
