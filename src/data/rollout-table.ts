// The rollout record (DESIGN.md) as Arrow record batches, one per policy, laid out so that a
// policy's training batch IS the Arrow memory: the `tokens` list column's offsets are cu_seqlens
// and its values the packed tokens (prompt + completion), `logprobs` values are old_logp,
// `lossMask` values the loss mask, `advantage` the per-sequence advantages. The three list
// columns share one offsets array. Every buffer is a SharedArrayBuffer-backed typed array filled
// once here: copying the sampler's outputs in is the only per-token copy on the way to training.
import {
  Field,
  Float32,
  Int32,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Uint8,
  Utf8,
  vectorFromArray,
  type Data,
  type DataType,
} from 'apache-arrow';
import { allocFloat32, allocInt32, allocUint8 } from '../native/index.js';
import type { RolloutRow } from '../workflows/executor.js';

/** Schema version recorded in the schema metadata (`troupe.schema`). */
export const ROLLOUT_SCHEMA_VERSION = 'troupe.rollout/1';

const listOf = (t: DataType): List => new List(new Field('item', t, false));

/** The rollout record: one row per role call; per-token lists are aligned with `tokens`. */
export const ROLLOUT_SCHEMA = new Schema(
  [
    new Field('episode', new Int32(), false),
    new Field('group', new Utf8(), false),
    new Field('role', new Utf8(), false),
    new Field('copy', new Int32(), false),
    new Field('turn', new Int32(), false),
    new Field('policy', new Utf8(), false),
    new Field('callId', new Utf8(), false),
    new Field('call', new Int32(), false),
    // Full sequence: prompt then completion (completion = tokens[promptLength:]).
    new Field('tokens', listOf(new Int32()), false),
    new Field('promptLength', new Int32(), false),
    // Sampling log-prob of each token; 0 on prompt positions.
    new Field('logprobs', listOf(new Float32()), false),
    // 1 on completion tokens (the trained ones), 0 on the prompt.
    new Field('lossMask', listOf(new Uint8()), false),
    new Field('finish', new Utf8(), false),
    new Field('reward', new Float32(), false),
    new Field('advantage', new Float32(), false),
    new Field('text', new Utf8(), false),
    new Field('parse', new Utf8(), false),
    new Field('parseNote', new Utf8(), false),
  ],
  new Map([['troupe.schema', ROLLOUT_SCHEMA_VERSION]]),
);

/** Inputs of buildRolloutTable: executor rows plus per-row rewards and advantages. */
export interface RolloutTableInput {
  rows: readonly RolloutRow[];
  /** Per-row reward (default 0). */
  rewards?: ArrayLike<number>;
  /** Per-row advantage (default 0; the column can also be written later through the view). */
  advantages?: ArrayLike<number>;
  /** Rows with keep[i] = 0 are left out (e.g. groups dropped by the equal-reward filter). */
  keep?: ArrayLike<number>;
  /** Batch order; default: policies in order of first appearance. */
  policies?: readonly string[];
}

/** One record batch per policy, rows sorted by (role, input order) within each. */
export interface RolloutTable {
  /** Batches by policy, in policy order; a policy without rows has no batch. */
  batches: Map<string, RecordBatch>;
  /** For each policy, the input row index of each batch row. */
  sourceRows: Map<string, Int32Array>;
  /** All batches as one Table (for IPC files and analysis). */
  table: Table;
}

function checkAligned(name: string, a: ArrayLike<number> | undefined, n: number): void {
  if (a !== undefined && a.length !== n) throw new RangeError(`buildRolloutTable: ${name} has ${a.length} entries for ${n} rows`);
}

function firstSeenOrder(values: Iterable<string>): Map<string, number> {
  const order = new Map<string, number>();
  for (const v of values) if (!order.has(v)) order.set(v, order.size);
  return order;
}

function utf8(values: string[]): Data<Utf8> {
  return vectorFromArray(values, new Utf8()).data[0]!;
}

function int32(values: ArrayLike<number>): Data<Int32> {
  const a = allocInt32(values.length);
  a.set(values);
  return makeData({ type: new Int32(), length: a.length, nullCount: 0, data: a });
}

