// Worker threads attach to the main thread's policy by handle: weights exist once per process,
// concurrent sampling from several threads gives exactly the main thread's results for the same
// call ids, and a worker that exits without disposing gives its reference back.
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { addonPath, allocInt32, callIdArray, completionTokens, listPolicies, packSequences, Policy } from '../src/native/index.js';

// Workers load the addon file directly (plain CommonJS: no TypeScript loader in a worker).
const WORKER = `
const { workerData: d, parentPort } = require('node:worker_threads');
const addon = require(d.addon);
try {
  const h = addon.retainPolicy(d.handle);
  addon.setThreads(1, 'thread');
  // Barrier: every worker is attached before any starts sampling, so the calls overlap.
  const bar = new Int32Array(d.barrier);
  Atomics.add(bar, 0, 1);
  Atomics.notify(bar, 0);
  for (let v; (v = Atomics.load(bar, 0)) < d.parties; ) Atomics.wait(bar, 0, v, 100);
  const cu = new Int32Array(d.cuSeqlens);
  const t0 = cu[d.lo], rows = d.hi - d.lo;
  const local = new Int32Array(rows + 1).map((_, i) => cu[d.lo + i] - t0);
  // Views into the main thread's SharedArrayBuffers: results land there without a copy.
  const stats = addon.generateSync(h, {
    prompts: { tokens: new Int32Array(d.tokens, 4 * t0, cu[d.hi] - t0), cuSeqlens: local },
    maxNewTokens: new Int32Array(rows).fill(d.maxNew),
    callIds: new BigUint64Array(d.callIds, 8 * d.lo, rows),
    temperature: 0.7, seed: d.seed, stopTokens: [], stride: d.maxNew,
    outTokens: new Int32Array(d.outTokens, 4 * d.lo * d.maxNew, rows * d.maxNew),
    outLogp: new Float32Array(d.outLogp, 4 * d.lo * d.maxNew, rows * d.maxNew),
    outLengths: new Int32Array(d.outLengths, 4 * d.lo, rows),
    outFinish: new Uint8Array(d.outFinish, d.lo, rows),
  });
  const mem = addon.memory(h);
  const refs = addon.listPolicies().find((e) => e.handle === d.handle).refs;
  if (!d.leak) addon.disposePolicy(h);
  parentPort.postMessage({ ok: true, stats, weights: mem.current.weights, refs, threads: addon.getThreads() });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String(e && e.message) });
}
`;

interface WorkerReply {
  ok: boolean;
  error?: string;
  stats?: { newTokens: number };
  weights?: number;
  refs?: number;
  threads?: number;
}

function runWorker(data: Record<string, unknown>): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { addon: addonPath(), ...data } });
    let reply: WorkerReply | undefined;
    w.on('message', (m: WorkerReply) => (reply = m));
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 && reply ? resolve(reply) : reject(new Error(`worker exit ${code}`))));
  });
}

const V = 320;
const p = Policy.createSync({ preset: 'tiny', vocabSize: V, seed: 77 });
afterAll(() => p.dispose());

