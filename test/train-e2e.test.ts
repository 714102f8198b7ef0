// End to end through the real native core: a tiny run must raise the reward on an easy task, and a
// run killed with SIGKILL and resumed must end with exactly the metrics of an uninterrupted run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { MetricsLog } from '../src/data/metrics-log.js';
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from '../src/rl/config.js';
import { isProcessLocalColumn } from '../src/rl/metrics-row.js';
import { train } from '../src/rl/trainer.js';
import { stageShape, type ShapeReport } from '../src/rollout/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'troupe-e2e-'));
// The default cache: the base model built here is the one `npx troupe train` then reuses.
const cacheDir = path.join(root, '.cache/troupe');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The default base model (easy math, tiny, seed 1) and a fixed pool of 16 RL problems, so the
 * reward of later steps is measured on the same problems as that of the first steps.
 */
const SMALL: Partial<TrainConfig> = {
  task: 'math', difficulty: 'easy', workflow: 'single', policy: 'shared', preset: 'tiny', seed: 1,
  promptsPerStep: 16, groupSize: 8, rlProblemPool: 16, lr: 5e-4, warmupSteps: 1, evalProblems: 64,
  evalGreedy: false, transcripts: 1, cacheDir,
};

function metricsRows(dir: string): Record<string, unknown>[] {
  return MetricsLog.read(path.join(dir, 'metrics.arrow')).toArray().map((r) => r.toJSON() as Record<string, unknown>);
}

describe('training end to end', () => {
  it('raises the reward within a few steps on an easy task', async () => {
    const cfg: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...SMALL, steps: 10, evalEvery: 0, checkpointEvery: 0, outDir: path.join(tmp, 'improve') };
    const summary = await train(cfg);
    const rows = metricsRows(cfg.outDir);
    expect(rows).toHaveLength(10);
    const reward = rows.map((r) => Number(r.reward_mean));
    const first = (reward[0] + reward[1] + reward[2]) / 3;
    const last = (reward[7] + reward[8] + reward[9]) / 3;
    expect(last).toBeGreaterThan(first + 0.05);
    expect(summary.base.n).toBe(64);
    // Per-role diagnostics are present and sane.
    expect(Number(rows[9]['generator.grad_mass'])).toBeCloseTo(1, 6);
    expect(Number(rows[9]['policy.mem.weights'])).toBeGreaterThan(0);
    expect(existsSync(path.join(cfg.outDir, 'transcripts/eval-step-0000.md'))).toBe(true);
    // The pool's measured schedule choice is saved: every training rollout (16 x 8 rows) counted.
    const schedules = JSON.parse(readFileSync(path.join(cfg.outDir, 'rollout-schedule.json'), 'utf8')) as ShapeReport[];
    const stage = schedules.find((r) => r.shape === stageShape(1, 128))!;
    expect(stage.calls).toBe(10);
    expect((stage.split?.calls ?? 0) + (stage.serial?.calls ?? 0)).toBe(10);
    expect(['split', 'serial']).toContain(stage.choice);
  }, 1_200_000); // builds the base model on a fresh checkout (a few minutes on 2 cores)

  it('a run killed with SIGKILL and resumed ends with the metrics of an uninterrupted run', async () => {
    const args = (out: string) => [
      cli, 'train', '--task', 'math', '--difficulty', 'easy', '--workflow', 'voting', '--policy', 'isolated',
      '--seed', '1', '--steps', '6', '--prompts-per-step', '4', '--group-size', '4', '--lr', '3e-4',
      '--warmup-steps', '1', '--eval-problems', '16', '--eval-every', '3',
      '--checkpoint-every', '2', '--max-new-tokens', '32', '--cache-dir', cacheDir, '--out', out,
      '--coherence-damping', '0.3',
    ];
    const full = path.join(tmp, 'full');
    const r = spawnSync(process.execPath, args(full), { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);

    const killed = path.join(tmp, 'killed');
    const child = spawn(process.execPath, args(killed), { stdio: 'ignore' });
    const latest = path.join(killed, 'checkpoints/latest');
    // Kill as soon as the step-4 checkpoint is complete (mid-way through step 5).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (existsSync(latest) && readFileSync(latest, 'utf8').trim() === 'step-000004') {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('the run finished before it could be killed'));
      });
    });
    await new Promise((res) => child.on('exit', res));
    const resumed = spawnSync(process.execPath, [...args(killed), '--resume'], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);

    const a = metricsRows(full);
    const b = metricsRows(killed);
    expect(b).toHaveLength(a.length);
    for (let i = 0; i < a.length; i++) {
      for (const [col, v] of Object.entries(a[i])) {
        if (isProcessLocalColumn(col)) continue;
        expect(b[i][col], `step ${a[i].step} column ${col}`).toEqual(v);
      }
    }
    const sa = JSON.parse(readFileSync(path.join(full, 'summary.json'), 'utf8'));
    const sb = JSON.parse(readFileSync(path.join(killed, 'summary.json'), 'utf8'));
    expect(sb.final).toEqual(sa.final);
    expect(sb.delta).toEqual(sa.delta);
  }, 1_200_000);
});