function buildPolicyBatch(input: RolloutTableInput, indices: number[]): RecordBatch {
  const rows = indices.map((i) => input.rows[i]!);
  const n = rows.length;
  const offsets = allocInt32(n + 1);
  rows.forEach((r, k) => {
    offsets[k + 1] = offsets[k]! + r.promptTokens.length + r.completionTokens.length;
  });
  const total = offsets[n]!;
  const tokens = allocInt32(total);
  const logprobs = allocFloat32(total);
  const lossMask = allocUint8(total);
  const reward = allocFloat32(n);
  const advantage = allocFloat32(n);
  rows.forEach((r, k) => {
    const start = offsets[k]!;
    const p = r.promptTokens.length;
    const c = r.completionTokens.length;
    if (r.logprobs.length !== c) {
      throw new RangeError(`buildRolloutTable: row ${indices[k]} (${r.callId}) has ${r.logprobs.length} logprobs for ${c} completion tokens`);
    }
    // The one per-token copy: sampler outputs into the batch's packed arrays.
    tokens.set(r.promptTokens, start);
    tokens.set(r.completionTokens, start + p);
    logprobs.set(r.logprobs, start + p);
    lossMask.fill(1, start + p, start + p + c);
    reward[k] = input.rewards?.[indices[k]!] ?? 0;
    advantage[k] = input.advantages?.[indices[k]!] ?? 0;
  });
  const list = <T extends Int32 | Float32 | Uint8>(type: T, values: T['TArray']): Data =>
    makeData({
      type: listOf(type),
      length: n,
      nullCount: 0,
      valueOffsets: offsets,
      child: makeData({ type, length: total, nullCount: 0, data: values } as never),
    });
  const float32 = (a: Float32Array): Data => makeData({ type: new Float32(), length: n, nullCount: 0, data: a });
  const children: Data[] = [
    int32(rows.map((r) => r.episode)),
    utf8(rows.map((r) => r.group)),
    utf8(rows.map((r) => r.role)),
    int32(rows.map((r) => r.copy)),
    int32(rows.map((r) => r.turn)),
    utf8(rows.map((r) => r.policy)),
    utf8(rows.map((r) => r.callId)),
    int32(rows.map((r) => r.call)),
    list(new Int32(), tokens),
    int32(rows.map((r) => r.promptTokens.length)),
    list(new Float32(), logprobs),
    list(new Uint8(), lossMask),
    utf8(rows.map((r) => r.finish)),
    float32(reward),
    float32(advantage),
    utf8(rows.map((r) => r.text)),
    utf8(rows.map((r) => r.parse)),
    utf8(rows.map((r) => r.parseNote)),
  ];
  const struct = makeData({ type: new Struct(ROLLOUT_SCHEMA.fields), length: n, nullCount: 0, children });
  return new RecordBatch(ROLLOUT_SCHEMA, struct);
}

/** Builds one record batch per policy; within a policy, rows of one role are contiguous. */
export function buildRolloutTable(input: RolloutTableInput): RolloutTable {
  const n = input.rows.length;
  checkAligned('rewards', input.rewards, n);
  checkAligned('advantages', input.advantages, n);
  checkAligned('keep', input.keep, n);
  const policyOrder = firstSeenOrder(input.policies ?? input.rows.map((r) => r.policy));
  const roleOrder = firstSeenOrder(input.rows.map((r) => r.role));
  const byPolicy = new Map<string, number[]>([...policyOrder.keys()].map((p) => [p, []]));
  input.rows.forEach((r, i) => {
    if (input.keep && !input.keep[i]) return;
    const list = byPolicy.get(r.policy);
    if (!list) throw new Error(`buildRolloutTable: row ${i} has policy '${r.policy}', not in options.policies`);
    list.push(i);
  });
  const batches = new Map<string, RecordBatch>();
  const sourceRows = new Map<string, Int32Array>();
  for (const [policy, indices] of byPolicy) {
    if (indices.length === 0) continue;
    // Role-major, input order within a role: per-role training pieces become row ranges.
    indices.sort((a, b) => roleOrder.get(input.rows[a]!.role)! - roleOrder.get(input.rows[b]!.role)! || a - b);
    batches.set(policy, buildPolicyBatch(input, indices));
    sourceRows.set(policy, Int32Array.from(indices));
  }
  // An empty RecordBatch keeps the schema when no row survived (Table([]) would have none).
  const all = batches.size ? [...batches.values()] : [new RecordBatch(ROLLOUT_SCHEMA, undefined)];
  return { batches, sourceRows, table: new Table(all) };
}

/** A row of a rollout record batch read back; token arrays are views into the batch. */
export interface RolloutRecord
  extends Omit<RolloutRow, 'promptTokens' | 'completionTokens' | 'logprobs' | 'finish' | 'parse'> {
  /** Prompt + completion. */
  tokens: Int32Array;
  promptTokens: Int32Array;
  completionTokens: Int32Array;
  /** Sampling log-probs of the completion tokens. */
  logprobs: Float32Array;
  finish: string;
  parse: string;
  reward: number;
  advantage: number;
}

/** Reads row `i` of a rollout record batch (analysis, tests). */
export function readRolloutRow(batch: RecordBatch, i: number): RolloutRecord {
  if (!Number.isInteger(i) || i < 0 || i >= batch.numRows) throw new RangeError(`readRolloutRow: row ${i} of a batch of ${batch.numRows} rows`);
  const get = <T>(name: string): T => batch.getChild(name)!.get(i) as T;
  const tokens = get<{ toArray(): Int32Array }>('tokens').toArray();
  const logp = get<{ toArray(): Float32Array }>('logprobs').toArray();
  const p = get<number>('promptLength');
  return {
    episode: get('episode'),
    group: get('group'),
    role: get('role'),
    copy: get('copy'),
    turn: get('turn'),
    policy: get('policy'),
    callId: get('callId'),
    call: get('call'),
    tokens,
    promptTokens: tokens.subarray(0, p),
    completionTokens: tokens.subarray(p),
    logprobs: logp.subarray(p),
    finish: get('finish'),
    reward: get('reward'),
    advantage: get('advantage'),
    text: get('text'),
    parse: get('parse'),
    parseNote: get('parseNote'),
  };
}
