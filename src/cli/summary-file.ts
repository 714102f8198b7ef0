// Reading a run's summary.json back (report, sweep), with a clear error when it is not one.
import { readFileSync } from 'node:fs';
import type { TrainSummary } from '../rl/hooks.js';

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Whether a parsed JSON value has the fields of a TrainSummary. */
export function isTrainSummary(v: unknown): v is TrainSummary {
  const s = v as Partial<TrainSummary> | null;
  return (
    s !== null && typeof s === 'object' &&
    typeof s.outDir === 'string' &&
    isNum(s.base?.accuracy) && isNum(s.base?.n) &&
    isNum(s.peak?.accuracy) && isNum(s.peak?.step) &&
    isNum(s.final?.accuracy) && isNum(s.final?.n) &&
    isNum(s.delta?.mean) && Array.isArray(s.delta?.ci95) && s.delta.ci95.length === 2 &&
    isNum(s.seconds)
  );
}

/** Reads and checks a summary.json; throws naming the file and what is wrong. */
export function readSummary(path: string): TrainSummary {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read '${path}': ${(e as Error).message}`);
  }
  if (!isTrainSummary(v)) throw new Error(`'${path}' is not a run summary (expected outDir, base, peak, final, delta, seconds)`);
  return v;
}
