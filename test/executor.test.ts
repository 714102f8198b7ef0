// Executor: one sampler call per stage across episodes, episodes at different stages, deterministic
// call ids, routing per row, token pass-through and error reporting.
import { describe, expect, it } from 'vitest';
import { customRouting, isolatedRouting, sharedRouting } from '../src/rl/routing.js';
import type { Grade, Problem, Task } from '../src/tasks/task.js';
import type { EpisodeContext, Workflow } from '../src/workflows/api.js';
import { EvalOptWorkflow } from '../src/workflows/eval-opt.js';
import { executeEpisodes, type ExecuteOptions } from '../src/workflows/executor.js';
import type { PolicyRouter, SampleRequest, SampleResult } from '../src/workflows/sampler.js';
import { callIdOf, groupByPolicy } from '../src/workflows/sampler.js';
import { VotingWorkflow } from '../src/workflows/voting.js';

function lastBox(text: string): string | null {
  const m = [...text.matchAll(/\\boxed\{([^{}]*)\}/g)];
  return m.length ? m[m.length - 1]![1]!.trim() : null;
}

const task: Task = {
  name: 'math',
  problems: () => [],
  grade(problem: Problem, output: string): Grade {
    const extracted = lastBox(output);
    const correct = extracted === problem.answer;
    return { reward: correct ? 1 : 0, correct, extracted, reason: '' };
  },
  extractAnswer: lastBox,
  demonstrate: (p) => `\\boxed{${p.answer}}`,
  demonstrateWrong: () => '\\boxed{0}',
};

const problems: Problem[] = [
  { id: 'pa', prompt: '1+1', answer: '2' },
  { id: 'pb', prompt: '2+2', answer: '4' },
];

const shared: PolicyRouter = { policyFor: () => 'policy' };

/** A sampler answering with `script`; records every batch. Token arrays encode the call id. */
function scripted(script: (r: SampleRequest) => string, delay?: (r: SampleRequest) => number) {
  const batches: SampleRequest[][] = [];
  return {
    batches,
    sample: async (reqs: readonly SampleRequest[]): Promise<SampleResult[]> => {
      batches.push([...reqs]);
      const out = reqs.map(async (r): Promise<SampleResult> => {
        if (delay) await new Promise((res) => setTimeout(res, delay(r)));
        return {
          text: script(r),
          promptTokens: Int32Array.from([r.key.episode, r.key.call]),
          completionTokens: [7, 8, 9],
          logprobs: Float32Array.from([-0.5, -1, -0.25]),
          finish: r.role === 'aggregator' ? 'length' : 'stop',
        };
      });
      return Promise.all(out);
    },
  };
}

function base(over: Partial<ExecuteOptions> & Pick<ExecuteOptions, 'workflow' | 'sampler'>): ExecuteOptions {
  return { task, problems, rollouts: 2, seed: 11, step: 3, router: shared, ...over };
}

const votingScript = (r: SampleRequest) => (r.role === 'generator' ? `\\boxed{${r.copy}}` : '\\boxed{1}');

describe('batching', () => {
  it('voting with B=2, G=2: one sampler call per stage holding every episode', async () => {
    const s = scripted(votingScript);
    const res = await executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: s }));
    expect(res.flushes).toBe(2);
    expect(s.batches.map((b) => b.length)).toEqual([12, 4]); // 4 episodes x 3 voters, then 4 aggregators
    // Deterministic layout: episode order, then call order.
    expect(s.batches[0]!.map((r) => `${r.key.episode}.${r.key.call}`)).toEqual([
      '0.0', '0.1', '0.2', '1.0', '1.1', '1.2', '2.0', '2.1', '2.2', '3.0', '3.1', '3.2',
    ]);
    expect(res.episodes.map((e) => [e.episode, e.problem.id])).toEqual([
      [0, 'pa'], [1, 'pa'], [2, 'pb'], [3, 'pb'],
    ]);
    expect(res.rows.length).toBe(16);
    expect(res.rows.map((r) => r.group)).toEqual([...Array(8).fill('pa'), ...Array(8).fill('pb')]);
  });

  it('episodes at different stages: early stoppers drop out, the rest keep being batched', async () => {
    // Episode 0 is judged Correct at once; the others are always Incorrect (3 rounds).
    const s = scripted((r) =>
      r.role === 'generator' ? `\\boxed{${r.turn}}` : r.key.episode === 0 ? '\\boxed{Correct}' : '\\boxed{Incorrect} no',
    );
    const res = await executeEpisodes(base({ workflow: new EvalOptWorkflow(), sampler: s }));
    expect(s.batches.map((b) => b.length)).toEqual([4, 4, 3, 3, 3, 3]);
    expect(s.batches.map((b) => b[0]!.role)).toEqual(['generator', 'evaluator', 'generator', 'evaluator', 'generator', 'evaluator']);
    expect(res.episodes.map((e) => e.rows.length)).toEqual([2, 6, 6, 6]);
    expect(res.episodes.map((e) => e.finalAnswer)).toEqual(['\\boxed{0}', '\\boxed{2}', '\\boxed{2}', '\\boxed{2}']);
  });

  it('waits for an episode busy with other async work before flushing (still one batch per stage)', async () => {
    const slowStart: Workflow = {
      name: 'slow',
      roles: ['generator'],
      async run(ctx: EpisodeContext) {
        if (ctx.problem.id === 'pb') await new Promise((r) => setTimeout(r, 30));
        const [a] = await ctx.call([{ role: 'generator', copy: 0, turn: 0, messages: [{ role: 'user', content: 'x' }] }]);
        return a!.text;
      },
      demo: () => ({ text: '', target: false }),
    };
    const s = scripted(() => 'y');
    const res = await executeEpisodes(base({ workflow: slowStart, sampler: s }));
    expect(s.batches.map((b) => b.length)).toEqual([4]);
    expect(res.flushes).toBe(1);
  });

  it('an empty stage resolves without a flush; zero problems give an empty result', async () => {
    const wf: Workflow = {
      name: 'empty',
      roles: ['generator'],
      async run(ctx) {
        const none = await ctx.call([]);
        return String(none.length);
      },
      demo: () => ({ text: '', target: false }),
    };
    const s = scripted(() => '');
    const res = await executeEpisodes(base({ workflow: wf, sampler: s }));
    expect(res.flushes).toBe(0);
    expect(res.episodes.map((e) => e.finalAnswer)).toEqual(['0', '0', '0', '0']);
    const none = await executeEpisodes(base({ workflow: wf, sampler: s, problems: [] }));
    expect(none).toEqual({ episodes: [], rows: [], flushes: 0 });
  });
});

