// The base model of a (task, preset, seed): a randomly initialised Qwen3 of the preset's shape,
// taught every role's output format by supervised warm-up on generated demonstrations (never on
// held-out problems). It is deliberately short-trained: competent at the formats, imperfect at
// the task, so RL has room to move. Built once and cached under cacheDir; the cache key includes
// a fingerprint of the demonstrations, so changing a prompt format rebuilds it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Policy } from '../native/policy.js';
import { packTrainBatch } from '../native/pack.js';
import { learningRate } from '../rl/schedule.js';
import { rngFor, shuffleInPlace } from '../tasks/rng.js';
import type { Task } from '../tasks/task.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { buildSftExamples, type SftExample } from './sft-data.js';

/** Bumped when the warm-up recipe changes in a way the fingerprint cannot see. */
export const BASE_RECIPE_VERSION = 1;

/** Inputs of `ensureBaseModel`. */
export interface BaseOptions {
  task: Task;
  tokenizer: Tokenizer;
  preset: 'tiny' | 'small' | 'medium';
  seed: number;
  steps: number;
  lr: number;
  cacheDir: string;
  /** Sequences per supervised step. */
  batch?: number;
  onProgress?: (step: number, steps: number, loss: number) => void;
  onLog?: (line: string) => void;
}

/** A built (or cached) base model. */
export interface BaseModel {
  dir: string;
  cached: boolean;
  examples: number;
  finalLoss: number | null;
}

/** Returns the cached base model directory, building it first when missing. */
export async function ensureBaseModel(o: BaseOptions): Promise<BaseModel> {
  const batch = o.batch ?? 32;
  // Enough distinct problems that each example is seen about once: with a few hundred problems a
  // tiny model memorises them (training loss ~0.03) instead of learning the arithmetic.
  const { examples, skipped } = await buildSftExamples(o.task, o.tokenizer, {
    problems: Math.max(200, Math.ceil((o.steps * batch) / 9)),
    seed: o.seed,
    maxTokens: 512,
  });
  const fp = createHash('sha256');
  fp.update(`v${BASE_RECIPE_VERSION}|${o.preset}|${o.steps}|${o.lr}|${batch}|${examples.length}|${o.tokenizer.vocabSize}`);
  for (const e of examples.slice(0, 200)) {
    fp.update(Buffer.from(e.prompt.buffer, e.prompt.byteOffset, e.prompt.byteLength));
    fp.update(Buffer.from(e.completion.buffer, e.completion.byteOffset, e.completion.byteLength));
  }
  const key = `${o.task.name}-${o.preset}-s${o.seed}-${fp.digest('hex').slice(0, 12)}`;
  const dir = path.resolve(o.cacheDir, 'base', key);
  if (existsSync(path.join(dir, 'model.safetensors')) && existsSync(path.join(dir, 'base.json'))) {
    const info = JSON.parse(readFileSync(path.join(dir, 'base.json'), 'utf8')) as { finalLoss: number };
    return { dir, cached: true, examples: examples.length, finalLoss: info.finalLoss };
  }
  o.onLog?.(`building base model ${key}: ${examples.length} demonstrations (${skipped} too long), ${o.steps} steps`);
  const policy = Policy.createSync({ preset: o.preset, vocabSize: o.tokenizer.vocabSize, seed: o.seed });
  const rng = rngFor('base-order', o.seed);
  let order: SftExample[] = [];
  let finalLoss: number | null = null;
  let ema: number | null = null;
  for (let step = 0; step < o.steps; step++) {
    if (order.length < batch) order = shuffleInPlace(rng, examples.slice());
    const rows = order.splice(0, batch);
    const tb = packTrainBatch(
      rows.map((r) => ({
        promptTokens: r.prompt,
        completionTokens: r.completion,
        logprobs: new Float32Array(r.completion.length),
        advantage: 0,
      })),
    );
    const stats = await policy.accumulate(tb, { supervised: true, aggregation: 'token-mean' }, { track: false });
    await policy.step({ lr: learningRate(step, o.steps, o.lr, Math.min(20, o.steps >> 3), 0.05), weightDecay: 0 });
    finalLoss = stats.loss;
    ema = ema === null ? stats.loss : 0.9 * ema + 0.1 * stats.loss;
    o.onProgress?.(step + 1, o.steps, ema);
  }
  // Publish atomically: write into a temporary directory, then rename it into place.
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  policy.saveSync(tmp, { optimizer: false });
  o.tokenizer.save(tmp);
  writeFileSync(
    path.join(tmp, 'base.json'),
    JSON.stringify({ key, task: o.task.name, preset: o.preset, seed: o.seed, steps: o.steps, lr: o.lr, batch, examples: examples.length, finalLoss }, null, 2),
  );
  policy.dispose();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  renameSync(tmp, dir);
  return { dir, cached: false, examples: examples.length, finalLoss };
}
