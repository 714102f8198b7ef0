// What each TrainConfig field may hold, and how a flag string or a config-file value becomes one.
// The mapped type below makes the compiler insist on a spec for every field of TrainConfig, so a
// field added in src/rl/config.ts cannot silently become unsettable from the command line.
import {
  CREDITS,
  DIFFICULTIES,
  GROUPINGS,
  KL_ESTIMATORS,
  LOSS_AGGS,
  PRESETS,
  TASKS,
  WORKFLOWS,
  type TrainConfig,
} from '../rl/config.js';
import { SCHEDULE_CHOICES } from '../rollout/schedule.js';
import { didYouMean } from './suggest.js';

/** The shape and range of one field. */
export type FieldKind =
  | { type: 'int'; min: number; max?: number }
  | { type: 'number'; min?: number; max?: number; minOpen?: boolean; maxOpen?: boolean }
  | { type: 'enum'; values: readonly string[]; noun: string }
  | { type: 'bool' }
  | { type: 'string' }
  | { type: 'path-or-null' }
  /** One number for every role, or `role=value,...` / a {role: value} mapping. */
  | { type: 'role-number'; min: number; max?: number }
  /** `shared`, `isolated`, or `role=policy,...` / a {role: policy} mapping. */
  | { type: 'policy' };

/** A field's kind, one-line help, and the help section it is listed under. */
export interface FieldSpec {
  kind: FieldKind;
  help: string;
  group: 'run' | 'batch' | 'optimizer' | 'loss' | 'rl' | 'sampling' | 'eval' | 'system';
}

const int = (min: number, max?: number): FieldKind => ({ type: 'int', min, max });
const num = (min?: number, max?: number, minOpen = false, maxOpen = false): FieldKind => ({ type: 'number', min, max, minOpen, maxOpen });
const oneOf = (values: readonly string[], noun: string): FieldKind => ({ type: 'enum', values, noun });
const BOOL: FieldKind = { type: 'bool' };

/** Every TrainConfig field's spec, in help order. */
export const FIELDS: { readonly [K in keyof TrainConfig]: FieldSpec } = {
  workflow: { kind: oneOf(WORKFLOWS, 'workflow'), help: 'multi-agent workflow to train', group: 'run' },
  task: { kind: oneOf(TASKS, 'task'), help: 'built-in task', group: 'run' },
  difficulty: { kind: oneOf(DIFFICULTIES, 'difficulty'), help: 'problem difficulty (easy suits the CPU presets)', group: 'run' },
  taskFile: { kind: { type: 'path-or-null' }, help: 'GSM8K-style JSONL replacing the generated math problems', group: 'run' },
  policy: { kind: { type: 'policy' }, help: 'role -> policy routing: shared, isolated, or role=policy,...', group: 'run' },
  preset: { kind: oneOf(PRESETS, 'preset'), help: 'CPU model size', group: 'run' },
  model: { kind: { type: 'path-or-null' }, help: 'Hugging Face model directory to start from (instead of a preset base)', group: 'run' },
  seed: { kind: int(0, Number.MAX_SAFE_INTEGER), help: 'run seed (same seed and config give the same run)', group: 'run' },
  outDir: { kind: { type: 'string' }, help: 'run directory (metrics, checkpoints, summary.json)', group: 'run' },
  resume: { kind: BOOL, help: 'continue from the latest checkpoint in the run directory', group: 'run' },
  steps: { kind: int(1), help: 'RL steps', group: 'batch' },
  promptsPerStep: { kind: int(1), help: 'prompts drawn per step (B)', group: 'batch' },
  groupSize: { kind: int(1), help: 'rollouts per prompt, the GRPO group (G)', group: 'batch' },
  miniBatch: { kind: int(1), help: 'sequences per optimizer mini-batch', group: 'batch' },
  epochs: { kind: int(1), help: 'passes over each step\'s rollouts', group: 'batch' },
  lr: { kind: num(0, 1, true), help: 'peak learning rate', group: 'optimizer' },
  warmupSteps: { kind: int(0), help: 'linear warm-up steps before cosine decay', group: 'optimizer' },
  minLrRatio: { kind: num(0, 1), help: 'final lr as a fraction of the peak', group: 'optimizer' },
  beta1: { kind: num(0, 1, false, true), help: 'AdamW beta1', group: 'optimizer' },
  beta2: { kind: num(0, 1, false, true), help: 'AdamW beta2', group: 'optimizer' },
  weightDecay: { kind: num(0), help: 'AdamW decoupled weight decay', group: 'optimizer' },
  gradClip: { kind: num(0), help: 'global gradient-norm clip (0 = off)', group: 'optimizer' },
  clipLow: { kind: num(0, 1, false, true), help: 'PPO ratio lower clip eps (ratio >= 1 - eps)', group: 'loss' },
  clipHigh: { kind: num(0), help: 'PPO ratio upper clip eps (ratio <= 1 + eps)', group: 'loss' },
  dualClip: { kind: num(0), help: 'dual-clip constant for negative advantages (0 = off, else > 1)', group: 'loss' },
  lossAgg: { kind: oneOf(LOSS_AGGS, 'loss aggregation'), help: 'how token losses are averaged', group: 'loss' },
  klEstimator: { kind: oneOf(KL_ESTIMATORS, 'KL estimator'), help: 'KL-to-base estimator (none = no anchor)', group: 'loss' },
  klCoef: { kind: { type: 'role-number', min: 0 }, help: 'KL coefficient, one number or role=value,...', group: 'loss' },
  entropyCoef: { kind: num(0), help: 'entropy bonus coefficient', group: 'loss' },
  grouping: { kind: oneOf(GROUPINGS, 'grouping'), help: 'advantage groups: (prompt, role) or per turn (AT-GRPO)', group: 'rl' },
  credit: { kind: oneOf(CREDITS, 'credit mode'), help: 'final outcome to every call, or per-role rewards', group: 'rl' },
  dropEqualGroups: { kind: BOOL, help: 'drop groups whose rewards are all equal', group: 'rl' },
  coherenceDamping: { kind: { type: 'role-number', min: 0, max: 1 }, help: 'coherence damping lambda, one number or role=value,...', group: 'rl' },
  coherenceDecay: { kind: num(0, 1, false, true), help: 'decay of the running-average gradient (coherence)', group: 'rl' },
  temperature: { kind: num(0, undefined, true), help: 'sampling temperature (training and evaluation)', group: 'sampling' },
  topP: { kind: num(0, 1, true), help: 'nucleus mass kept', group: 'sampling' },
  topK: { kind: int(0), help: 'keep the k most likely tokens (0 = off)', group: 'sampling' },
  maxNewTokens: { kind: int(1), help: 'completion budget per role call (tokens)', group: 'sampling' },
  evalEvery: { kind: int(0), help: 'held-out evaluation every N steps (0 = before and after only)', group: 'eval' },
  rlProblemPool: { kind: int(0), help: 'cycle a fixed pool of N RL problems (0 = fresh problems every step)', group: 'rl' },
  evalProblems: { kind: int(1), help: 'held-out problems per evaluation', group: 'eval' },
  evalGreedy: { kind: BOOL, help: 'also evaluate with greedy decoding', group: 'eval' },
  transcripts: { kind: int(0), help: 'full transcripts saved per evaluation', group: 'eval' },
  checkpointEvery: { kind: int(0), help: 'checkpoint every N steps (0 = at the end only)', group: 'eval' },
  workers: { kind: int(0), help: 'rollout worker threads (0 = auto)', group: 'system' },
  threadsPerCall: { kind: int(0), help: 'native threads per call (0 = cores / workers)', group: 'system' },
  rolloutSchedule: {
    kind: oneOf(SCHEDULE_CHOICES, 'rollout schedule'),
    help: 'pool schedule per stage: auto (measured), split (side by side) or serial',
    group: 'system',
  },
  baseSteps: { kind: int(0), help: 'supervised warm-up steps that build the base model (cached)', group: 'system' },
  baseLr: { kind: num(0, 1, true), help: 'learning rate of the base warm-up', group: 'system' },
  cacheDir: { kind: { type: 'string' }, help: 'where base models are cached (shared across runs)', group: 'system' },
};

