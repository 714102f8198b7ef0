// The per-step metrics log: an Arrow IPC *stream* file that grows by one record batch (one row)
// per append, so a killed run leaves a readable prefix (a torn last message is ignored by readers
// here and cut off when the log is reopened for appending).
//
// Schema: given at open, or fixed from the first appended row (number -> Float64, string -> Utf8,
// boolean -> Bool, bigint -> Int64, null -> Float64). A stream has one schema, so it never grows:
// a later row's missing columns are written as null, and columns the schema lacks are dropped
// (listed in `droppedColumns`, with one process warning each). Rows that may lack a metric (eval
// accuracy between evaluations) should carry it as null from the first row, or name it in the
// schema at open.
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  Bool,
  Field,
  Float64,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Type,
  Utf8,
  vectorFromArray,
  type DataType,
} from 'apache-arrow';
import { writeAll, writeFileAtomic } from './atomic-file.js';
import { batchMessages, readStreamPrefix, schemaMessage } from './ipc-stream.js';

/** A metrics value; null where it does not exist at this step. */
export type MetricValue = number | string | boolean | bigint | null;

/** One row of the log, by column name. */
export type MetricsRecord = Readonly<Record<string, MetricValue>>;

/** Options of MetricsLog.open. */
export interface MetricsLogOptions {
  /** Column set and types; default: inferred from the first row. */
  schema?: Schema;
  /** Keep an existing file's rows and append after them (resume); default false: start empty. */
  append?: boolean;
}

function inferType(v: MetricValue): DataType {
  if (typeof v === 'string') return new Utf8();
  if (typeof v === 'boolean') return new Bool();
  if (typeof v === 'bigint') return new Int64();
  return new Float64();
}

function checkSchema(schema: Schema): void {
  for (const f of schema.fields) {
    if (![Type.Float, Type.Int, Type.Utf8, Type.Bool].includes(f.type.typeId)) {
      throw new TypeError(`MetricsLog: column '${f.name}' has type ${String(f.type)}; metrics columns are numbers, strings or booleans`);
    }
  }
}

function sameFields(a: Schema, b: Schema): boolean {
  return a.fields.length === b.fields.length && a.fields.every((f, i) => f.name === b.fields[i]!.name && f.type.compareTo(b.fields[i]!.type));
}

function readBytes(file: string): Uint8Array {
  return existsSync(file) ? new Uint8Array(readFileSync(file)) : new Uint8Array(0);
}

/** An append-only Arrow stream of one row per training step. */
export class MetricsLog {
  /** Columns present in appended rows but not in the schema (their values were dropped). */
  readonly droppedColumns = new Set<string>();
  private fd: number | null;
  private schemaValue: Schema | null = null;
  private schemaBytes: Uint8Array | null = null;

