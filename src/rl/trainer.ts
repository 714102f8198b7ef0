// The RL training loop: B problems x G rollouts through the workflow, rewards and group
// advantages, a role-by-role update of every policy, metrics, held-out evaluation, checkpoints.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureBaseModel } from '../base/build.js';
import { poolProblems } from '../tasks/pools.js';
import type { Problem, Task } from '../tasks/task.js';
import { Policy } from '../native/policy.js';
import { assignRewards } from './credit.js';
import { groupAdvantages } from './advantages.js';
import type { TrainConfig } from './config.js';
import { evaluate, formatTranscripts, type EvalResult } from './evaluate.js';
import type { StepProgress, TrainHooks, TrainSummary } from './hooks.js';
import { metricsRow } from './metrics-row.js';
import { openMetrics } from './metrics-sink.js';
import { latestCheckpoint, loadRunCheckpoint, saveRunCheckpoint, type EvalRecord, type RunState } from './run-state.js';
import { createSamplers, formatScheduleReport } from './samplers.js';
import { learningRate } from './schedule.js';
import { makeRunParts } from './setup.js';
import { pairedDelta } from './stats.js';
import { updatePolicies } from './update.js';
import { executeEpisodes } from '../workflows/executor.js';

/** Call keys of training draws are (seed, step, episode, call); problems are keyed by (seed, step). */
function trainProblemSeed(seed: number, step: number): number {
  return (seed * 1_000_003 + step * 7919) >>> 0;
}

/** The RL problems of a step: fresh ones, or a window of the fixed pool (rlProblemPool > 0). */
function stepProblems(task: Task, c: TrainConfig, step: number): Problem[] {
  if (c.rlProblemPool <= 0) return poolProblems(task, 'rl', c.promptsPerStep, trainProblemSeed(c.seed, step));
  const pool = poolProblems(task, 'rl', c.rlProblemPool, trainProblemSeed(c.seed, 0));
  return Array.from({ length: c.promptsPerStep }, (_, i) => pool[(step * c.promptsPerStep + i) % pool.length]);
}

function anyPositive(v: number | Record<string, number>): boolean {
  return typeof v === 'number' ? v > 0 : Object.values(v).some((x) => x > 0);
}

