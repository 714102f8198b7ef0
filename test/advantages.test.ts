// Credit assignment and group advantages against hand-computed numbers (arithmetic in comments).
import { describe, expect, it } from 'vitest';
import { groupAdvantages, type GroupedRow } from '../src/rl/advantages.js';
import { assignRewards, type CreditEpisode } from '../src/rl/credit.js';
import type { Grade, Problem, Task } from '../src/tasks/task.js';
import type { CallRecord, Workflow } from '../src/workflows/api.js';
import { EvalOptWorkflow } from '../src/workflows/eval-opt.js';
import { SingleAgentWorkflow } from '../src/workflows/single-agent.js';
import { VotingWorkflow } from '../src/workflows/voting.js';

const EPS = 1e-6;

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

const P: Problem = { id: 'p', prompt: '6*7', answer: '42' };
const Q: Problem = { id: 'q', prompt: '1+1', answer: '2' };

const call = (role: string, copy: number, turn: number, text: string): CallRecord => ({
  role,
  copy,
  turn,
  text,
  finish: 'stop',
  parse: 'none',
});

const row = (group: string, role: string, turn = 0): GroupedRow => ({ group, role, turn });

describe('groupAdvantages: std and normalisation', () => {
  const rows = [row('p', 'generator'), row('p', 'generator'), row('p', 'generator'), row('p', 'generator')];

  it('sample std (n-1, torch.std) by default', () => {
    // rewards 1,0,0,0: mean 0.25; sum of squares 0.75^2 + 3*0.25^2 = 0.75; var = 0.75/3 = 0.25; std 0.5
    // adv(1) = 0.75/(0.5+1e-6) = 1.499997000006; adv(0) = -0.25/(0.5+1e-6) = -0.499999000002
    const r = groupAdvantages(rows, [1, 0, 0, 0]);
    expect(r.groups[0]!.mean).toBeCloseTo(0.25, 15);
    expect(r.groups[0]!.std).toBeCloseTo(0.5, 15);
    expect(r.advantages[0]).toBeCloseTo(1.499997000006, 12);
    expect(r.advantages[1]).toBeCloseTo(-0.499999000002, 12);
    expect(r.advantages[3]).toBeCloseTo(-0.499999000002, 12);
  });

  it('population std (n) on request', () => {
    // var = 0.75/4 = 0.1875; std = 0.4330127018922193; adv(1) = 0.75/(std+1e-6) = 1.732046807578115
    const r = groupAdvantages(rows, [1, 0, 0, 0], { std: 'population' });
    expect(r.groups[0]!.std).toBeCloseTo(0.4330127018922193, 15);
    expect(r.advantages[0]).toBeCloseTo(1.732046807578115, 12);
    expect(r.advantages[2]).toBeCloseTo(-0.5773489358593717, 12);
  });

  it('epsilon is added to the std', () => {
    // std 0.5, eps 0.5: adv(1) = 0.75/1.0
    expect(groupAdvantages(rows, [1, 0, 0, 0], { epsilon: 0.5 }).advantages[0]).toBeCloseTo(0.75, 15);
  });

  it('all-equal group gets 0; a group of size 1 gets 0', () => {
    const r = groupAdvantages([row('p', 'a'), row('p', 'a'), row('q', 'a')], [1, 1, 1]);
    expect(Array.from(r.advantages)).toEqual([0, 0, 0]);
    expect(r.groups.map((g) => g.rows.length)).toEqual([2, 1]);
    expect(r.dropped).toEqual([]);
    expect(Array.from(r.keep)).toEqual([1, 1, 1]);
  });

  it('rejects misaligned or non-finite rewards and unknown modes', () => {
    expect(() => groupAdvantages(rows, [1, 0])).toThrow(/2 rewards for 4 rows/);
    expect(() => groupAdvantages(rows, [1, 0, NaN, 0])).toThrow(/non-finite/);
    expect(() => groupAdvantages(rows, [1, 0, 0, 0], { grouping: 'turn' as never })).toThrow(/unknown grouping/);
  });
});