/** Field names in help order. */
export const FIELD_NAMES = Object.keys(FIELDS) as (keyof TrainConfig)[];

/** Where a raw value came from, so an error can point at the flag or the file line a user wrote. */
export type Origin = { kind: 'flag' } | { kind: 'file'; file: string } | { kind: 'default' };

/** How an error names a field: `--group-size`, `groupSize (in sweep.yaml)` or `groupSize (default)`. */
export function fieldLabel(field: string, origin: Origin): string {
  if (origin.kind === 'flag') return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (origin.kind === 'file') return `${field} (in ${origin.file})`;
  return `${field} (default)`;
}

/** A coerced value, or an error message that already names the field. */
export type Coerced = { ok: true; value: unknown } | { ok: false; error: string };

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v));

function rangeText(k: Extract<FieldKind, { type: 'number' | 'int' }>): string {
  const parts: string[] = [];
  if (k.min !== undefined) parts.push(`${k.type === 'number' && k.minOpen ? '>' : '>='} ${k.min}`);
  if (k.max !== undefined && k.max !== Number.MAX_SAFE_INTEGER) parts.push(`${k.type === 'number' && k.maxOpen ? '<' : '<='} ${k.max}`);
  return parts.join(' and ');
}

function inRange(k: Extract<FieldKind, { type: 'number' | 'int' }>, x: number): boolean {
  const minOpen = k.type === 'number' && k.minOpen;
  const maxOpen = k.type === 'number' && k.maxOpen;
  if (k.min !== undefined && (minOpen ? x <= k.min : x < k.min)) return false;
  if (k.max !== undefined && (maxOpen ? x >= k.max : x > k.max)) return false;
  return true;
}

/** A number from a flag string (strict: the whole string must be a number) or a file value. */
function toNumber(raw: unknown, fromFlag: boolean): number | null {
  if (typeof raw === 'number') return raw;
  if (fromFlag && typeof raw === 'string' && raw.trim() !== '') {
    const n = Number(raw);
    return Number.isNaN(n) ? null : n;
  }
  return null;
}

