// The pool's schedules: the tuner explores both, then keeps the measured-faster one per stage shape
// and re-measures the other now and then; under either schedule the engine draws exactly the same
// completions, and 'serial' never has more threads in flight than the budget.
import { afterAll, describe, expect, it } from 'vitest';
import { Policy } from '../src/native/index.js';
import { RolloutEngine, ScheduleTuner, stageShape, type Schedule } from '../src/rollout/index.js';
import { ByteTokenizer } from '../src/tokenizer/byte-tokenizer.js';
import type { SampleRequest } from '../src/workflows/sampler.js';
import { callIdOf } from '../src/workflows/sampler.js';

/** Runs `calls` calls of one shape whose cost per token is `cost(schedule, call)`; returns the schedules used. */
function drive(t: ScheduleTuner, shape: string, calls: number, cost: (s: Schedule, call: number) => number): Schedule[] {
  const ran: Schedule[] = [];
  for (let i = 0; i < calls; i++) {
    const s = t.next(shape);
    ran.push(s);
    t.record(shape, s, cost(s, i) * 100, 100);
  }
  return ran;
}

describe('schedule tuner', () => {
  it('explores both schedules alternately, then keeps the cheaper one and re-measures the other every 10th call', () => {
    const t = new ScheduleTuner();
    const ran = drive(t, 'x', 30, (s) => (s === 'serial' ? 1 : 1.2));
    expect(ran.slice(0, 8)).toEqual(['split', 'serial', 'split', 'serial', 'split', 'serial', 'split', 'serial']);
    // Calls 10, 20 and 30 (1-based) re-measure split; every other call after exploring is serial.
    ran.slice(8).forEach((s, i) => expect(s, `call ${i + 9}`).toBe((i + 9) % 10 === 0 ? 'split' : 'serial'));
    const [r] = t.report();
    expect(r).toMatchObject({ shape: 'x', calls: 30, decided: true, choice: 'serial' });
    expect(r!.split!.calls).toBe(7);
    expect(r!.serial!.cost).toBeCloseTo(1, 12);
  });

  it('one slow call does not flip the choice; a lasting change of regime does', () => {
    const t = new ScheduleTuner();
    // Split is faster, except for one call slowed by a noisy neighbour.
    const ran = drive(t, 'x', 20, (s, i) => (s === 'split' ? (i === 10 ? 5 : 1) : 1.1));
    expect(ran.slice(10, 20).filter((s) => s === 'split').length).toBe(9);
    // From now on split costs 1.5: within a few calls its recent median moves past serial's.
    const later = drive(t, 'x', 20, (s) => (s === 'split' ? 1.5 : 1.1));
    expect(later.slice(-8).filter((s) => s === 'serial').length).toBeGreaterThanOrEqual(7);
    expect(t.report()[0]!.choice).toBe('serial');
  });

  it('keeps exploring while the two are too close to tell apart, at most 8 calls each', () => {
    const t = new ScheduleTuner();
    // +-10% noise around equal means: never separated, so exploration runs to its limit.
    const noise = [1.1, 0.9, 1.0, 1.08, 0.93, 1.02, 0.97, 1.05];
    const ran = drive(t, 'x', 16, (s, i) => noise[(i >> 1) % noise.length]! * (s === 'split' ? 1 : 1.01));
    expect(ran).toEqual(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 'split' : 'serial')));
    expect(t.report()[0]!.decided).toBe(false);
    drive(t, 'x', 1, () => 1);
    expect(t.report()[0]!.decided).toBe(true);
    // A clear 20% difference under the same noise is settled after the minimum of 4 calls each.
    const u = new ScheduleTuner();
    drive(u, 'y', 9, (s, i) => noise[(i >> 1) % noise.length]! * (s === 'split' ? 1 : 1.25));
    expect(u.report()[0]).toMatchObject({ decided: true, choice: 'split' });
  });

  it('keeps shapes apart and ignores calls that generated nothing', () => {
    const t = new ScheduleTuner();
    drive(t, stageShape(1, 64), 12, (s) => (s === 'split' ? 1 : 2));
    drive(t, stageShape(3, 96), 12, (s) => (s === 'split' ? 2 : 1));
    t.record(stageShape(1, 64), 'serial', 1, 0);
    expect(stageShape(1, 64)).toBe(stageShape(1, 127));
    expect(stageShape(1, 64)).not.toBe(stageShape(1, 128));
    expect(t.report().map((r) => [r.shape, r.choice])).toEqual([
      [stageShape(1, 64), 'split'],
      [stageShape(3, 96), 'serial'],
    ]);
    expect(() => new ScheduleTuner({ refreshEvery: 1 })).toThrow(/refreshEvery/);
    expect(() => new ScheduleTuner({ window: 2 })).toThrow(/window/);
  });
});