describe('groupAdvantages: grouping', () => {
  // Eval-Opt, problem p, G=2. Rows: 0 ep0 gen t0 (r0), 1 ep0 eval t0 (r1), 2 ep0 gen t1 (r1),
  // 3 ep0 eval t1 (r1), 4 ep1 gen t0 (r1), 5 ep1 eval t0 (r1).
  const rows = [
    row('p', 'generator', 0),
    row('p', 'evaluator', 0),
    row('p', 'generator', 1),
    row('p', 'evaluator', 1),
    row('p', 'generator', 0),
    row('p', 'evaluator', 0),
  ];
  const rewards = [0, 1, 1, 1, 1, 1];

  it('role grouping pools turns: (p, generator) = {0, 1, 1}', () => {
    // mean 2/3; ss = (2/3)^2 + 2(1/3)^2 = 2/3; var = (2/3)/2 = 1/3; std = 0.5773502691896257
    // adv(0) = -(2/3)/(std+1e-6) = -1.1546985383827155; adv(1) = (1/3)/(std+1e-6) = 0.5773492691913578
    const r = groupAdvantages(rows, rewards);
    expect(r.groups.map((g) => [g.role, g.turn, g.rows])).toEqual([
      ['generator', null, [0, 2, 4]],
      ['evaluator', null, [1, 3, 5]],
    ]);
    expect(r.advantages[0]).toBeCloseTo(-1.1546985383827155, 12);
    expect(r.advantages[2]).toBeCloseTo(0.5773492691913578, 12);
    expect(r.advantages[4]).toBeCloseTo(0.5773492691913578, 12);
    expect([r.advantages[1], r.advantages[3], r.advantages[5]]).toEqual([0, 0, 0]);
    expect(Array.from(r.groupOf)).toEqual([0, 1, 0, 1, 0, 1]);
  });

  it('role-turn grouping (AT-GRPO): (p, generator, 0) = {0, 1}; size-1 turn groups get 0', () => {
    // {0, 1}: mean 0.5, var 0.5/1, std 0.7071067811865476; adv = -+0.5/(std+1e-6) = -+0.7071057811879616
    const r = groupAdvantages(rows, rewards, { grouping: 'role-turn' });
    expect(r.groups.map((g) => [g.role, g.turn, g.rows])).toEqual([
      ['generator', 0, [0, 4]],
      ['evaluator', 0, [1, 5]],
      ['generator', 1, [2]],
      ['evaluator', 1, [3]],
    ]);
    expect(r.advantages[0]).toBeCloseTo(-0.7071057811879616, 12);
    expect(r.advantages[4]).toBeCloseTo(0.7071057811879616, 12);
    expect(r.advantages[2]).toBe(0);
    expect(r.groups[2]!.std).toBe(0);
  });

  it('equal-reward filter drops all-equal and size-1 groups and reports their rows', () => {
    const r = groupAdvantages(rows, rewards, { grouping: 'role-turn', dropEqualGroups: true });
    expect(r.dropped).toEqual([1, 2, 3, 5]);
    expect(Array.from(r.keep)).toEqual([1, 0, 0, 0, 1, 0]);
    expect(r.groups.map((g) => g.dropped)).toEqual([false, true, true, true]);
    expect(r.advantages[0]).toBeCloseTo(-0.7071057811879616, 12); // kept group unchanged
    // Pooled grouping keeps the generator group (mixed rewards) and drops the evaluator group.
    const pooled = groupAdvantages(rows, rewards, { dropEqualGroups: true });
    expect(pooled.dropped).toEqual([1, 3, 5]);
  });

  it('group keys cannot collide through separators', () => {
    const r = groupAdvantages([row('a|b', 'c'), row('a', 'b|c')], [1, 0]);
    expect(r.groups.length).toBe(2);
  });
});

