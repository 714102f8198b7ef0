// Training batches as views of the rollout record batches: no token is copied between the Arrow
// table and the native train step. Row ranges of a view are views too; only the small cu_seqlens
// array is rebased (O(rows)) when a range does not start at row 0, because the native core wants
// cu_seqlens[0] = 0.
import type { Data, RecordBatch } from 'apache-arrow';
import { allocFloat32, allocInt32, allocUint8, type TrainBatch } from '../native/index.js';

/** A half-open row range [start, end). */
export interface RowRange {
  start: number;
  end: number;
}

function column(batch: RecordBatch, name: string): Data {
  const v = batch.getChild(name);
  if (!v || v.data.length !== 1) throw new Error(`trainBatchView: the batch has no single-chunk '${name}' column (not a rollout record batch?)`);
  return v.data[0]!;
}

function listColumn<A extends Int32Array | Float32Array | Uint8Array>(
  batch: RecordBatch,
  name: string,
  ctor: { new (n: number): A; name: string },
): { offsets: Int32Array; values: A } {
  const d = column(batch, name);
  const values: unknown = d.children[0]?.values;
  if (!(d.valueOffsets instanceof Int32Array) || !(values instanceof ctor)) {
    throw new Error(`trainBatchView: column '${name}' is not a List<${ctor.name}> column`);
  }
  // IPC readers hand back buffers padded to 8 bytes: only the first length + 1 offsets are real.
  return { offsets: d.valueOffsets.subarray(0, d.length + 1), values };
}

function sameOffsets(a: Int32Array, b: Int32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function rebased(cu: Int32Array): Int32Array {
  const out = allocInt32(cu.length);
  for (let i = 0; i < cu.length; i++) out[i] = cu[i]! - cu[0]!;
  return out;
}

/** The native TrainBatch of a policy's record batch, sharing memory with the Arrow buffers. */
export function trainBatchView(batch: RecordBatch): TrainBatch {
  const tokens = listColumn(batch, 'tokens', Int32Array);
  const logprobs = listColumn(batch, 'logprobs', Float32Array);
  const mask = listColumn(batch, 'lossMask', Uint8Array);
  if (!sameOffsets(tokens.offsets, logprobs.offsets) || !sameOffsets(tokens.offsets, mask.offsets)) {
    throw new Error("trainBatchView: 'logprobs' and 'lossMask' are not aligned with 'tokens'");
  }
  const advantages: unknown = column(batch, 'advantage').values;
  if (!(advantages instanceof Float32Array)) throw new Error("trainBatchView: column 'advantage' is not Float32");
  const off = tokens.offsets;
  const lo = off[0]!;
  const hi = off[off.length - 1]!;
  return {
    // A batch sliced by Arrow starts mid-buffer: only then is cu_seqlens rebased (a small copy).
    cuSeqlens: lo === 0 ? off : rebased(off),
    tokens: tokens.values.subarray(lo, hi),
    oldLogp: logprobs.values.subarray(lo, hi),
    lossMask: mask.values.subarray(lo, hi),
    advantages: advantages.subarray(0, batch.numRows),
  };
}

function checkRange(view: TrainBatch, start: number, end: number): void {
  const rows = view.cuSeqlens.length - 1;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > rows) {
    throw new RangeError(`sliceRows: [${start}, ${end}) is not a row range of a batch of ${rows} rows`);
  }
}

/** Rows [start, end) of a TrainBatch as a view (cu_seqlens rebased when start > 0). */
export function sliceRows(view: TrainBatch, start: number, end: number): TrainBatch {
  checkRange(view, start, end);
  const cu = view.cuSeqlens;
  const a = cu[start]!;
  const b = cu[end]!;
  const sub = cu.subarray(start, end + 1);
  return {
    cuSeqlens: a === 0 ? sub : rebased(sub),
    tokens: view.tokens.subarray(a, b),
    lossMask: view.lossMask.subarray(a, b),
    oldLogp: view.oldLogp?.subarray(a, b),
    refLogp: view.refLogp?.subarray(a, b),
    advantages: view.advantages?.subarray(start, end),
  };
}

/** Arbitrary rows of a TrainBatch: a view when they are one ascending run, else a packed copy. */
export function gatherRows(view: TrainBatch, rows: readonly number[]): TrainBatch {
  const n = view.cuSeqlens.length - 1;
  rows.forEach((r, i) => {
    if (!Number.isInteger(r) || r < 0 || r >= n) throw new RangeError(`gatherRows: rows[${i}] = ${r} is not a row of a batch of ${n} rows`);
  });
  if (rows.every((r, i) => r === rows[0]! + i)) return sliceRows(view, rows[0] ?? 0, (rows[0] ?? 0) + rows.length);
  const cu = allocInt32(rows.length + 1);
  rows.forEach((r, i) => {
    cu[i + 1] = cu[i]! + view.cuSeqlens[r + 1]! - view.cuSeqlens[r]!;
  });
  const T = cu[rows.length]!;
  const tokens = allocInt32(T);
  const lossMask = allocUint8(T);
  const oldLogp = view.oldLogp ? allocFloat32(T) : undefined;
  const refLogp = view.refLogp ? allocFloat32(T) : undefined;
  const advantages = view.advantages ? allocFloat32(rows.length) : undefined;
  rows.forEach((r, i) => {
    const a = view.cuSeqlens[r]!;
    const b = view.cuSeqlens[r + 1]!;
    tokens.set(view.tokens.subarray(a, b), cu[i]!);
    lossMask.set(view.lossMask.subarray(a, b), cu[i]!);
    oldLogp?.set(view.oldLogp!.subarray(a, b), cu[i]!);
    refLogp?.set(view.refLogp!.subarray(a, b), cu[i]!);
    if (advantages) advantages[i] = view.advantages![r]!;
  });
  return { cuSeqlens: cu, tokens, lossMask, oldLogp, refLogp, advantages };
}

/** Row range of each role in a rollout record batch (roles are contiguous by construction). */
export function roleRanges(batch: RecordBatch): Map<string, RowRange> {
  const roles = batch.getChild('role');
  if (!roles) throw new Error("roleRanges: the batch has no 'role' column");
  const out = new Map<string, RowRange>();
  let prev: string | null = null;
  for (let i = 0; i < batch.numRows; i++) {
    const role = roles.get(i) as string;
    if (role === prev) {
      out.get(role)!.end = i + 1;
      continue;
    }
    if (out.has(role)) throw new Error(`roleRanges: rows of role '${role}' are not contiguous (batch not built by buildRolloutTable?)`);
    out.set(role, { start: i, end: i + 1 });
    prev = role;
  }
  return out;
}
