// Workflows: prompts, parsing, each documented fallback, stop conditions, calls per stage, and the
// demonstration oracle. A fake task ("the answer is in \boxed{}") and scripted samplers stand in for
// the real task and model.
import { describe, expect, it } from 'vitest';
import type { Grade, Problem, Rng, Task } from '../src/tasks/task.js';
import type { RoleCallSpec, Workflow } from '../src/workflows/api.js';
import { demonstrateEpisode, demoTargets } from '../src/workflows/demos.js';
import { EvalOptWorkflow } from '../src/workflows/eval-opt.js';
import { executeEpisodes, type ExecuteResult } from '../src/workflows/executor.js';
import { DEFAULT_STRATEGY } from '../src/workflows/format.js';
import { OrchWorkersWorkflow } from '../src/workflows/orch-workers.js';
import { boxedContents, majorityIndex, parseChoice, parseStrategies, parseVerdict } from '../src/workflows/parse.js';
import { createWorkflow, WORKFLOW_NAMES } from '../src/workflows/registry.js';
import type { SampleRequest, SampleResult } from '../src/workflows/sampler.js';
import { SingleAgentWorkflow } from '../src/workflows/single-agent.js';
import { VotingWorkflow } from '../src/workflows/voting.js';

// ---- fakes ---------------------------------------------------------------------------------------

function lastBox(text: string): string | null {
  const m = [...text.matchAll(/\\boxed\{([^{}]*)\}/g)];
  return m.length ? m[m.length - 1]![1]!.trim() : null;
}

function fakeTask(name = 'math'): Task {
  return {
    name,
    problems: () => [],
    grade(problem: Problem, output: string): Grade {
      const extracted = lastBox(output);
      const correct = extracted === problem.answer;
      return { reward: correct ? 1 : 0, correct, extracted, reason: correct ? 'ok' : 'wrong' };
    },
    extractAnswer: lastBox,
    demonstrate: (p) => `${p.prompt} so ${p.answer}. \\boxed{${p.answer}}`,
    demonstrateWrong: (p) => `${p.prompt} so ${Number(p.answer) + 1}. \\boxed{${Number(p.answer) + 1}}`,
  };
}

function rngOf(seed: number): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), pick: (xs) => xs[Math.floor(next() * xs.length)]! };
}

const P42: Problem = { id: 'p42', prompt: 'What is 6*7?', answer: '42' };
const math = fakeTask('math');

/** Runs one episode with a sampler scripted by a function of the request. */
async function runOne(
  workflow: Workflow,
  script: (req: SampleRequest) => string,
  task: Task = math,
): Promise<{ result: ExecuteResult; batches: SampleRequest[][] }> {
  const batches: SampleRequest[][] = [];
  const result = await executeEpisodes({
    workflow,
    task,
    problems: [P42],
    seed: 1,
    step: 0,
    router: { policyFor: () => 'policy' },
    sampler: {
      sample: async (reqs) => {
        batches.push([...reqs]);
        return reqs.map(
          (r): SampleResult => ({ text: script(r), promptTokens: [], completionTokens: [], logprobs: [], finish: 'stop' }),
        );
      },
    },
  });
  return { result, batches };
}

const content = (req: SampleRequest | RoleCallSpec): string => req.messages.map((m) => m.content).join('\n');

// ---- parsers -------------------------------------------------------------------------------------