describe('call ids and rows', () => {
  it('ids come from (seed, step, episode, call seq), not from batch position', async () => {
    const script = (r: SampleRequest) =>
      r.role === 'generator' ? '\\boxed{1}' : r.key.episode === 0 ? '\\boxed{Correct}' : '\\boxed{Incorrect}';
    // Results finish in scrambled order; ids must not care.
    const s = scripted(script, (r) => (r.key.episode * 7) % 5);
    const res = await executeEpisodes(base({ workflow: new EvalOptWorkflow(), sampler: s }));
    // Episode 1 sits at batch position 1 in the first two batches but position 0 later: ids ignore that.
    expect(s.batches[0]![1]!.key.episode).toBe(1);
    expect(s.batches[2]![0]!.key.episode).toBe(1);
    expect(res.episodes[1]!.rows.map((r) => r.callId)).toEqual(
      ['s11.t3.e1.c0', 's11.t3.e1.c1', 's11.t3.e1.c2', 's11.t3.e1.c3', 's11.t3.e1.c4', 's11.t3.e1.c5'],
    );
    expect(res.episodes[0]!.rows.map((r) => r.callId)).toEqual(['s11.t3.e0.c0', 's11.t3.e0.c1']);
    expect(res.rows[3]!.callId).toBe(callIdOf({ seed: 11, step: 3, episode: 1, call: 1 }));
    expect(callIdOf({ seed: 1, step: 2, episode: 3, call: 4 })).toBe('s1.t2.e3.c4');
    // Same inputs, no delays: the same ids in the same row order.
    const again = await executeEpisodes(base({ workflow: new EvalOptWorkflow(), sampler: scripted(script) }));
    expect(again.rows.map((r) => r.callId)).toEqual(res.rows.map((r) => r.callId));
  });

  it('rows carry tokens, logprobs and finish from the sampler, plus role/copy/turn/episode', async () => {
    const s = scripted(votingScript);
    const res = await executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: s, rollouts: 1, problems: [problems[1]!] }));
    const [g0, g1, g2, agg] = res.rows;
    expect([g0, g1, g2, agg].map((r) => [r!.role, r!.copy, r!.turn, r!.episode, r!.call])).toEqual([
      ['generator', 0, 0, 0, 0],
      ['generator', 1, 0, 0, 1],
      ['generator', 2, 0, 0, 2],
      ['aggregator', 0, 0, 0, 3],
    ]);
    expect(Array.from(agg!.promptTokens)).toEqual([0, 3]);
    expect(agg!.completionTokens).toEqual([7, 8, 9]);
    expect(Array.from(agg!.logprobs)).toEqual([-0.5, -1, -0.25]);
    expect(agg!.finish).toBe('length');
    expect(g1!.text).toBe('\\boxed{1}');
    expect(res.episodes[0]!.transcript[3]!.messages[0]!.content).toContain('Answer 2: \\boxed{1}');
  });

  it('maxTokens: call spec > roleMaxTokens > default', async () => {
    const s = scripted(votingScript);
    await executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: s, rollouts: 1, problems: [problems[0]!], maxTokens: 100, roleMaxTokens: { aggregator: 8 } }));
    expect(s.batches.flat().map((r) => r.maxTokens)).toEqual([100, 100, 100, 8]);
    const s2 = scripted(votingScript);
    await executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: s2, rollouts: 1, problems: [problems[0]!] }));
    expect(s2.batches.flat().map((r) => r.maxTokens)).toEqual([256, 256, 256, 256]);
  });

  it("a sampler 'error' with empty text flows into the workflow's fallback", async () => {
    const res = await executeEpisodes(
      base({
        workflow: new VotingWorkflow(),
        rollouts: 1,
        problems: [problems[0]!],
        sampler: {
          sample: async (reqs) =>
            reqs.map((r) => ({
              text: r.role === 'generator' ? `\\boxed{${r.copy === 0 ? 5 : 2}}` : '',
              promptTokens: [],
              completionTokens: [],
              logprobs: [],
              finish: r.role === 'generator' ? ('stop' as const) : ('error' as const),
            })),
        },
      }),
    );
    expect(res.rows[3]!.finish).toBe('error');
    expect(res.rows[3]!.parse).toBe('fallback');
    expect(res.episodes[0]!.finalAnswer).toBe('\\boxed{2}'); // majority of 5, 2, 2
  });
});

