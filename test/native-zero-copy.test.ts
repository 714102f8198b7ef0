// Zero-copy proof: the core reads the caller's typed-array memory by pointer and writes results
// straight into caller-provided (SharedArrayBuffer-backed) arrays. Addresses come from an
// independent hook (bufferAddress reads the JS array; lastBorrowedAddresses records what the addon
// handed to the core), so equality means no copy was made on the way in.
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import {
  allocGenerateOutputs,
  bufferAddress,
  lastBorrowedAddresses,
  loadBinding,
  packSequences,
  packTrainBatch,
  Policy,
} from '../src/native/index.js';

const p = Policy.createSync({ preset: 'tiny', vocabSize: 320, seed: 5 });
afterAll(() => p.dispose());

describe('zero-copy inputs', () => {
  it('the core receives the exact address of each input array, including subarray views', () => {
    const batch = packSequences([[1, 2, 3, 4], [5, 6, 7]]);
    p.forwardLogprobsSync(batch);
    const seen = lastBorrowedAddresses();
    expect(seen['batch.tokens']).toBe(bufferAddress(batch.tokens));
    expect(seen['batch.cuSeqlens']).toBe(bufferAddress(batch.cuSeqlens));

    // A view at an offset into a bigger SharedArrayBuffer: the address is base + byteOffset.
    const sab = new SharedArrayBuffer(64 * 4);
    const whole = new Int32Array(sab);
    const view = whole.subarray(10, 17);
    view.set([9, 8, 7, 6, 5, 4, 3]);
    const cu = new Int32Array([0, 7]);
    p.forwardLogprobsSync({ tokens: view, cuSeqlens: cu });
    const seen2 = lastBorrowedAddresses();
    expect(seen2['batch.tokens']).toBe(bufferAddress(whole) + 40n);
    expect(seen2['batch.tokens']).toBe(bufferAddress(view));
  });

  it('training inputs are borrowed too', () => {
    const b = packTrainBatch([{ promptTokens: [1, 2], completionTokens: [3, 4], logprobs: [-1, -1], advantage: 1 }]);
    p.accumulateSync(b, {}, { track: false });
    const seen = lastBorrowedAddresses();
    expect(seen['batch.tokens']).toBe(bufferAddress(b.tokens));
    expect(seen['batch.lossMask']).toBe(bufferAddress(b.lossMask));
    expect(seen['batch.oldLogp']).toBe(bufferAddress(b.oldLogp!));
    expect(seen['batch.advantages']).toBe(bufferAddress(b.advantages!));
    p.zeroGrad();
  });
});

describe('zero-copy outputs', () => {
  it('generate writes into the caller SharedArrayBuffer in place (seen through a second view)', async () => {
    const prompts = packSequences([[3, 1, 4], [1, 5]]);
    const out = allocGenerateOutputs(2, 6);
    out.tokens.fill(-7);
    out.lengths.fill(-7);
    const sab = out.tokens.buffer as SharedArrayBuffer;
    const r = await p.generate({ prompts, maxNewTokens: 6, callIds: [1n, 2n], out, stopTokens: [] });
    // The result arrays are the caller's arrays, not copies.
    expect(r.tokens).toBe(out.tokens);
    expect(r.lengths).toBe(out.lengths);
    // An independent view of the same memory sees the tokens: the native side wrote there.
    const second = new Int32Array(sab);
    expect(Array.from(second)).toEqual(Array.from(out.tokens));
    expect(second.every((t) => t >= 0 && t < 320)).toBe(true);
    expect(Array.from(out.lengths)).toEqual([6, 6]);
    expect(lastBorrowedAddresses()['request.outTokens']).toBe(bufferAddress(out.tokens));
  });

  it('forwardLogprobs writes into a caller array at an offset and leaves the rest untouched', () => {
    const batch = packSequences([[1, 2, 3]]);
    const big = new Float32Array(new SharedArrayBuffer(8 * 4)).fill(99);
    const dst = big.subarray(2, 5);
    const r = p.forwardLogprobsSync(batch, { out: dst });
    expect(r.logp).toBe(dst);
    expect(big[0]).toBe(99);
    expect(big[1]).toBe(99);
    expect(big[2]).toBe(0); // first token of the sequence
    expect(big[3]).toBeLessThan(0);
    expect(big[4]).toBeLessThan(0);
    expect(big[5]).toBe(99);
  });

  it('plain ArrayBuffer-backed arrays work the same way', () => {
    const batch = packSequences([[1, 2, 3]], { shared: false });
    const a = p.forwardLogprobsSync(batch).logp;
    const b = p.forwardLogprobsSync(packSequences([[1, 2, 3]])).logp;
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('an async call pins its arrays: they survive a full GC while the call runs', async () => {
    // Expose V8's gc() at runtime (the flag takes effect for contexts created afterwards).
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const native = loadBinding();
    const rows = 16;
    const prompts = packSequences(Array.from({ length: rows }, (_, i) => [1 + i, 2, 3]));
    const callIds = new BigUint64Array(rows).map((_, i) => BigInt(i));
    // The GC must run while the call is still going; grow the call until it does (fast machines).
    let gcDuringCall = false;
    for (let maxNew = 100; maxNew <= 3200 && !gcDuringCall; maxNew *= 4) {
      let weak: WeakRef<Int32Array> | undefined;
      let settled = false;
      const pending = (() => {
        // Outputs referenced only by the request object, which goes out of scope right away.
        const out = allocGenerateOutputs(rows, maxNew);
        weak = new WeakRef(out.tokens);
        return native.generate(p.handle, {
          prompts, maxNewTokens: new Int32Array(rows).fill(maxNew), callIds, stopTokens: [],
          outTokens: out.tokens, outLogp: out.logp, outLengths: out.lengths, outFinish: out.finish,
        });
      })().then((st) => { settled = true; return st; });
      await new Promise((r) => setTimeout(r, 0)); // a new job: the WeakRef no longer keeps it alive
      gc();
      gc();
      gcDuringCall = !settled;
      // Without the addon's references the array would be collected here (and the core would
      // then write into freed memory).
      expect(weak!.deref()).toBeInstanceOf(Int32Array);
      expect((await pending).newTokens).toBe(rows * maxNew);
    }
    expect(gcDuringCall).toBe(true);
  });
});