describe('parsers', () => {
  it('boxedContents matches nested braces and ignores an unclosed box', () => {
    expect(boxedContents('a \\boxed{\\frac{1}{2}} b \\boxed{3}')).toEqual(['\\frac{1}{2}', '3']);
    expect(boxedContents('\\boxed{1} \\boxed{2')).toEqual(['1']);
    expect(boxedContents('none')).toEqual([]);
  });

  it('parseChoice reads the last box as a 1-based index within range', () => {
    expect(parseChoice('\\boxed{2}', 3)).toBe(1);
    expect(parseChoice('maybe \\boxed{1} no \\boxed{ 3 }', 3)).toBe(2);
    expect(parseChoice('\\boxed{Answer 2}', 3)).toBe(1);
    expect(parseChoice('\\boxed{4}', 3)).toBeNull();
    expect(parseChoice('\\boxed{0}', 3)).toBeNull();
    expect(parseChoice('\\boxed{two}', 3)).toBeNull();
    expect(parseChoice('2', 3)).toBeNull();
  });

  it('parseVerdict takes the first verdict box and the text after it as the reason', () => {
    expect(parseVerdict('\\boxed{Incorrect} 6*7 is not 41.')).toEqual({ verdict: 'incorrect', reason: '6*7 is not 41.' });
    expect(parseVerdict('\\boxed{42} looks \\boxed{correct}')).toEqual({ verdict: 'correct', reason: '' });
    expect(parseVerdict('It is correct.')).toBeNull();
  });

  it('parseStrategies keeps numbered lines, drops duplicates, caps the count', () => {
    const text = 'Plan:\n1. Multiply.\n2) Add.\n3. multiply.\nnot a strategy\n4. Check.\n5. Guess.';
    expect(parseStrategies(text, 3)).toEqual(['Multiply.', 'Add.', 'Check.']);
    expect(parseStrategies('no list here', 3)).toEqual([]);
  });

  it('majorityIndex: most frequent answer, ties to the first seen, all null -> 0', () => {
    expect(majorityIndex(['7', '42', '42'])).toBe(1);
    expect(majorityIndex(['9', '7', '42', '7', '9'])).toBe(0); // 9 and 7 tie at 2; 9 is seen first
    expect(majorityIndex(['7', null, '42'])).toBe(0);
    expect(majorityIndex([null, null, null])).toBe(0);
    expect(majorityIndex([null, '5'])).toBe(1);
  });
});

// ---- single agent --------------------------------------------------------------------------------

describe('single agent', () => {
  it('makes one generator call and returns its text', async () => {
    const { result, batches } = await runOne(new SingleAgentWorkflow(), () => 'so \\boxed{42}');
    expect(batches.map((b) => b.length)).toEqual([1]);
    expect(batches[0]![0]!.role).toBe('generator');
    expect(content(batches[0]![0]!)).toBe('Solve the problem. End with \\boxed{answer}.\nProblem: What is 6*7?');
    expect(result.episodes[0]!.finalAnswer).toBe('so \\boxed{42}');
  });

  it('uses the program format hint for code tasks', async () => {
    const { batches } = await runOne(new SingleAgentWorkflow(), () => 'x', fakeTask('code'));
    expect(content(batches[0]![0]!)).toContain('Reply with one fenced program.');
  });
});

// ---- voting --------------------------------------------------------------------------------------

describe('voting', () => {
  const voters = (answers: string[], agg: string) => (req: SampleRequest) =>
    req.role === 'generator' ? answers[req.copy]! : agg;

  it('3 identical generator prompts in one stage, then one aggregator; the picked candidate is final', async () => {
    const { result, batches } = await runOne(new VotingWorkflow(), voters(['A \\boxed{7}', 'B \\boxed{42}', 'C \\boxed{9}'], 'pick \\boxed{2}'));
    expect(batches.map((b) => b.map((r) => `${r.role}#${r.copy}`))).toEqual([
      ['generator#0', 'generator#1', 'generator#2'],
      ['aggregator#0'],
    ]);
    const gen = batches[0]!;
    expect(content(gen[1]!)).toBe(content(gen[0]!));
    expect(content(gen[2]!)).toBe(content(gen[0]!));
    expect(content(batches[1]![0]!)).toBe(
      'Pick the correct answer. Reply \\boxed{N}, N from 1 to 3.\nProblem: What is 6*7?\n' +
        'Answer 1: A \\boxed{7}\nAnswer 2: B \\boxed{42}\nAnswer 3: C \\boxed{9}',
    );
    const ep = result.episodes[0]!;
    expect(ep.finalAnswer).toBe('B \\boxed{42}');
    expect(ep.rows.map((r) => r.parse)).toEqual(['none', 'none', 'none', 'ok']);
  });

  it('unparseable pick -> majority of extracted answers, recorded as fallback', async () => {
    const { result } = await runOne(new VotingWorkflow(), voters(['\\boxed{7}', 'x \\boxed{42}', 'y \\boxed{42}'], 'the second one'));
    const ep = result.episodes[0]!;
    expect(ep.finalAnswer).toBe('x \\boxed{42}'); // 42 has 2 votes; its first holder is candidate 2
    const agg = ep.rows[3]!;
    expect(agg.parse).toBe('fallback');
    expect(agg.parseNote).toContain('majority');
  });

  it('out-of-range pick falls back; a tie goes to the first candidate', async () => {
    const { result } = await runOne(new VotingWorkflow(), voters(['\\boxed{7}', '\\boxed{42}', '\\boxed{9}'], '\\boxed{4}'));
    expect(result.episodes[0]!.finalAnswer).toBe('\\boxed{7}');
    expect(result.episodes[0]!.rows[3]!.parse).toBe('fallback');
  });

  it('no extractable answer anywhere -> candidate 1', async () => {
    const { result } = await runOne(new VotingWorkflow(), voters(['a', 'b', 'c'], 'hmm'));
    expect(result.episodes[0]!.finalAnswer).toBe('a');
  });

  it('voters option changes the stage width', async () => {
    const { batches } = await runOne(new VotingWorkflow({ voters: 5 }), (r) => (r.role === 'generator' ? 'g' : '\\boxed{5}'));
    expect(batches.map((b) => b.length)).toEqual([5, 1]);
    expect(content(batches[1]![0]!)).toContain('N from 1 to 5');
  });
});