describe('credit assignment', () => {
  // Voting, problem p, G=2. Episode 0: voters 42, 7, 42 -> aggregator picks 1 -> final 42 (correct).
  // Episode 1: voters 7, 7, 7 -> final 7 (wrong).
  const episodes: CreditEpisode[] = [
    {
      problem: P,
      finalAnswer: '\\boxed{42}',
      rows: [call('generator', 0, 0, '\\boxed{42}'), call('generator', 1, 0, '\\boxed{7}'), call('generator', 2, 0, '\\boxed{42}'), call('aggregator', 0, 0, '\\boxed{1}')],
    },
    {
      problem: P,
      finalAnswer: '\\boxed{7}',
      rows: [call('generator', 0, 0, '\\boxed{7}'), call('generator', 1, 0, '\\boxed{7}'), call('generator', 2, 0, '\\boxed{7}'), call('aggregator', 0, 0, '\\boxed{1}')],
    },
  ];
  const voting = new VotingWorkflow();
  const flat = episodes.flatMap((e) => e.rows.map((r) => ({ group: e.problem.id, role: r.role, turn: r.turn })));

  it('outcome mode copies the final grade to every call', () => {
    const c = assignRewards(episodes, voting, task);
    expect(Array.from(c.rewards)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(c.grades.map((g) => g.correct)).toEqual([true, false]);
  });

  it('outcome mode: parallel copies of one episode get identical advantages (the IP pile-up)', () => {
    // (p, generator) = {1,1,1,0,0,0}: mean .5, ss 6*.25 = 1.5, var 1.5/5 = .3, std .5477225575051661
    // adv = +-0.5/(std+1e-6) = +-0.9128692...
    const a = groupAdvantages(flat, assignRewards(episodes, voting, task).rewards).advantages;
    expect(a[0]).toBeCloseTo(0.5 / (Math.sqrt(0.3) + EPS), 12);
    expect(a[0]).toBeCloseTo(0.91287, 5);
    expect([a[1], a[2]]).toEqual([a[0], a[0]]);
  });

  it('role mode: voters rewarded for their own answers, the aggregator for the outcome', () => {
    const c = assignRewards(episodes, voting, task, 'role');
    expect(Array.from(c.rewards)).toEqual([1, 0, 1, 1, 0, 0, 0, 0]);
    // (p, generator) = {1,0,1,0,0,0}: mean 1/3; ss = 2(2/3)^2 + 4(1/3)^2 = 4/3; var = (4/3)/5 = 4/15;
    // std = 0.5163977794943222; adv(1) = (2/3)/(std+1e-6) = 1.290991948740647; adv(0) = -0.6454959743703235
    // (p, aggregator) = {1, 0}: std sqrt(0.5); adv = +-0.7071057811879616
    const a = groupAdvantages(flat, c.rewards).advantages;
    expect(a[0]).toBeCloseTo(1.290991948740647, 12);
    expect(a[1]).toBeCloseTo(-0.6454959743703235, 12);
    expect(a[4]).toBeCloseTo(-0.6454959743703235, 12);
    expect(a[3]).toBeCloseTo(0.7071057811879616, 12);
    expect(a[7]).toBeCloseTo(-0.7071057811879616, 12);
  });

  it('role mode: evaluator verdict credit in eval-opt', () => {
    // gen t0 wrong, eval says Incorrect (right: 1), gen t1 right, eval says Correct (right: 1); final right.
    const ep: CreditEpisode = {
      problem: P,
      finalAnswer: '\\boxed{42}',
      rows: [call('generator', 0, 0, '\\boxed{41}'), call('evaluator', 0, 0, '\\boxed{Incorrect} no'), call('generator', 0, 1, '\\boxed{42}'), call('evaluator', 0, 1, '\\boxed{Correct}')],
    };
    expect(Array.from(assignRewards([ep], new EvalOptWorkflow(), task, 'role').rewards)).toEqual([0, 1, 1, 1]);
    expect(Array.from(assignRewards([ep], new EvalOptWorkflow(), task, 'outcome').rewards)).toEqual([1, 1, 1, 1]);
  });

  it('role mode without a hook falls back to the outcome; multiple problems stay aligned', () => {
    const eps: CreditEpisode[] = [
      { problem: Q, finalAnswer: '\\boxed{2}', rows: [call('generator', 0, 0, '\\boxed{2}')] },
      { problem: P, finalAnswer: '\\boxed{2}', rows: [call('generator', 0, 0, '\\boxed{2}')] },
    ];
    expect(Array.from(assignRewards(eps, new SingleAgentWorkflow(), task, 'role').rewards)).toEqual([1, 0]);
  });

  it('rejects a hook that returns the wrong number of rewards', () => {
    const broken: Workflow = { ...voting, name: 'broken', roles: voting.roles, run: voting.run, demo: voting.demo, roleRewards: () => [1] };
    expect(() => assignRewards(episodes, broken, task, 'role')).toThrow(/gave 1 rewards for 4 calls/);
  });
});
