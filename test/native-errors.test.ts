// Bad input never crashes: every validation case throws (sync) or rejects (async) a TypeError or
// RangeError whose message names the argument; core failures (corrupt checkpoints) become Errors
// with the core's message; and a fuzz loop over a real checkpoint's model.safetensors, run in a
// child process so a crash would be visible as an abnormal exit, never takes the process down.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addonPath, loadBinding, packSequences, Policy, setThreads, type NativeBinding } from '../src/native/index.js';

const V = 320;
const native: NativeBinding = loadBinding();
const policy = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 3 });
const h = policy.handle;
const tmpRoot = mkdtempSync(path.join(tmpdir(), 'troupe-errors-'));
afterAll(() => {
  policy.dispose();
  rmSync(tmpRoot, { recursive: true, force: true });
});

const i32 = (...x: number[]) => new Int32Array(x);
const f32 = (...x: number[]) => new Float32Array(x);
const batch = () => ({ tokens: i32(1, 2, 3, 4, 5), cuSeqlens: i32(0, 2, 5) });
const trainBatch = () => ({
  ...batch(),
  lossMask: new Uint8Array([0, 1, 0, 1, 1]),
  oldLogp: f32(0, -1, 0, -1, -1),
  advantages: f32(1, -1),
});
function genRequest(over: Record<string, unknown> = {}) {
  return {
    prompts: { tokens: i32(1, 2, 3), cuSeqlens: i32(0, 1, 3) },
    maxNewTokens: i32(4, 4),
    callIds: new BigUint64Array([1n, 2n]),
    stopTokens: [],
    outTokens: new Int32Array(8),
    outLogp: new Float32Array(8),
    outLengths: new Int32Array(2),
    outFinish: new Uint8Array(2),
    ...over,
  };
}

type ErrorClass = typeof TypeError | typeof RangeError;
interface Case {
  name: string;
  /** The synchronous call. */
  sync: () => unknown;
  /** The Promise form of the same call, when there is one. */
  async?: () => Promise<unknown>;
  type: ErrorClass;
  message: RegExp;
}

/** A case for a function that has both forms: `f` is called with the name and its Sync twin. */
function dual(name: string, fn: keyof NativeBinding, args: () => unknown[], type: ErrorClass, message: RegExp): Case {
  const call = (f: string) => (native as unknown as Record<string, (...a: unknown[]) => unknown>)[f](...args());
  return { name, sync: () => call(`${fn}Sync`), async: () => call(fn) as Promise<unknown>, type, message };
}
function single(name: string, sync: () => unknown, type: ErrorClass, message: RegExp): Case {
  return { name, sync, type, message };
}