// ---- eval-opt ------------------------------------------------------------------------------------

describe('eval-opt', () => {
  /** Generator answers "g<turn>"; evaluator replies from `verdicts[turn]`. */
  const loop = (verdicts: string[]) => (req: SampleRequest) =>
    req.role === 'generator' ? `g${req.turn} \\boxed{${40 + req.turn}}` : verdicts[req.turn]!;
  const trace = (r: ExecuteResult) => r.episodes[0]!.rows.map((x) => `${x.role[0]}${x.turn}`);

  it('stops at the first Correct', async () => {
    const { result } = await runOne(new EvalOptWorkflow(), loop(['\\boxed{Correct} fine']));
    expect(trace(result)).toEqual(['g0', 'e0']);
    expect(result.episodes[0]!.finalAnswer).toBe('g0 \\boxed{40}');
  });

  it('revises on Incorrect with the previous answer and the reason; the last answer is final', async () => {
    const { result, batches } = await runOne(
      new EvalOptWorkflow(),
      loop(['\\boxed{Incorrect} 6*7 is not 40.', '\\boxed{Incorrect} still off.', '\\boxed{Correct} ok']),
    );
    expect(trace(result)).toEqual(['g0', 'e0', 'g1', 'e1', 'g2', 'e2']);
    expect(result.episodes[0]!.finalAnswer).toBe('g2 \\boxed{42}');
    expect(content(batches[1]![0]!)).toBe(
      'Check the answer. Reply \\boxed{Correct} or \\boxed{Incorrect}, then a short reason.\n' +
        'Problem: What is 6*7?\nAnswer: g0 \\boxed{40}',
    );
    expect(content(batches[2]![0]!)).toBe(
      'Fix the answer using the feedback. End with \\boxed{answer}.\nProblem: What is 6*7?\n' +
        'Answer: g0 \\boxed{40}\nFeedback: 6*7 is not 40.',
    );
  });

  it('math: at most 3 evaluations; the last answer is graded even when judged Incorrect', async () => {
    const no = '\\boxed{Incorrect} no';
    const { result } = await runOne(new EvalOptWorkflow(), loop([no, no, no, no]));
    expect(trace(result)).toEqual(['g0', 'e0', 'g1', 'e1', 'g2', 'e2']);
    expect(result.episodes[0]!.finalAnswer).toBe('g2 \\boxed{42}');
  });

  it('code: at most 2 evaluations; maxRounds overrides', async () => {
    const no = '\\boxed{Incorrect} no';
    const code = await runOne(new EvalOptWorkflow(), loop([no, no, no]), fakeTask('code'));
    expect(trace(code.result)).toEqual(['g0', 'e0', 'g1', 'e1']);
    const one = await runOne(new EvalOptWorkflow({ maxRounds: 1 }), loop([no, no]));
    expect(trace(one.result)).toEqual(['g0', 'e0']);
  });

  it('unparseable verdict is treated as Correct (stop) and recorded', async () => {
    const { result } = await runOne(new EvalOptWorkflow(), loop(['looks wrong to me']));
    expect(trace(result)).toEqual(['g0', 'e0']);
    const ev = result.episodes[0]!.rows[1]!;
    expect(ev.parse).toBe('fallback');
    expect(ev.parseNote).toContain('treated as Correct');
  });

  it('empty reason still gives non-empty feedback', async () => {
    const { batches } = await runOne(new EvalOptWorkflow({ maxRounds: 2 }), loop(['\\boxed{Incorrect}', '\\boxed{Correct}']));
    expect(content(batches[2]![0]!)).toContain('Feedback: Incorrect.');
  });
});

// ---- orch-workers --------------------------------------------------------------------------------