  private constructor(
    /** The log file. */
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens (creating or, unless append, emptying) a log file. */
  static open(file: string, opts: MetricsLogOptions = {}): MetricsLog {
    if (opts.schema) checkSchema(opts.schema);
    mkdirSync(path.dirname(file), { recursive: true });
    let existing: Schema | null = null;
    let fd: number;
    if (opts.append) {
      const { table, validBytes } = readStreamPrefix(readBytes(file));
      existing = table?.schema ?? null;
      if (existing && opts.schema && !sameFields(existing, opts.schema)) {
        throw new Error(`MetricsLog: ${file} has columns [${existing.fields.map((f) => f.name).join(', ')}], not the schema given to open()`);
      }
      fd = openSync(file, existsSync(file) ? 'r+' : 'w');
      // Cut a torn tail (a run killed mid-write) so new rows follow the last complete one.
      ftruncateSync(fd, validBytes);
      closeSync(fd);
      fd = openSync(file, 'a');
    } else {
      fd = openSync(file, 'w');
    }
    const log = new MetricsLog(file, fd);
    if (existing) log.adopt(existing, false);
    else if (opts.schema) log.adopt(opts.schema, true);
    return log;
  }

  /** The complete rows of a log file (a torn last row is ignored); empty when the file has none. */
  static read(file: string): Table {
    if (!existsSync(file)) throw new Error(`MetricsLog.read: ${file} does not exist`);
    return readStreamPrefix(readBytes(file)).table ?? new Table();
  }

  /** Atomically rewrites a log keeping rows whose `column` is <= step (resume); returns rows kept. */
  static truncateAfter(file: string, step: number, column = 'step'): number {
    if (!existsSync(file)) return 0;
    const table = MetricsLog.read(file);
    if (table.numCols === 0) return 0;
    const steps = table.getChild(column);
    if (!steps) throw new Error(`MetricsLog.truncateAfter: ${file} has no '${column}' column`);
    const keep: number[] = [];
    for (let i = 0; i < table.numRows; i++) {
      const s = steps.get(i) as number | bigint | null;
      if (s !== null && Number(s) <= step) keep.push(i);
    }
    const schema = table.schema;
    const head = schemaMessage(schema);
    const batches = keep.length ? [rowsBatch(schema, table, keep)] : [];
    writeFileAtomic(file, [head, batchMessages(head, schema, batches)]);
    return keep.length;
  }

  /** The log's schema (null until the first row when it is inferred). */
  get schema(): Schema | null {
    return this.schemaValue;
  }

  /** Appends one row (one record batch message, written with one system call). */
  append(row: MetricsRecord): void {
    if (this.fd === null) throw new Error(`MetricsLog: append after close (${this.path})`);
    if (!this.schemaValue) this.adopt(new Schema(Object.entries(row).map(([k, v]) => new Field(k, inferType(v), true))), true);
    const schema = this.schemaValue!;
    for (const k of Object.keys(row)) {
      if (schema.fields.some((f) => f.name === k) || this.droppedColumns.has(k)) continue;
      this.droppedColumns.add(k);
      process.emitWarning(`MetricsLog: column '${k}' is not in the schema of ${this.path}; its values are dropped`);
    }
    const children = schema.fields.map((f) => vectorFromArray([cell(f, row[f.name])], f.type).data[0]!);
    const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 1, nullCount: 0, children }));
    writeAll(this.fd, batchMessages(this.schemaBytes!, schema, [batch]));
  }

  /** Every complete row written so far. */
  readAll(): Table {
    return MetricsLog.read(this.path);
  }

  /** Rewrites the log keeping rows with step <= `step` and keeps appending after them. */
  truncateAfter(step: number, column = 'step'): number {
    this.close();
    const kept = MetricsLog.truncateAfter(this.path, step, column);
    this.fd = openSync(this.path, 'a');
    return kept;
  }

  /** Closes the file (rows are already on disk: every append is a write). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private adopt(schema: Schema, writeHeader: boolean): void {
    checkSchema(schema);
    this.schemaValue = schema;
    this.schemaBytes = schemaMessage(schema);
    if (writeHeader) writeAll(this.fd!, this.schemaBytes);
  }
}

function cell(f: Field, v: MetricValue | undefined): MetricValue {
  if (v === undefined || v === null) return null;
  const id = f.type.typeId;
  const ok =
    (id === Type.Float && typeof v === 'number') ||
    (id === Type.Int && (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)))) ||
    (id === Type.Utf8 && typeof v === 'string') ||
    (id === Type.Bool && typeof v === 'boolean');
  if (!ok) throw new TypeError(`MetricsLog: column '${f.name}' is ${String(f.type)} but the row has ${typeof v} ${String(v)}`);
  // 64-bit integer columns take bigints.
  return id === Type.Int && (f.type as Int64).bitWidth === 64 && typeof v === 'number' ? BigInt(v) : v;
}

function rowsBatch(schema: Schema, table: Table, rows: readonly number[]): RecordBatch {
  const children = schema.fields.map((f) => {
    const col = table.getChild(f.name)!;
    return vectorFromArray(rows.map((i) => col.get(i) as unknown), f.type).data[0]!;
  });
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children }));
}