describe('engine schedules', () => {
  const tok = new ByteTokenizer();
  const policies = new Map(['a', 'b', 'c'].map((n, i) => [n, Policy.createSync({ preset: 'tiny', vocabSize: tok.vocabSize, seed: 40 + i })]));
  const engines: RolloutEngine[] = [];
  afterAll(async () => {
    for (const e of engines) await e.destroy();
    for (const p of policies.values()) p.dispose();
  });
  const engine = (schedule: 'auto' | 'split' | 'serial') => {
    const e = new RolloutEngine({ policies, tokenizer: tok, sampling: { temperature: 0.7, seed: 3 }, stopTokens: [], cores: 2, schedule });
    engines.push(e);
    return e;
  };
  const requests = (step: number): SampleRequest[] =>
    Array.from({ length: 12 }, (_, i) => {
      const key = { seed: 1, step, episode: i, call: 0 };
      return {
        callId: callIdOf(key),
        key,
        policy: ['a', 'b', 'c'][i % 3]!,
        role: 'solver',
        copy: 0,
        turn: 0,
        messages: [{ role: 'user' as const, content: `What is ${i} + ${step}?` }],
        maxTokens: 4 + (i % 5),
      };
    });

  it('split and serial draw identical completions; serial runs one whole-policy call at a time on every thread', async () => {
    const split = engine('split');
    const serial = engine('serial');
    const a = await split.sample(requests(1));
    expect(split.lastStats).toMatchObject({ schedule: 'split', calls: 4 }); // 3 policies cut for 2 workers
    const b = await serial.sample(requests(1));
    expect(serial.lastStats).toMatchObject({ schedule: 'serial', calls: 3 });
    expect(b.map((r) => Array.from(r.completionTokens))).toEqual(a.map((r) => Array.from(r.completionTokens)));
    expect(b.map((r) => Array.from(r.logprobs))).toEqual(a.map((r) => Array.from(r.logprobs)));
    expect(split.scheduleReport()).toEqual([]);
  });

  it('auto explores both schedules per shape, samples the same completions, and reports what it measured', async () => {
    const auto = engine('auto');
    const ref = engine('split');
    const ran: string[] = [];
    for (let step = 2; step < 12; step++) {
      const got = await auto.sample(requests(step));
      ran.push(auto.lastStats!.schedule!);
      const want = await ref.sample(requests(step));
      expect(got.map((r) => r.text)).toEqual(want.map((r) => r.text));
    }
    expect(ran.slice(0, 8)).toEqual(['split', 'serial', 'split', 'serial', 'split', 'serial', 'split', 'serial']);
    const [r] = auto.scheduleReport();
    expect(r).toMatchObject({ shape: stageShape(3, 12), calls: 10 });
    expect(r!.split!.calls + r!.serial!.calls).toBe(10);
    expect(r!.split!.cost).toBeGreaterThan(0);
  });

  it('rejects an unknown schedule by name', () => {
    expect(() => engine('fastest' as 'auto')).toThrow(/schedule must be 'auto', 'split' or 'serial', got 'fastest'/);
  });
});