function coerceNumber(label: string, k: Extract<FieldKind, { type: 'number' | 'int' }>, raw: unknown, fromFlag: boolean): Coerced {
  const what = k.type === 'int' ? 'an integer' : 'a number';
  const range = rangeText(k);
  const expected = `expected ${what}${range ? ` ${range}` : ''}`;
  const n = toNumber(raw, fromFlag);
  if (n === null || !Number.isFinite(n) || (k.type === 'int' && !Number.isInteger(n))) {
    return { ok: false, error: `${label}: ${expected}, got ${show(raw)}` };
  }
  if (!inRange(k, n)) return { ok: false, error: `${label}: ${expected}, got ${show(raw)}` };
  return { ok: true, value: n };
}

/** Splits `a=x,b=y` into pairs; null when a part has no `=`. */
function pairs(s: string): [string, string][] | null {
  const out: [string, string][] = [];
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    out.push([part.slice(0, eq).trim(), part.slice(eq + 1).trim()]);
  }
  return out.length > 0 ? out : null;
}

/** Turns one raw value into the field's type; role names in maps are checked later, per workflow. */
export function coerceField(field: keyof TrainConfig, raw: unknown, origin: Origin): Coerced {
  const k = FIELDS[field].kind;
  const label = fieldLabel(field, origin);
  const fromFlag = origin.kind === 'flag';
  switch (k.type) {
    case 'int':
    case 'number':
      return coerceNumber(label, k, raw, fromFlag);
    case 'enum':
      if (typeof raw === 'string' && k.values.includes(raw)) return { ok: true, value: raw };
      return {
        ok: false,
        error: `${label}: ${show(raw)} is not a ${k.noun}; expected one of ${k.values.join(', ')}${typeof raw === 'string' ? didYouMean(raw, k.values) : ''}`,
      };
    case 'bool':
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      return { ok: false, error: `${label}: expected true or false, got ${show(raw)}` };
    case 'string':
      if (typeof raw === 'string' && raw.trim() !== '') return { ok: true, value: raw };
      return { ok: false, error: `${label}: expected a non-empty string, got ${show(raw)}` };
    case 'path-or-null':
      if (raw === null || (typeof raw === 'string' && raw.trim() !== '')) return { ok: true, value: raw };
      return { ok: false, error: `${label}: expected a path${fromFlag ? '' : ' or null'}, got ${show(raw)}` };
    case 'role-number':
      return coerceRoleNumber(label, k, raw, fromFlag);
    case 'policy':
      return coercePolicy(label, raw);
  }
}

type NumberKind = Extract<FieldKind, { type: 'number' }>;

function coerceRoleNumber(label: string, k: Extract<FieldKind, { type: 'role-number' }>, raw: unknown, fromFlag: boolean): Coerced {
  const scalar: NumberKind = { type: 'number', min: k.min, max: k.max };
  const expected = `expected a number ${rangeText(scalar)} or role=value,... (e.g. generator=0.01,aggregator=0.05)`;
  if (typeof raw === 'number' || (fromFlag && typeof raw === 'string' && !raw.includes('='))) {
    const c = coerceNumber(label, scalar, raw, fromFlag);
    return c.ok ? c : { ok: false, error: `${label}: ${expected}, got ${show(raw)}` };
  }
  let entries: [string, unknown][] | null = null;
  if (fromFlag && typeof raw === 'string') entries = pairs(raw);
  else if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) entries = Object.entries(raw);
  if (entries === null || entries.length === 0) return { ok: false, error: `${label}: ${expected}, got ${show(raw)}` };
  const out: Record<string, number> = {};
  for (const [role, v] of entries) {
    const c = coerceNumber(`${label} (role ${role})`, scalar, v, fromFlag);
    if (!c.ok) return c;
    out[role] = c.value as number;
  }
  return { ok: true, value: out };
}

function coercePolicy(label: string, raw: unknown): Coerced {
  const named = ['shared', 'isolated'];
  const expected = 'expected shared, isolated or a role=policy mapping (e.g. generator=a,aggregator=b)';
  if (raw === 'shared' || raw === 'isolated') return { ok: true, value: raw };
  if (typeof raw === 'string') {
    const p = pairs(raw);
    if (p === null) return { ok: false, error: `${label}: ${expected}, got ${show(raw)}${didYouMean(raw, named)}` };
    return policyMap(label, p);
  }
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) return policyMap(label, Object.entries(raw));
  return { ok: false, error: `${label}: ${expected}, got ${show(raw)}` };
}

function policyMap(label: string, entries: [string, unknown][]): Coerced {
  const out: Record<string, string> = {};
  for (const [role, policy] of entries) {
    if (typeof policy !== 'string' || policy.trim() === '') {
      return { ok: false, error: `${label}: role '${role}' needs a non-empty policy name, got ${show(policy)}` };
    }
    out[role] = policy;
  }
  if (Object.keys(out).length === 0) return { ok: false, error: `${label}: the role=policy mapping is empty` };
  return { ok: true, value: out };
}
