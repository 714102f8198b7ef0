// Turns layers of raw settings (defaults < a resumed run's config < a config file < flags) into a
// checked TrainConfig. Every problem is collected before failing, so one invocation shows them all,
// and every message names the field as the user wrote it (the flag, or the key and its file).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../rl/config.js';
import { makeRouting } from '../rl/routing.js';
import { createWorkflow } from '../workflows/registry.js';
import { UsageError, camel } from './args.js';
import { FIELDS, FIELD_NAMES, coerceField, fieldLabel, type Origin } from './fields.js';
import { didYouMean } from './suggest.js';

/** One source of settings: raw values keyed by TrainConfig field name. */
export interface ConfigLayer {
  origin: Origin;
  values: Record<string, unknown>;
}

/** What validation needs from the outside world (injectable for tests). */
export interface ValidateContext {
  /** CPU cores the thread budget must fit in. */
  cores: number;
  exists(path: string): boolean;
  /** The workflow's roles, and whether it defines per-role rewards (the `role` credit mode). */
  workflowInfo(name: string): { roles: readonly string[]; roleRewards: boolean };
}

/** The real machine: its cores, its file system, the built-in workflows. */
export function defaultContext(): ValidateContext {
  return {
    cores: availableParallelism(),
    exists: existsSync,
    workflowInfo(name) {
      const wf = createWorkflow(name);
      return { roles: wf.roles, roleRewards: typeof wf.roleRewards === 'function' };
    },
  };
}

/** A validated config, where each field came from, and non-fatal remarks worth printing. */
export interface ResolvedConfig {
  config: TrainConfig;
  origins: Record<keyof TrainConfig, Origin>;
  warnings: string[];
}

/** A config-file mapping as a layer; keys may be camelCase or kebab-case. Throws on unknown keys. */
export function fileLayer(values: Record<string, unknown>, file: string): ConfigLayer {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, v] of Object.entries(values)) {
    const field = camel(key);
    if (field in FIELDS) out[field] = v;
    else problems.push(`${key} (in ${file}): unknown config key${didYouMean(field, FIELD_NAMES)}`);
  }
  if (problems.length > 0) throw new UsageError(problems);
  return { origin: { kind: 'file', file }, values: out };
}

/** Merges the layers in order (later wins), checks every field and every combination. */
export function resolveTrainConfig(layers: readonly ConfigLayer[], ctx: ValidateContext = defaultContext()): ResolvedConfig {
  const config = { ...DEFAULT_TRAIN_CONFIG } as Record<string, unknown>;
  const origins = Object.fromEntries(FIELD_NAMES.map((f) => [f, { kind: 'default' }])) as Record<keyof TrainConfig, Origin>;
  const problems: string[] = [];
  for (const layer of layers) {
    for (const [field, raw] of Object.entries(layer.values)) {
      if (!(field in FIELDS)) {
        // Callers filter unknown keys first; this guards programmatic layers.
        problems.push(`${fieldLabel(field, layer.origin)}: unknown setting${didYouMean(field, FIELD_NAMES)}`);
        continue;
      }
      const c = coerceField(field as keyof TrainConfig, raw, layer.origin);
      if (!c.ok) {
        problems.push(c.error);
        continue;
      }
      config[field] = c.value;
      origins[field as keyof TrainConfig] = layer.origin;
    }
  }
  if (problems.length > 0) throw new UsageError(problems);
  const cfg = config as unknown as TrainConfig;
  const { errors, warnings } = checkCombinations(cfg, origins, ctx);
  if (errors.length > 0) throw new UsageError(errors);
  return { config: cfg, origins, warnings };
}