describe('worker threads share one policy by handle', () => {
  const rows = 8, maxNew = 16, seed = 12;
  const prompts = packSequences(Array.from({ length: rows }, (_, i) => Array.from({ length: 3 + (i % 4) }, (_, j) => (7 * i + 3 * j + 1) % V)));
  const ids = callIdArray(Array.from({ length: rows }, (_, i) => 1000 + i));

  it('two workers sampling concurrently reproduce the main thread exactly, weights counted once', async () => {
    const reference = p.generateSync({ prompts, maxNewTokens: maxNew, callIds: ids, sampling: { seed }, stopTokens: [] });
    const out = {
      outTokens: new SharedArrayBuffer(4 * rows * maxNew),
      outLogp: new SharedArrayBuffer(4 * rows * maxNew),
      outLengths: new SharedArrayBuffer(4 * rows),
      outFinish: new SharedArrayBuffer(rows),
    };
    new Int32Array(out.outTokens).fill(-1);
    const shared = {
      handle: p.handle,
      tokens: prompts.tokens.buffer,
      cuSeqlens: prompts.cuSeqlens.buffer,
      callIds: ids.buffer,
      barrier: allocInt32(1).buffer,
      parties: 2,
      maxNew,
      seed,
      ...out,
    };
    // The main thread samples asynchronously at the same time as the two workers.
    const [a, b, mainAgain] = await Promise.all([
      runWorker({ ...shared, lo: 0, hi: 4 }),
      runWorker({ ...shared, lo: 4, hi: 8 }),
      p.generate({ prompts, maxNewTokens: maxNew, callIds: ids, sampling: { seed }, stopTokens: [] }),
    ]);
    for (const r of [a, b]) {
      expect(r.error).toBeUndefined();
      expect(r.stats!.newTokens).toBe(4 * maxNew);
      expect(r.weights).toBe(4 * p.numParameters); // the worker sees the same, single copy
      expect(r.refs).toBeGreaterThanOrEqual(2); // main's reference + this worker's
      expect(r.threads).toBe(1); // the worker's own thread budget
    }
    expect(Array.from(new Int32Array(out.outTokens))).toEqual(Array.from(reference.tokens));
    expect(Array.from(new Float32Array(out.outLogp))).toEqual(Array.from(reference.logp));
    expect(Array.from(new Int32Array(out.outLengths))).toEqual(Array.from(reference.lengths));
    expect(Array.from(mainAgain.tokens)).toEqual(Array.from(reference.tokens));
    for (let r = 0; r < rows; r++) expect(completionTokens(mainAgain, r).length).toBe(maxNew);

    const mem = p.memory();
    expect(mem.current.weights).toBe(4 * p.numParameters);
    expect(mem.peak.weights).toBe(4 * p.numParameters);
    expect(listPolicies().filter((e) => e.handle === p.handle)).toEqual([{ handle: p.handle, refs: 1 }]);
  });

  it('a worker that exits without disposing returns its reference', async () => {
    const r = await runWorker({
      handle: p.handle, tokens: prompts.tokens.buffer, cuSeqlens: prompts.cuSeqlens.buffer, callIds: ids.buffer,
      barrier: allocInt32(1).buffer, parties: 1, maxNew: 2, seed, lo: 0, hi: 1, leak: true,
      outTokens: new SharedArrayBuffer(8), outLogp: new SharedArrayBuffer(8), outLengths: new SharedArrayBuffer(4), outFinish: new SharedArrayBuffer(1),
    });
    expect(r.ok).toBe(true);
    expect(r.refs).toBe(2);
    expect(listPolicies().find((e) => e.handle === p.handle)?.refs).toBe(1);
  });

  it('a worker attaching to an unknown handle gets an error naming the handle', async () => {
    const r = await runWorker({ handle: 987654, barrier: allocInt32(1).buffer, parties: 1 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/retainPolicy: policy 987654 is not a live policy/);
  });

  it('a policy created in a worker outlives the worker while the main thread holds it', async () => {
    const code = `
      const { workerData: d, parentPort } = require('node:worker_threads');
      const addon = require(d.addon);
      const h = addon.createPolicySync({ preset: 'tiny', vocabSize: 320, seed: 5 });
      parentPort.postMessage(h);
      // Wait until the main thread has attached, then exit without disposing.
      const flag = new Int32Array(d.flag);
      Atomics.wait(flag, 0, 0, 10000);
    `;
    const flag = allocInt32(1);
    const w = new Worker(code, { eval: true, workerData: { addon: addonPath(), flag: flag.buffer } });
    const handle = await new Promise<number>((res) => w.once('message', res));
    const q = Policy.fromHandle(handle);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await new Promise((res) => w.once('exit', res));
    expect(listPolicies().find((e) => e.handle === handle)?.refs).toBe(1);
    const lp = q.forwardLogprobsSync(packSequences([[1, 2, 3]])).logp;
    expect(lp[2]).toBeLessThan(0);
    q.dispose();
    expect(listPolicies().find((e) => e.handle === handle)).toBeUndefined();
  });
});