/** Runs (or resumes) a training run and returns its summary; writes everything under config.outDir. */
export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainSummary> {
  const t0 = performance.now();
  const c = config;
  const log = (line: string) => hooks.onLog?.(line);
  const progress = (p: Omit<StepProgress, 'steps'> & { steps?: number }) => hooks.onProgress?.({ ...p, steps: p.steps ?? c.steps });
  const outDir = path.resolve(c.outDir);
  mkdirSync(outDir, { recursive: true });
  const parts = makeRunParts(c);
  const { task, tokenizer, workflow, routing } = parts;

  // Initial policies: resume, a user model directory, or the cached base model.
  let state: RunState;
  let policies: Map<string, Policy>;
  const resumeDir = c.resume ? latestCheckpoint(outDir) : null;
  if (c.resume && !resumeDir) log(`no checkpoint in ${outDir}: starting from step 0`);
  if (resumeDir) {
    ({ state, policies } = loadRunCheckpoint(resumeDir, routing.policies));
    log(`resumed from ${resumeDir} (step ${state.step})`);
  } else {
    let baseDir: string;
    if (c.model) {
      baseDir = path.resolve(c.model);
    } else {
      const base = await ensureBaseModel({
        task, tokenizer, preset: c.preset, seed: c.seed, steps: c.baseSteps, lr: c.baseLr, cacheDir: c.cacheDir,
        onProgress: (step, steps, loss) =>
          progress({ step, steps, phase: 'base', accuracy: null, reward: 0, tokensPerSecond: 0, seconds: (performance.now() - t0) / 1000, message: `base model ${step}/${steps} loss ${loss.toFixed(3)}` }),
        onLog: log,
      });
      baseDir = base.dir;
      log(`base model: ${base.dir}${base.cached ? ' (cached)' : ''}`);
    }
    policies = new Map(routing.policies.map((name) => [name, Policy.loadSync(baseDir)] as const));
    state = { step: 0, evals: [], baseDir };
  }
  tokenizer.save(outDir);
  const reference = anyPositive(c.klCoef) ? Policy.loadSync(state.baseDir) : null;
  reference?.releaseTrainingState();
  writeFileSync(path.join(outDir, 'config.json'), JSON.stringify(c, null, 2));

  const samplers = createSamplers(c, policies, tokenizer);
  const metrics = await openMetrics(path.join(outDir, 'metrics.arrow'), resumeDir ? state.step : 0);
  const evalProblems = task.problems('test', c.evalProblems, c.seed);
  const transcriptsDir = path.join(outDir, 'transcripts');

  const runEval = async (step: number): Promise<EvalRecord> => {
    progress({ step, phase: 'eval', accuracy: null, reward: 0, tokensPerSecond: 0, seconds: (performance.now() - t0) / 1000, message: 'evaluating' });
    const index = state.evals.length;
    const sampled: EvalResult = await evaluate({
      workflow, task, problems: evalProblems, sampler: samplers.sampled, router: routing, seed: c.seed, index: 2 * index, maxTokens: c.maxNewTokens,
    });
    let greedy: EvalResult | null = null;
    if (c.evalGreedy) {
      greedy = await evaluate({
        workflow, task, problems: evalProblems, sampler: samplers.greedy, router: routing, seed: c.seed, index: 2 * index + 1, maxTokens: c.maxNewTokens,
      });
    }
    if (c.transcripts > 0) {
      mkdirSync(transcriptsDir, { recursive: true });
      writeFileSync(path.join(transcriptsDir, `eval-step-${String(step).padStart(4, '0')}.md`), formatTranscripts(task, sampled.episodes.slice(0, c.transcripts)));
    }
    const rec: EvalRecord = {
      step, accuracy: sampled.accuracy, greedyAccuracy: greedy ? greedy.accuracy : null, n: sampled.n,
      correct: Array.from(sampled.correct).join(''),
    };
    log(`eval @${step}: pass@1 ${(100 * rec.accuracy).toFixed(1)}%${greedy ? `, greedy ${(100 * greedy.accuracy).toFixed(1)}%` : ''} (n=${rec.n}, ${sampled.seconds.toFixed(1)} s)`);
    state.evals.push(rec);
    return rec;
  };

  try {
    if (state.step === 0 && state.evals.length === 0) await runEval(0);
    for (let step = state.step; step < c.steps; step++) {
      const tStep = performance.now();
      const problems = stepProblems(task, c, step);
      const exec = await executeEpisodes({
        workflow, task, problems, rollouts: c.groupSize, sampler: samplers.sampled, router: routing, seed: c.seed, step, maxTokens: c.maxNewTokens,
      });
      const tRoll = performance.now();
      const credit = assignRewards(exec.episodes, workflow, task, c.credit);
      const adv = groupAdvantages(exec.rows, credit.rewards, { grouping: c.grouping, dropEqualGroups: c.dropEqualGroups });
      const tGrade = performance.now();
      const lr = learningRate(step, c.steps, c.lr, c.warmupSteps, c.minLrRatio);
      const upd = await updatePolicies({ policies, reference, rows: exec.rows, advantages: adv.advantages, keep: adv.keep, config: c, lr });
      const tTrain = performance.now();
      let newTokens = 0;
      for (const r of exec.rows) newTokens += r.completionTokens.length;
      const trainAcc = credit.grades.reduce((s, g) => s + (g.correct ? 1 : 0), 0) / Math.max(1, credit.grades.length);
      const rewardMean = credit.rewards.reduce((s, r) => s + r, 0) / Math.max(1, credit.rewards.length);
      const done = step + 1;
      state.step = done;
      let evalRec: EvalRecord | null = null;
      if ((c.evalEvery > 0 && done % c.evalEvery === 0) || done === c.steps) evalRec = await runEval(done);
      const row = metricsRow({
        step: done, lr, trainAccuracy: trainAcc, rewardMean, evalRec,
        rolloutSeconds: (tRoll - tStep) / 1000, gradingSeconds: (tGrade - tRoll) / 1000, trainingSeconds: (tTrain - tGrade) / 1000,
        newTokens, trainedTokens: upd.tokens, rows: exec.rows.length, droppedRows: adv.dropped.length,
        roles: upd.roles, allRoles: workflow.roles, policySteps: upd.policies, policies,
      });
      await metrics.append(row);
      if ((c.checkpointEvery > 0 && done % c.checkpointEvery === 0) || done === c.steps) saveRunCheckpoint(outDir, policies, state, c);
      const secs = (performance.now() - tStep) / 1000;
      progress({
        step: done, phase: 'train', accuracy: state.evals[state.evals.length - 1]?.accuracy ?? null, reward: rewardMean,
        tokensPerSecond: (newTokens + upd.tokens) / Math.max(1e-9, secs), seconds: (performance.now() - t0) / 1000,
        message: `train acc ${(100 * trainAcc).toFixed(1)}%`,
      });
    }
  } finally {
    await metrics.close();
    // Which pool schedule each stage shape ended up with, and why (measured costs).
    const schedules = samplers.scheduleReport();
    if (schedules.length > 0) {
      writeFileSync(path.join(outDir, 'rollout-schedule.json'), JSON.stringify(schedules, null, 2));
      log(`rollout schedule per stage shape:\n${formatScheduleReport(schedules)}`);
    }
    await samplers.destroy();
  }

  const summary = summarize(state.evals, outDir, (performance.now() - t0) / 1000);
  writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify(summary, null, 2));
  for (const p of policies.values()) p.dispose();
  reference?.dispose();
  return summary;
}

/** Base, peak and final held-out accuracy, and the paired change over base with its 95% CI. */
export function summarize(evals: readonly EvalRecord[], outDir: string, seconds: number): TrainSummary {
  if (evals.length === 0) throw new Error('summarize: no evaluation was run');
  const base = evals[0];
  const final = evals[evals.length - 1];
  let peak = base;
  for (const e of evals) if (e.accuracy > peak.accuracy) peak = e;
  const bits = (s: string) => Array.from(s, (ch) => (ch === '1' ? 1 : 0));
  const delta = pairedDelta(bits(base.correct), bits(final.correct));
  return {
    outDir,
    base: { accuracy: base.accuracy, n: base.n },
    peak: { accuracy: peak.accuracy, step: peak.step },
    final: { accuracy: final.accuracy, n: final.n },
    delta,
    greedy: base.greedyAccuracy !== null && final.greedyAccuracy !== null ? { base: base.greedyAccuracy, final: final.greedyAccuracy } : undefined,
    seconds,
  };
}