describe('routing per row', () => {
  const roles = ['generator', 'aggregator'];
  const run = async (router: PolicyRouter) => {
    const s = scripted(votingScript);
    const res = await executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: s, router, rollouts: 1, problems: [problems[0]!] }));
    expect(s.batches.flat().map((r) => r.policy)).toEqual(res.rows.map((r) => r.policy));
    return res.rows.map((r) => r.policy);
  };

  it('shared: everything to "policy"', async () => {
    expect(await run(sharedRouting(roles))).toEqual(['policy', 'policy', 'policy', 'policy']);
  });

  it('isolated: voters share the generator policy, the aggregator has its own', async () => {
    expect(await run(isolatedRouting(roles))).toEqual(['generator', 'generator', 'generator', 'aggregator']);
  });

  it('custom: one policy per voter copy', async () => {
    const table = customRouting({ 'generator#0': 'v0', 'generator#1': 'v1', 'generator#2': 'v2', aggregator: 'agg' }, roles);
    expect(await run(table)).toEqual(['v0', 'v1', 'v2', 'agg']);
  });

  it('groupByPolicy splits a mixed batch into per-policy index lists', async () => {
    const s = scripted(votingScript);
    await executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: s, router: isolatedRouting(roles) }));
    const byPolicy = groupByPolicy(s.batches[0]!.map((r, i) => ({ ...r, policy: i % 3 === 1 ? 'b' : 'a' })));
    expect([...byPolicy.entries()]).toEqual([
      ['a', [0, 2, 3, 5, 6, 8, 9, 11]],
      ['b', [1, 4, 7, 10]],
    ]);
    expect([...groupByPolicy(s.batches[1]!).keys()]).toEqual(['aggregator']);
  });
});

describe('errors', () => {
  it('a wrong number of sampler results rejects', async () => {
    await expect(
      executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: { sample: async () => [] } })),
    ).rejects.toThrow(/0 results for 12 requests/);
  });

  it('a sampler failure rejects', async () => {
    await expect(
      executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: { sample: async () => { throw new Error('OOM'); } } })),
    ).rejects.toThrow('OOM');
  });

  it('a workflow error names the workflow and episode', async () => {
    const bad: Workflow = {
      name: 'bad',
      roles: ['generator'],
      async run(ctx) {
        if (ctx.problem.id === 'pb') throw new Error('boom');
        return '';
      },
      demo: () => ({ text: '', target: false }),
    };
    await expect(executeEpisodes(base({ workflow: bad, sampler: scripted(() => '') }))).rejects.toThrow(
      /workflow 'bad' episode 2 \(pb\): boom/,
    );
  });

  it('unknown roles and overlapping stages are rejected', async () => {
    const msg = [{ role: 'user' as const, content: 'x' }];
    const unknown: Workflow = {
      name: 'u',
      roles: ['generator'],
      run: async (ctx) => (await ctx.call([{ role: 'critic', copy: 0, turn: 0, messages: msg }]))[0]!.text,
      demo: () => ({ text: '', target: false }),
    };
    await expect(executeEpisodes(base({ workflow: unknown, sampler: scripted(() => '') }))).rejects.toThrow(
      /role 'critic' is not a role of workflow 'u'/,
    );
    const overlap: Workflow = {
      name: 'o',
      roles: ['generator'],
      async run(ctx) {
        const spec = { role: 'generator', copy: 0, turn: 0, messages: msg };
        await Promise.all([ctx.call([spec]), ctx.call([spec])]);
        return '';
      },
      demo: () => ({ text: '', target: false }),
    };
    await expect(executeEpisodes(base({ workflow: overlap, sampler: scripted(() => '') }))).rejects.toThrow(
      /while a stage is pending/,
    );
  });

  it('an unroutable call rejects with the routing error', async () => {
    const table = customRouting({ 'generator#0': 'v0', aggregator: 'agg' }, ['generator', 'aggregator']);
    await expect(
      executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: scripted(votingScript), router: table })),
    ).rejects.toThrow(/no policy for role 'generator' copy 1/);
  });

  it('rejects a non-positive rollouts count', () => {
    expect(() => executeEpisodes(base({ workflow: new VotingWorkflow(), sampler: scripted(votingScript), rollouts: 0 }))).toThrow(
      /rollouts must be a positive integer/,
    );
  });
});