/** Settings that are fine alone but impossible (errors) or pointless (warnings) together. */
export function checkCombinations(
  cfg: TrainConfig,
  origins: Record<keyof TrainConfig, Origin>,
  ctx: ValidateContext,
): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const at = (f: keyof TrainConfig): string => fieldLabel(f, origins[f]);
  const info = ctx.workflowInfo(cfg.workflow);
  const roles = info.roles;

  if (cfg.groupSize < 2) {
    errors.push(`${at('groupSize')}: GRPO needs at least 2 rollouts per prompt (got ${cfg.groupSize}); a group of 1 has advantage 0 and nothing would train`);
  }

  // Role maps must name roles this workflow has; missing roles get 0 so the trainer sees a full map.
  for (const f of ['klCoef', 'coherenceDamping'] as const) {
    const v = cfg[f];
    if (typeof v !== 'object') continue;
    const bad = Object.keys(v).filter((r) => !roles.includes(r));
    for (const r of bad) {
      errors.push(`${at(f)}: '${r}' is not a role of workflow ${cfg.workflow}; expected one of ${roles.join(', ')}${didYouMean(r, roles)}`);
    }
    if (bad.length === 0) cfg[f] = Object.fromEntries(roles.map((r) => [r, v[r] ?? 0]));
  }
  if (typeof cfg.policy === 'object') {
    const keys = Object.keys(cfg.policy);
    const bad = keys.filter((k) => !roles.includes(k.replace(/#\d+$/, '')));
    for (const k of bad) {
      const role = k.replace(/#\d+$/, '');
      errors.push(`${at('policy')}: '${role}' is not a role of workflow ${cfg.workflow}; expected one of ${roles.join(', ')}${didYouMean(role, roles)}`);
    }
    if (bad.length === 0) {
      try {
        makeRouting(cfg.policy, roles);
      } catch (e) {
        errors.push(`${at('policy')}: ${(e as Error).message.replace(/^routing: /, '')}`);
      }
    }
  }

  const klValues = typeof cfg.klCoef === 'number' ? [cfg.klCoef] : Object.values(cfg.klCoef);
  const klOn = klValues.some((x) => x > 0);
  if (klOn && cfg.klEstimator === 'none') {
    errors.push(`${at('klCoef')}: a KL coefficient > 0 needs a KL estimator, but ${at('klEstimator')} is none; expected one of k1, k2, k3 (the paper's anchor uses k3)`);
  } else if (!klOn && cfg.klEstimator !== 'none') {
    warnings.push(`${at('klEstimator')} is ${cfg.klEstimator} but every KL coefficient is 0, so the KL term has no effect`);
  }

  if (cfg.dualClip > 0 && cfg.dualClip <= 1) {
    errors.push(`${at('dualClip')}: ${cfg.dualClip} would silently disable dual-clip (it must exceed 1 to bound the loss); use 0 to turn it off or a value > 1 (paper: 3)`);
  }

  // The thread budget (DESIGN.md): workers x native threads per call must fit in the cores.
  const tpc = cfg.threadsPerCall;
  if (cfg.workers > 0 && cfg.workers * Math.max(tpc, 1) > ctx.cores) {
    errors.push(
      `${at('workers')} x ${at('threadsPerCall')}: ${cfg.workers} x ${Math.max(tpc, 1)} = ${cfg.workers * Math.max(tpc, 1)} threads exceed the ${ctx.cores} core(s); ` +
        `oversubscribed pools spin against each other (set --threads-per-call 0 to divide the cores automatically)`,
    );
  } else if (cfg.workers === 0 && tpc > ctx.cores) {
    errors.push(`${at('threadsPerCall')}: ${tpc} threads per call exceed the ${ctx.cores} core(s)`);
  }

  if (cfg.taskFile !== null) {
    if (cfg.task !== 'math') errors.push(`${at('taskFile')}: a task file replaces math problems, but ${at('task')} is ${cfg.task}; expected --task math`);
    if (!ctx.exists(cfg.taskFile)) errors.push(`${at('taskFile')}: file '${cfg.taskFile}' does not exist`);
  }
  if (cfg.model !== null) {
    if (!ctx.exists(cfg.model)) errors.push(`${at('model')}: model directory '${cfg.model}' does not exist`);
    if (origins.preset.kind !== 'default') warnings.push(`${at('preset')} is ignored: the model comes from ${at('model')}`);
  }
  if (cfg.resume && !ctx.exists(cfg.outDir)) {
    errors.push(`${at('resume')}: run directory '${cfg.outDir}' (${at('outDir')}) does not exist, so there is nothing to resume; drop --resume to start a new run there`);
  }

  if (cfg.credit === 'role' && !info.roleRewards) {
    warnings.push(`${at('credit')} is role, but workflow ${cfg.workflow} has no per-role rewards; every call gets the final outcome`);
  }
  if (cfg.warmupSteps >= cfg.steps) {
    warnings.push(`${at('warmupSteps')} ${cfg.warmupSteps} >= ${at('steps')} ${cfg.steps}: the learning rate never reaches its peak`);
  }
  if (cfg.evalEvery > cfg.steps) {
    warnings.push(`${at('evalEvery')} ${cfg.evalEvery} > ${at('steps')} ${cfg.steps}: only the base and final evaluations will run`);
  }
  return { errors, warnings };
}