const cases: Case[] = [
  // --- policy creation and handles ---
  dual('createPolicy without preset or config', 'createPolicy', () => [{ vocabSize: 10 }], TypeError, /createPolicy: options must have exactly one of options\.preset .* or options\.config/),
  dual('createPolicy unknown preset', 'createPolicy', () => [{ preset: 'huge' }], RangeError, /createPolicy: options\.preset: .*huge/),
  dual('createPolicy negative vocabSize', 'createPolicy', () => [{ preset: 'tiny', vocabSize: -1 }], RangeError, /options\.vocabSize must be an integer in \[1, /),
  dual('createPolicy negative seed', 'createPolicy', () => [{ preset: 'tiny', seed: -1 }], RangeError, /options\.seed must be an integer in \[0, /),
  dual('createPolicy misspelt option', 'createPolicy', () => [{ presett: 'tiny' }], TypeError, /options has unknown field 'presett'/),
  dual('createPolicy bad config field', 'createPolicy', () => [{ config: { ...policy.config, hidden_size: 'wide' } }], RangeError, /options\.config: .*hidden_size/),
  dual('unknown handle', 'forwardLogprobs', () => [424242, batch(), 1, new Float32Array(5)], RangeError, /forwardLogprobs: policy 424242 is not a live policy/),
  dual('handle of the wrong type', 'forwardLogprobs', () => ['1', batch(), 1, new Float32Array(5)], TypeError, /policy must be a policy handle \(number\) \(got string '1'\)/),
  dual('handle 0', 'step', () => [0, {}], RangeError, /policy must be an integer in \[1, /),
  dual('copy onto itself', 'copyPolicy', () => [h, h], RangeError, /dst and src must be different policies/),
  dual('readParams wrong length', 'readParams', () => [h, new Float32Array(10)], RangeError, /readParams: out must have exactly \d+ elements \(got 10\)/),
  dual('writeParams with NaN', 'writeParams', () => [h, new Float32Array(policy.numParameters).fill(NaN)], RangeError, /writeParams: params\[0\] must be finite \(got NaN\)/),
  dual('loadPolicy empty dir', 'loadPolicy', () => [''], RangeError, /loadPolicy: dir must be a non-empty directory path/),
  dual('savePolicy dir not a string', 'savePolicy', () => [h, 5], TypeError, /savePolicy: dir must be a string \(got number 5\)/),

  // --- packed batches ---
  dual('tokens of the wrong array type', 'forwardLogprobs', () => [h, { ...batch(), tokens: f32(1, 2, 3, 4, 5) }, 1, new Float32Array(5)], TypeError, /batch\.tokens must be an Int32Array \(got Float32Array\)/),
  dual('tokens as a plain array', 'forwardLogprobs', () => [h, { ...batch(), tokens: [1, 2, 3, 4, 5] }, 1, new Float32Array(5)], TypeError, /batch\.tokens must be an Int32Array \(got Array\)/),
  dual('batch missing', 'forwardLogprobs', () => [h, undefined, 1, new Float32Array(5)], TypeError, /batch must be an object \(got undefined\)/),
  dual('cuSeqlens not starting at 0', 'forwardLogprobs', () => [h, { ...batch(), cuSeqlens: i32(1, 2, 5) }, 1, new Float32Array(5)], RangeError, /batch\.cuSeqlens\[0\] must be 0 \(got 1\)/),
  dual('cuSeqlens decreasing', 'forwardLogprobs', () => [h, { ...batch(), cuSeqlens: i32(0, 4, 3, 5) }, 1, new Float32Array(5)], RangeError, /batch\.cuSeqlens must be non-decreasing \(batch\.cuSeqlens\[2\] = 3 < batch\.cuSeqlens\[1\] = 4\)/),
  dual('cuSeqlens not ending at tokens.length', 'forwardLogprobs', () => [h, { ...batch(), cuSeqlens: i32(0, 2, 4) }, 1, new Float32Array(5)], RangeError, /batch\.cuSeqlens last entry must equal batch\.tokens\.length = 5 \(got 4\)/),
  dual('cuSeqlens with no sequence', 'forwardLogprobs', () => [h, { tokens: i32(), cuSeqlens: i32(0) }, 1, new Float32Array(0)], RangeError, /batch\.cuSeqlens must have at least 2 entries/),
  dual('token id = vocab', 'forwardLogprobs', () => [h, { ...batch(), tokens: i32(1, 2, V, 4, 5) }, 1, new Float32Array(5)], RangeError, /batch\.tokens\[2\] must be a token id in \[0, 320\) \(got 320\)/),
  dual('negative token id', 'forwardLogits', () => [h, { ...batch(), tokens: i32(1, 2, 3, -4, 5) }, new Float32Array(5 * V)], RangeError, /batch\.tokens\[3\] must be a token id in \[0, 320\) \(got -4\)/),
  dual('outLogp too short', 'forwardLogprobs', () => [h, batch(), 1, new Float32Array(4)], RangeError, /outLogp must have at least 5 elements \(got 4\)/),
  dual('outEntropy of the wrong type', 'forwardLogprobs', () => [h, batch(), 1, new Float32Array(5), new Float64Array(5)], TypeError, /outEntropy must be a Float32Array \(got Float64Array\)/),
  dual('temperature zero', 'forwardLogprobs', () => [h, batch(), 0, new Float32Array(5)], RangeError, /forwardLogprobs: temperature must be > 0 \(got 0\)/),
  dual('temperature NaN', 'forwardLogprobs', () => [h, batch(), NaN, new Float32Array(5)], RangeError, /temperature must be a finite number \(got NaN\)/),
  dual('outLogits too short', 'forwardLogits', () => [h, batch(), new Float32Array(5 * V - 1)], RangeError, /outLogits must have at least 1600 elements/),

  // --- generate ---
  dual('generate without request', 'generate', () => [h], TypeError, /generate: request must be an object \(got undefined\)/),
  dual('maxNewTokens length mismatch', 'generate', () => [h, genRequest({ maxNewTokens: i32(4) })], RangeError, /request\.maxNewTokens must have exactly 2 elements \(got 1\)/),
  dual('negative maxNewTokens', 'generate', () => [h, genRequest({ maxNewTokens: i32(4, -1) })], RangeError, /request\.maxNewTokens\[1\] must be >= 0 \(got -1\)/),
  dual('maxNewTokens past the context', 'generate', () => [h, genRequest({ maxNewTokens: i32(4, 50000), stride: 50000, outTokens: new Int32Array(100000), outLogp: new Float32Array(100000) })], RangeError, /request\.maxNewTokens\[1\] = 50000 .* exceeds max_position_embeddings/),
  dual('callIds of the wrong type', 'generate', () => [h, genRequest({ callIds: new BigInt64Array(2) })], TypeError, /request\.callIds must be a BigUint64Array \(got BigInt64Array\)/),
  dual('callIds too short', 'generate', () => [h, genRequest({ callIds: new BigUint64Array(1) })], RangeError, /request\.callIds must have exactly 2 elements/),
  dual('topP zero', 'generate', () => [h, genRequest({ topP: 0 })], RangeError, /request\.topP must be in \(0, 1\] \(got 0\)/),
  dual('negative topK', 'generate', () => [h, genRequest({ topK: -1 })], RangeError, /request\.topK must be an integer in \[0, 320\]/),
  dual('negative temperature', 'generate', () => [h, genRequest({ temperature: -0.5 })], RangeError, /request\.temperature must be >= 0/),
  dual('stride below maxNewTokens', 'generate', () => [h, genRequest({ stride: 3 })], RangeError, /request\.stride must be >= the largest request\.maxNewTokens \(4\) \(got 3\)/),
  dual('outTokens too short', 'generate', () => [h, genRequest({ outTokens: new Int32Array(7) })], RangeError, /request\.outTokens must have at least 8 elements \(got 7\)/),
  dual('outFinish of the wrong type', 'generate', () => [h, genRequest({ outFinish: new Int8Array(2) })], TypeError, /request\.outFinish must be a Uint8Array \(got Int8Array\)/),
  dual('stop token outside the vocabulary', 'generate', () => [h, genRequest({ stopTokens: [V + 1] })], RangeError, /request\.stopTokens\[0\] must be in \[0, 320\) \(got 321\)/),
  dual('empty prompt', 'generate', () => [h, genRequest({ prompts: { tokens: i32(1, 2, 3), cuSeqlens: i32(0, 0, 3) } })], RangeError, /request\.prompts sequence 0 is empty/),
  dual('misspelt sampling field', 'generate', () => [h, genRequest({ top_p: 0.9 })], TypeError, /request has unknown field 'top_p'/),

  // --- accumulate ---
  dual('NaN advantage', 'accumulate', () => [h, { ...trainBatch(), advantages: f32(1, NaN) }], RangeError, /accumulate: batch\.advantages\[1\] must be finite \(got NaN\)/),
  dual('infinite old logprob', 'accumulate', () => [h, { ...trainBatch(), oldLogp: f32(0, -1, 0, -Infinity, -1) }], RangeError, /batch\.oldLogp\[3\] must be finite \(got -Infinity\)/),
  dual('advantages length mismatch', 'accumulate', () => [h, { ...trainBatch(), advantages: f32(1, 1, 1) }], RangeError, /batch\.advantages must have exactly 2 elements \(got 3\)/),
  dual('advantages missing', 'accumulate', () => [h, { ...trainBatch(), advantages: undefined }], TypeError, /batch\.advantages must be a Float32Array \(got undefined\)/),
  dual('lossMask length mismatch', 'accumulate', () => [h, { ...trainBatch(), lossMask: new Uint8Array(4) }], RangeError, /batch\.lossMask must have exactly 5 elements \(got 4\)/),
  dual('lossMask value 2', 'accumulate', () => [h, { ...trainBatch(), lossMask: new Uint8Array([2, 0, 0, 0, 0]) }], RangeError, /batch\.lossMask\[0\] must be 0 or 1 \(got 2\)/),
  dual('unknown aggregation', 'accumulate', () => [h, trainBatch(), { aggregation: 'mean' }], RangeError, /loss\.aggregation must be one of 'token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'constant' \(got 'mean'\)/),
  dual('unknown KL estimator', 'accumulate', () => [h, trainBatch(), { kl: 'k4' }], RangeError, /loss\.kl must be one of 'none', 'k1', 'k2', 'k3' \(got 'k4'\)/),
  dual('KL without reference log-probs', 'accumulate', () => [h, trainBatch(), { kl: 'k3', klCoef: 0.1 }], TypeError, /batch\.refLogp must be a Float32Array when loss\.kl is not 'none'/),
  dual('negative clipEpsLow', 'accumulate', () => [h, trainBatch(), { clipEpsLow: -0.1 }], RangeError, /loss\.clipEpsLow must be in \[0, 1\) \(got -0\.1/),
  dual('loss temperature zero', 'accumulate', () => [h, trainBatch(), { temperature: 0 }], RangeError, /loss\.temperature must be > 0/),
  dual('constant aggregation without a norm', 'accumulate', () => [h, trainBatch(), { aggregation: 'constant' }], RangeError, /loss\.constantNorm must be > 0 when loss\.aggregation is 'constant'/),
  dual('globalNumSeqs below the piece', 'accumulate', () => [h, trainBatch(), { globalNumSeqs: 1 }], RangeError, /loss\.globalNumSeqs must be 0 \(this piece alone\) or >= the piece's 2 sequences/),
  dual('maxTokensPerMicro zero', 'accumulate', () => [h, trainBatch(), {}, { maxTokensPerMicro: 0 }], RangeError, /piece\.maxTokensPerMicro must be an integer in \[1, /),
  dual('emaDecay above 1', 'accumulate', () => [h, trainBatch(), {}, { emaDecay: 2 }], RangeError, /piece\.emaDecay must be in \[0, 1\] \(got 2\)/),
  dual('role not a string', 'accumulate', () => [h, trainBatch(), {}, { role: 3 }], TypeError, /piece\.role must be a string \(got number 3\)/),

  // --- step ---
  dual('negative lr', 'step', () => [h, { lr: -1e-5 }], RangeError, /step: optim\.lr must be >= 0 \(got -1e-05\)/),
  dual('eps zero', 'step', () => [h, { eps: 0 }], RangeError, /optim\.eps must be > 0 \(got 0\)/),
  dual('beta1 = 1', 'step', () => [h, { beta1: 1 }], RangeError, /optim\.beta1 must be in \[0, 1\) \(got 1\)/),
  dual('weight decay NaN', 'step', () => [h, { weightDecay: NaN }], RangeError, /optim\.weightDecay must be a finite number \(got NaN\)/),
  dual('misspelt optimizer field', 'step', () => [h, { learningRate: 1 }], TypeError, /optim has unknown field 'learningRate'/),

  // --- process functions ---
  single('setThreads 0', () => native.setThreads(0), RangeError, /setThreads: n must be an integer in \[1, 4096\] \(got 0\)/),
  single('setThreads unknown scope', () => native.setThreads(1, 'global' as 'process'), RangeError, /setThreads: scope must be 'process' or 'thread' \(got 'global'\)/),
  single('dispose a handle this thread does not hold', () => native.disposePolicy(999999), RangeError, /disposePolicy: policy 999999 is not held by this thread/),
  single('bufferAddress of a non-array', () => native.bufferAddress({} as ArrayBufferView), TypeError, /bufferAddress: array must be a typed array/),
];

describe('argument validation', () => {
  for (const c of cases) {
    it(`${c.name}: throws ${c.type.name} naming the argument`, async () => {
      let err: unknown;
      try {
        c.sync();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(c.type);
      expect((err as Error).message).toMatch(c.message);
      if (c.async) {
        const rejected = await c.async().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(rejected).toBeInstanceOf(c.type);
        expect((rejected as Error).message).toBe((err as Error).message);
      }
    });
  }

  it('a failed call leaves the policy usable', () => {
    const lp = policy.forwardLogprobsSync(packSequences([[1, 2, 3]])).logp;
    expect(lp[1]).toBeLessThan(0);
    expect(policy.optimizerSteps).toBe(0);
  });

  it('the TypeScript layer rejects a disposed policy and a bad stride before allocating', () => {
    const p = Policy.createSync({ seed: 1 });
    expect(() => p.generateSync({ prompts: packSequences([[1]]), maxNewTokens: 2, callIds: [1n], stride: -1 })).toThrow(/request\.stride must be a non-negative integer/);
    p.dispose();
    expect(() => p.forwardLogprobsSync(packSequences([[1, 2]]))).toThrow(/was disposed/);
  });
});

describe('corrupt checkpoints', () => {
  const good = path.join(tmpRoot, 'good');
  policy.saveSync(good);
  const modelBytes = readFileSync(path.join(good, 'model.safetensors'));

  function variant(name: string, mutate: (dir: string) => void): string {
    const dir = path.join(tmpRoot, name);
    mkdirSync(dir, { recursive: true });
    copyFileSync(path.join(good, 'config.json'), path.join(dir, 'config.json'));
    copyFileSync(path.join(good, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    mutate(dir);
    return dir;
  }

  async function expectLoadError(dir: string, message: RegExp): Promise<void> {
    expect(() => native.loadPolicySync(dir)).toThrow(message);
    await expect(native.loadPolicy(dir)).rejects.toThrow(message);
    await expect(Policy.load(dir)).rejects.toBeInstanceOf(Error);
  }

  it('the intact checkpoint loads (the fixtures below differ from it in one way each)', () => {
    const q = Policy.loadSync(good);
    expect(q.numParameters).toBe(policy.numParameters);
    q.dispose();
  });

  it('a missing directory', async () => {
    await expectLoadError(path.join(tmpRoot, 'nope'), /loadPolicy: .*config\.json/);
  });

  it('a missing config.json', async () => {
    await expectLoadError(variant('no-config', (d) => unlinkSync(path.join(d, 'config.json'))), /loadPolicy: .*no config\.json/);
  });

  it('a config.json that is not JSON', async () => {
    await expectLoadError(variant('bad-config', (d) => writeFileSync(path.join(d, 'config.json'), '{"hidden_size": 128,')), /loadPolicy: .*config\.json/);
  });

  it('a missing model.safetensors', async () => {
    await expectLoadError(variant('no-model', (d) => unlinkSync(path.join(d, 'model.safetensors'))), /loadPolicy: .*safetensors/);
  });

  it('a truncated model.safetensors', async () => {
    const dir = variant('truncated', (d) => writeFileSync(path.join(d, 'model.safetensors'), modelBytes.subarray(0, modelBytes.length >> 1)));
    await expectLoadError(dir, /loadPolicy: .*model\.safetensors/);
  });

  it('a garbage safetensors header', async () => {
    const dir = variant('garbage-header', (d) => {
      const b = Buffer.from(modelBytes);
      b.write('#not json at all#', 8, 'latin1');
      writeFileSync(path.join(d, 'model.safetensors'), b);
    });
    await expectLoadError(dir, /loadPolicy: .*model\.safetensors/);
  });

  it('a header length larger than the file', async () => {
    const dir = variant('huge-header', (d) => {
      const b = Buffer.from(modelBytes);
      b.writeBigUInt64LE(1n << 40n, 0);
      writeFileSync(path.join(d, 'model.safetensors'), b);
    });
    await expectLoadError(dir, /loadPolicy: .*model\.safetensors/);
  });
});

// The fuzz runs in a child process: a crash (segfault, abort) there is an abnormal exit here.
const FUZZ = `
const fs = require('node:fs');
const path = require('node:path');
const [addonFile, goodDir, workDir, iterations] = process.argv.slice(1);
const addon = require(addonFile);
addon.setThreads(1);
const original = fs.readFileSync(path.join(goodDir, 'model.safetensors'));
const headerLen = Number(original.readBigUInt64LE(0));
let state = 0x9e3779b9;
const rand = (n) => { state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; return state % n; };
fs.mkdirSync(workDir, { recursive: true });
fs.copyFileSync(path.join(goodDir, 'config.json'), path.join(workDir, 'config.json'));
const target = path.join(workDir, 'model.safetensors');
const counts = { loaded: 0, rejected: 0 };
const kinds = {};
for (let i = 0; i < Number(iterations); i++) {
  let b = Buffer.from(original);
  const kind = rand(6);
  if (kind === 0) { // flip bytes in the header (JSON structure, offsets, dtypes, shapes)
    for (let k = 1 + rand(4); k > 0; k--) b[8 + rand(headerLen)] = rand(256);
  } else if (kind === 1) { // truncate anywhere
    b = b.subarray(0, rand(b.length));
  } else if (kind === 2) { // tamper with the header length
    b.writeBigUInt64LE(BigInt(rand(2) ? rand(headerLen * 2 + 16) : 2 ** 32 + rand(1 << 30)), 0);
  } else if (kind === 3) { // replace a digit in the header (data_offsets / shapes)
    const s = b.subarray(8, 8 + headerLen).toString('latin1');
    const digits = [...s.matchAll(/[0-9]/g)].map((m) => m.index);
    if (digits.length) b[8 + digits[rand(digits.length)]] = 48 + rand(10);
  } else if (kind === 4) { // flip bytes anywhere, data included (loads, with odd weights)
    for (let k = 1 + rand(8); k > 0; k--) b[rand(b.length)] = rand(256);
  } else { // append garbage
    b = Buffer.concat([b, Buffer.alloc(1 + rand(64), rand(256))]);
  }
  // A new file each time: a checkpoint is never truncated in place under a reader.
  try { fs.unlinkSync(target); } catch {}
  fs.writeFileSync(target, b);
  kinds[kind] = (kinds[kind] || 0) + 1;
  try {
    const h = addon.loadPolicySync(workDir);
    const out = new Float32Array(4);
    addon.forwardLogprobsSync(h, { tokens: new Int32Array([1, 2, 3, 4]), cuSeqlens: new Int32Array([0, 4]) }, 1, out);
    addon.disposePolicy(h);
    counts.loaded++;
  } catch (e) {
    if (!(e instanceof Error) || !/^loadPolicy: /.test(e.message)) throw new Error('unexpected failure: ' + e);
    counts.rejected++;
  }
}
console.log(JSON.stringify({ ...counts, kinds }));
`;

describe('checkpoint fuzzing', () => {
  it('hundreds of mutated model.safetensors files never crash the process', async () => {
    const good = path.join(tmpRoot, 'fuzz-source');
    policy.saveSync(good);
    const iterations = 300;
    const child = spawn(process.execPath, ['-e', FUZZ, addonPath(), good, path.join(tmpRoot, 'fuzz'), String(iterations)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('exit', (c, s) => res([c, s])));
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { loaded: number; rejected: number };
    expect(result.loaded + result.rejected).toBe(iterations);
    expect(result.rejected).toBeGreaterThan(iterations / 4); // most mutations must be caught
    expect(result.loaded).toBeGreaterThan(0); // data-only flips still load
  }, 300_000);
});

// Keep the thread budget of later suites in this process unchanged.
afterAll(() => setThreads(loadBinding().hardwareCores()));