describe('orch-workers', () => {
  const script = (plan: string) => (req: SampleRequest) =>
    req.role === 'orchestrator' ? plan : req.role === 'worker' ? `w${req.copy} \\boxed{4${req.copy}}` : 'final \\boxed{42}';

  it('one worker per strategy in one stage, then the synthesizer sees every solution', async () => {
    const { result, batches } = await runOne(new OrchWorkersWorkflow(), script('1. Multiply.\n2. Add sixes.\n3. Check.'));
    expect(batches.map((b) => b.map((r) => `${r.role}#${r.copy}`))).toEqual([
      ['orchestrator#0'],
      ['worker#0', 'worker#1', 'worker#2'],
      ['synthesizer#0'],
    ]);
    expect(content(batches[0]![0]!)).toBe(
      'List up to 3 different strategies, one per line as "1. ...". Do not solve.\nProblem: What is 6*7?',
    );
    expect(content(batches[1]![1]!)).toBe(
      'Solve the problem with the strategy. End with \\boxed{answer}.\nProblem: What is 6*7?\nStrategy: Add sixes.',
    );
    expect(content(batches[2]![0]!)).toBe(
      'Give the final answer from the solutions. End with \\boxed{answer}.\nProblem: What is 6*7?\n' +
        'Solution 1: w0 \\boxed{40}\nSolution 2: w1 \\boxed{41}\nSolution 3: w2 \\boxed{42}',
    );
    expect(result.episodes[0]!.finalAnswer).toBe('final \\boxed{42}');
    expect(result.episodes[0]!.rows[0]!.parse).toBe('ok');
  });

  it('duplicates dropped and at most 3 workers', async () => {
    const { batches } = await runOne(new OrchWorkersWorkflow(), script('1. A.\n2. a.\n3. B.\n4. C.\n5. D.'));
    expect(batches[1]!.map((r) => content(r).split('Strategy: ')[1])).toEqual(['A.', 'B.', 'C.']);
  });

  it('a single parsed strategy gives a single worker', async () => {
    const { batches } = await runOne(new OrchWorkersWorkflow(), script('1. Multiply.'));
    expect(batches.map((b) => b.length)).toEqual([1, 1, 1]);
  });

  it('no strategy parsed -> one worker with the default strategy, recorded', async () => {
    const { result, batches } = await runOne(new OrchWorkersWorkflow(), script('Just multiply them.'));
    expect(batches[1]!.length).toBe(1);
    expect(content(batches[1]![0]!)).toContain(`Strategy: ${DEFAULT_STRATEGY}`);
    expect(result.episodes[0]!.rows[0]!.parse).toBe('fallback');
  });
});

// ---- registry and reward hooks -------------------------------------------------------------------

describe('registry', () => {
  it('creates every built-in workflow and rejects unknown names', () => {
    expect(WORKFLOW_NAMES.map((n) => createWorkflow(n).name)).toEqual([...WORKFLOW_NAMES]);
    expect(createWorkflow('voting').roles).toEqual(['generator', 'aggregator']);
    expect(createWorkflow('orch-workers').roles).toEqual(['orchestrator', 'worker', 'synthesizer']);
    expect(() => createWorkflow('debate')).toThrow(/unknown workflow 'debate'.*voting/);
  });
});

describe('role reward hooks', () => {
  const judge = (t: string) => math.grade(P42, t);
  const call = (role: string, turn: number, text: string, copy = 0) =>
    ({ role, copy, turn, text, finish: 'stop', parse: 'none' }) as const;

  it('voting: voters get their own correctness, the aggregator the outcome (null)', () => {
    const calls = [call('generator', 0, '\\boxed{42}'), call('generator', 0, '\\boxed{7}', 1), call('aggregator', 0, '\\boxed{2}')];
    expect(new VotingWorkflow().roleRewards({ problem: P42, finalAnswer: '\\boxed{7}', calls }, judge)).toEqual([1, 0, null]);
  });

  it('eval-opt: evaluator rewarded for a verdict that matches the truth of the same-turn answer', () => {
    const calls = [
      call('generator', 0, '\\boxed{41}'),
      call('evaluator', 0, '\\boxed{Correct}'), // wrong verdict -> 0
      call('generator', 1, '\\boxed{41}'),
      call('evaluator', 1, '\\boxed{Incorrect} no'), // right verdict -> 1
      call('generator', 2, '\\boxed{42}'),
      call('evaluator', 2, 'unsure'), // unparseable -> 0
    ];
    expect(new EvalOptWorkflow().roleRewards({ problem: P42, finalAnswer: '\\boxed{42}', calls }, judge)).toEqual([0, 0, 0, 1, 1, 0]);
  });

  it('orch-workers: workers get their own correctness', () => {
    const calls = [call('orchestrator', 0, '1. a'), call('worker', 0, '\\boxed{42}'), call('worker', 0, '\\boxed{1}', 1), call('synthesizer', 0, 'x')];
    expect(new OrchWorkersWorkflow().roleRewards({ problem: P42, finalAnswer: 'x', calls }, judge)).toEqual([null, 1, 0, null]);
  });
});

