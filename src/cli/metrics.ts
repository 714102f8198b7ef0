// Reads a run's metrics (Arrow IPC, one row per step) into plain numeric columns for reports.
// Whatever columns exist are read: the set of per-role columns depends on the workflow, and a
// resumed run may append a second IPC stream to the same file, so every stream in it is read and
// columns are matched by name (missing cells become null).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RecordBatchReader, type RecordBatch } from 'apache-arrow';

/** Numeric metric columns by name, all of `rows` length; null where a step has no value. */
export interface MetricsColumns {
  rows: number;
  columns: Map<string, (number | null)[]>;
}

/** Default metrics file name inside a run directory. */
export const METRICS_FILE = 'metrics.arrow';

/** The metrics file of a run dir (`metrics.arrow`, else the one `*metrics*.arrow*`), or null. */
export function findMetricsFile(runDir: string): string | null {
  if (existsSync(runDir) && statSync(runDir).isFile()) return runDir;
  const direct = join(runDir, METRICS_FILE);
  if (existsSync(direct)) return direct;
  if (!existsSync(runDir)) return null;
  const hit = readdirSync(runDir).filter((n) => /metrics.*\.(arrow|arrows|ipc|feather)$/i.test(n)).sort()[0];
  return hit === undefined ? null : join(runDir, hit);
}

function toNumber(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isNaN(v) ? null : v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

/** Appends a batch's numeric columns; non-numeric columns (strings, lists) are skipped. */
function appendBatch(out: MetricsColumns, batch: RecordBatch): void {
  const n = batch.numRows;
  for (const field of batch.schema.fields) {
    const vec = batch.getChild(field.name);
    if (!vec) continue;
    const typeId = String(field.type);
    if (!/^(Int|Uint|Float|Bool)/i.test(typeId)) continue;
    let col = out.columns.get(field.name);
    if (!col) {
      col = new Array<number | null>(out.rows).fill(null);
      out.columns.set(field.name, col);
    }
    for (let i = 0; i < n; i++) col.push(toNumber(vec.get(i)));
  }
  out.rows += n;
  for (const col of out.columns.values()) while (col.length < out.rows) col.push(null);
}

/** Numeric columns of an Arrow IPC buffer (file or stream format, possibly several streams). */
export function metricsFromIPC(bytes: Uint8Array): MetricsColumns {
  const out: MetricsColumns = { rows: 0, columns: new Map() };
  for (const reader of RecordBatchReader.readAll(bytes)) {
    for (const batch of reader) appendBatch(out, batch);
  }
  return out;
}

/** Reads a metrics file; throws naming the file when it cannot be parsed. */
export function readMetrics(path: string): MetricsColumns {
  try {
    return metricsFromIPC(readFileSync(path));
  } catch (e) {
    throw new Error(`cannot read metrics '${path}' as Arrow IPC: ${(e as Error).message}`);
  }
}

/** Roles that have a `<role>.<metric>` column, in column order. */
export function rolesWith(m: MetricsColumns, metric: string): string[] {
  const suffix = `.${metric}`;
  return [...m.columns.keys()].filter((k) => k.endsWith(suffix)).map((k) => k.slice(0, -suffix.length));
}
