// Routing tables: shared, isolated, custom (role and role#copy keys) and their validation errors.
import { describe, expect, it } from 'vitest';
import { customRouting, isolatedRouting, makeRouting, sharedRouting } from '../src/rl/routing.js';
import { createWorkflow } from '../src/workflows/registry.js';

const voting = createWorkflow('voting').roles;
const orch = createWorkflow('orch-workers').roles;

describe('routing tables', () => {
  it('shared: every role and copy -> "policy"', () => {
    const t = sharedRouting(orch);
    expect(t.kind).toBe('shared');
    expect(t.policies).toEqual(['policy']);
    expect([t.policyFor('orchestrator', 0), t.policyFor('worker', 2), t.policyFor('synthesizer', 0)]).toEqual([
      'policy',
      'policy',
      'policy',
    ]);
    expect(sharedRouting(orch, 'base').policyFor('worker', 1)).toBe('base');
  });

  it('isolated: one policy per role type, copies share it', () => {
    const t = isolatedRouting(orch);
    expect(t.policies).toEqual(['orchestrator', 'worker', 'synthesizer']);
    expect([t.policyFor('worker', 0), t.policyFor('worker', 2)]).toEqual(['worker', 'worker']);
    expect(t.policyFor('synthesizer', 0)).toBe('synthesizer');
  });

  it('custom: role keys, copy keys win over role keys', () => {
    const t = customRouting({ generator: 'voters', 'generator#2': 'odd', aggregator: 'judge' }, voting);
    expect(t.kind).toBe('custom');
    expect([0, 1, 2].map((c) => t.policyFor('generator', c))).toEqual(['voters', 'voters', 'odd']);
    expect(t.policyFor('aggregator', 0)).toBe('judge');
    expect(t.policies).toEqual(['voters', 'odd', 'judge']);
  });

  it('custom: voters shared, aggregator separate', () => {
    const t = makeRouting({ generator: 'a', aggregator: 'b' }, voting);
    expect([t.policyFor('generator', 1), t.policyFor('aggregator', 0)]).toEqual(['a', 'b']);
  });

  it('errors name unknown and unmapped roles', () => {
    expect(() => customRouting({ generator: 'a', critic: 'b' }, voting)).toThrow(
      /unknown roles: critic; unmapped roles: aggregator/,
    );
    expect(() => customRouting({ 'voter#1': 'a', generator: 'g', aggregator: 'x' }, voting)).toThrow(/unknown roles: voter#1/);
    expect(() => customRouting({}, voting)).toThrow(/unmapped roles: generator, aggregator/);
    expect(() => customRouting({ 'generator#x': 'a', aggregator: 'b' }, voting)).toThrow(/bad key 'generator#x'/);
    expect(() => customRouting({ generator: '', aggregator: 'b' }, voting)).toThrow(/empty policy name for 'generator'/);
  });

  it('a copy-only mapping fails at call time for an unmapped copy', () => {
    const t = customRouting({ 'generator#0': 'v0', 'generator#1': 'v1', aggregator: 'agg' }, voting);
    expect(t.policyFor('generator', 1)).toBe('v1');
    expect(() => t.policyFor('generator', 2)).toThrow(/no policy for role 'generator' copy 2/);
  });

  it('makeRouting dispatches and rejects junk', () => {
    expect(makeRouting('shared', voting).kind).toBe('shared');
    expect(makeRouting('isolated', voting).policies).toEqual(['generator', 'aggregator']);
    expect(() => makeRouting('mixed' as never, voting)).toThrow(/expected "shared", "isolated"/);
  });

  it('tables are immutable data', () => {
    const t = isolatedRouting(voting);
    expect(Object.isFrozen(t.entries)).toBe(true);
    expect(t.entries).toEqual({ generator: 'generator', aggregator: 'aggregator' });
  });
});
