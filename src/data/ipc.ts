// Arrow IPC files of the run directory: rollouts per step (`rollouts/step-000012.arrow`, random-
// access file format, written atomically) and the metrics log (an appendable stream, see
// metrics-log.ts).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { writeFileAtomic } from './atomic-file.js';
import type { RolloutTable } from './rollout-table.js';

export { MetricsLog, type MetricsLogOptions, type MetricsRecord, type MetricValue } from './metrics-log.js';

/** Path of a step's rollout file inside a run directory: `<runDir>/rollouts/step-000012.arrow`. */
export function rolloutFilePath(runDir: string, step: number): string {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`rolloutFilePath: step must be a non-negative integer, got ${step}`);
  return path.join(runDir, 'rollouts', `step-${String(step).padStart(6, '0')}.arrow`);
}

/** Writes a table as an Arrow IPC file, atomically. */
export function writeArrowFile(file: string, table: Table): void {
  writeFileAtomic(file, [tableToIPC(table, 'file')]);
}

/** Reads an Arrow IPC file (or stream); columns are views into one copy of the file's bytes. */
export function readArrowFile(file: string): Table {
  if (!existsSync(file)) throw new Error(`readArrowFile: ${file} does not exist`);
  // A fresh array at byte offset 0 keeps the (8-byte aligned) IPC buffers aligned for typed views.
  return tableFromIPC(new Uint8Array(readFileSync(file)));
}

/** Writes a step's rollout table to `<runDir>/rollouts/step-NNNNNN.arrow`; returns the path. */
export function writeRolloutFile(runDir: string, step: number, rollouts: RolloutTable | Table): string {
  const file = rolloutFilePath(runDir, step);
  writeArrowFile(file, rollouts instanceof Table ? rollouts : rollouts.table);
  return file;
}