// ---- demonstrations ------------------------------------------------------------------------------

describe('demonstrations', () => {
  const workflows = WORKFLOW_NAMES.map((n) => createWorkflow(n));

  it('every demo parses without fallback, targets are right, and the final answer is correct', async () => {
    for (const wf of workflows) {
      for (let seed = 0; seed < 40; seed++) {
        const ep = await demonstrateEpisode(wf, math, P42, rngOf(seed), { wrongRate: 0.5 });
        expect(ep.calls.every((c) => c.parse !== 'fallback'), `${wf.name} seed ${seed}`).toBe(true);
        expect(math.grade(P42, ep.finalAnswer).correct, `${wf.name} seed ${seed}`).toBe(true);
        for (const c of ep.calls) {
          if (['generator', 'worker', 'synthesizer'].includes(c.role)) {
            // Solver outputs are targets exactly when they are correct.
            expect(c.target, `${wf.name} ${c.role}`).toBe(math.grade(P42, c.completion).correct);
          }
        }
      }
    }
  });

  it('demo prompts are the prompts the real workflow sends (replaying demo outputs through the executor)', async () => {
    for (const wf of workflows) {
      const ep = await demonstrateEpisode(wf, math, P42, rngOf(7), { wrongRate: 0.5 });
      const { result } = await runOne(wf, (req) => ep.calls[req.key.call]!.completion);
      expect(result.episodes[0]!.transcript.map((t) => t.messages)).toEqual(ep.calls.map((c) => c.messages));
      expect(result.episodes[0]!.finalAnswer).toBe(ep.finalAnswer);
    }
  });

  it('voting: wrong voters are context only, the last voter is forced right, the aggregator picks a right one', async () => {
    const ep = await demonstrateEpisode(new VotingWorkflow(), math, P42, rngOf(3), { wrongRate: 1 });
    expect(ep.calls.map((c) => `${c.role}:${c.target}`)).toEqual([
      'generator:false',
      'generator:false',
      'generator:true',
      'aggregator:true',
    ]);
    expect(ep.calls[3]!.completion).toBe('\\boxed{3}');
  });

  it('eval-opt: a wrong first answer is judged Incorrect, the revision fixes it and is judged Correct', async () => {
    const ep = await demonstrateEpisode(new EvalOptWorkflow(), math, P42, rngOf(3), { wrongRate: 1 });
    expect(ep.calls.map((c) => `${c.role}${c.turn}:${c.target}`)).toEqual([
      'generator0:false',
      'evaluator0:true',
      'generator1:true',
      'evaluator1:true',
    ]);
    expect(parseVerdict(ep.calls[1]!.completion)!.verdict).toBe('incorrect');
    expect(parseVerdict(ep.calls[3]!.completion)!.verdict).toBe('correct');
    expect(ep.calls[2]!.messages[0]!.content).toContain('Feedback: The answer is wrong.');
  });

  it('orch-workers: 1..3 distinct strategies; the synthesizer demo is correct even when all workers are wrong', async () => {
    const counts = new Set<number>();
    for (let seed = 0; seed < 30; seed++) {
      const ep = await demonstrateEpisode(new OrchWorkersWorkflow(), math, P42, rngOf(seed), { wrongRate: 1 });
      const lines = parseStrategies(ep.calls[0]!.completion, 10);
      counts.add(lines.length);
      expect(new Set(lines).size).toBe(lines.length);
      expect(ep.calls.filter((c) => c.role === 'worker').length).toBe(lines.length);
      const synth = ep.calls[ep.calls.length - 1]!;
      expect(synth.role).toBe('synthesizer');
      expect(math.grade(P42, synth.completion).correct).toBe(true);
    }
    expect([...counts].sort()).toEqual([1, 2, 3]);
  });

  it('demoTargets keeps only target calls', async () => {
    const ep = await demonstrateEpisode(new VotingWorkflow(), math, P42, rngOf(3), { wrongRate: 1 });
    expect(demoTargets(ep).map((t) => t.role)).toEqual(['generator', 'aggregator']);
  });
});
