// Checkpoints of a whole run: every policy (weights, AdamW state, per-role running-average
// gradients), the evaluation history and the number of completed steps. Problems, sampling keys
// and evaluation draws are pure functions of (seed, step), so the step count is the data and RNG
// position. A checkpoint directory is written under a temporary name and renamed into place, and
// `latest` is replaced atomically, so a run killed at any instant resumes from a complete one.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Policy } from '../native/policy.js';
import type { TrainConfig } from './config.js';

/** One held-out evaluation. */
export interface EvalRecord {
  step: number;
  accuracy: number;
  greedyAccuracy: number | null;
  n: number;
  /** Per-problem 1/0 as a string of digits (paired confidence intervals). */
  correct: string;
}

/** What a run remembers across a restart. */
export interface RunState {
  /** Steps completed. */
  step: number;
  evals: EvalRecord[];
  baseDir: string;
}

function checkpointRoot(outDir: string): string {
  return path.join(outDir, 'checkpoints');
}

/** The directory of the latest complete checkpoint, or null. */
export function latestCheckpoint(outDir: string): string | null {
  const pointer = path.join(checkpointRoot(outDir), 'latest');
  if (!existsSync(pointer)) return null;
  const dir = path.join(checkpointRoot(outDir), readFileSync(pointer, 'utf8').trim());
  return existsSync(path.join(dir, 'state.json')) ? dir : null;
}

/** Writes a checkpoint of every policy and the run state; keeps the two newest. */
export function saveRunCheckpoint(outDir: string, policies: ReadonlyMap<string, Policy>, state: RunState, config: TrainConfig): string {
  const root = checkpointRoot(outDir);
  mkdirSync(root, { recursive: true });
  const name = `step-${String(state.step).padStart(6, '0')}`;
  const dir = path.join(root, name);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [pname, p] of policies) p.saveSync(path.join(tmp, `policy-${pname}`), { optimizer: true });
  writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ ...state, config }, null, 1));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  const ptmp = path.join(root, `latest.tmp`);
  writeFileSync(ptmp, name);
  renameSync(ptmp, path.join(root, 'latest'));
  pruneOld(root, name);
  return dir;
}

/** Removes all but the newest two complete checkpoints. */
function pruneOld(root: string, newest: string): void {
  const older = readdirSync(root)
    .filter((n) => /^step-\d{6}$/.test(n) && n !== newest)
    .sort();
  for (const n of older.slice(0, Math.max(0, older.length - 1))) rmSync(path.join(root, n), { recursive: true, force: true });
}

/** Loads the run state and every policy of a checkpoint. */
export function loadRunCheckpoint(dir: string, policyNames: readonly string[]): { state: RunState; policies: Map<string, Policy> } {
  const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as RunState;
  const policies = new Map<string, Policy>();
  for (const name of policyNames) {
    const pdir = path.join(dir, `policy-${name}`);
    if (!existsSync(pdir)) throw new Error(`checkpoint ${dir} has no policy '${name}' (was the run started with another --policy?)`);
    policies.set(name, Policy.loadSync(pdir));
  }
  return { state: { step: state.step, evals: state.evals, baseDir: state.baseDir }, policies };
}
