import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Expr } from '../src/tasks/math/expr.js';
import type { MathProblemData } from '../src/tasks/math/generator.js';
import { loadMathJsonl, MathJsonlTask, parseMathJsonl } from '../src/tasks/math/jsonl.js';
import { MathTask } from '../src/tasks/math/task.js';
import { gradeBoxedAnswer } from '../src/tasks/math/verify.js';
import { rngFor, SeededRng, shuffleInPlace } from '../src/tasks/rng.js';
import { splitOfKey } from '../src/tasks/split.js';
import type { Problem } from '../src/tasks/task.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/gsm8k-small.jsonl', import.meta.url));

/** Independent reference: evaluates "+-* /" and parentheses over integers with exact division. */
function referenceEval(src: string): number {
  let i = 0;
  const atom = (): number => {
    if (src[i] === '(') {
      i++;
      const v = sum();
      i++; // ')'
      return v;
    }
    const m = /^\d+/.exec(src.slice(i));
    if (!m) throw new Error(`bad expression ${src} at ${i}`);
    i += m[0].length;
    return Number(m[0]);
  };
  const product = (): number => {
    let v = atom();
    while (src[i] === '*' || src[i] === '/') {
      const op = src[i++];
      const r = atom();
      if (op === '/' && v % r !== 0) throw new Error(`inexact division in ${src}`);
      v = op === '*' ? v * r : v / r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (src[i] === '+' || src[i] === '-') v = src[i++] === '+' ? v + product() : v - product();
    return v;
  };
  const v = sum();
  if (i !== src.length) throw new Error(`trailing text in ${src}`);
  return v;
}

describe('math verifier', () => {
  const cases: [string, string, number, string, string | null][] = [
    // reference, output, reward, reason, extracted
    ['41', 'so the answer is \\boxed{41}', 1, 'ok', '41'],
    ['41', '\\boxed{40} no wait \\boxed{41}', 1, 'ok', '41'],
    ['41', '\\boxed{41} no wait \\boxed{40}', 0, 'wrong answer', '40'],
    ['3/2', 'thus \\boxed{\\frac{3}{2}}.', 1, 'ok', '\\frac{3}{2}'],
    ['3/2', '\\boxed{\\frac{6}{4}}', 1, 'ok', '\\frac{6}{4}'],
    ['\\frac{6}{4}', '\\boxed{3/2}', 1, 'ok', '3/2'],
    ['3/2', '\\boxed{\\dfrac{3}{2}}', 1, 'ok', '\\dfrac{3}{2}'],
    ['-3/2', '\\boxed{\\frac{-3}{2}}', 1, 'ok', '\\frac{-3}{2}'],
    ['-3/2', '\\boxed{-\\frac{3}{2}}', 1, 'ok', '-\\frac{3}{2}'],
    ['0.5', '\\boxed{1/2}', 1, 'ok', '1/2'],
    ['1000', '\\boxed{1,000}', 1, 'ok', '1,000'],
    ['1000', '\\boxed{1,00}', 0, 'wrong answer', '1,00'],
    ['1234567', '\\boxed{1,234,567}', 1, 'ok', '1,234,567'],
    ['1234', '\\boxed{1\\,234}', 1, 'ok', '1\\,234'],
    ['0', '\\boxed{-0}', 1, 'ok', '-0'],
    ['7', '\\boxed{007}', 1, 'ok', '007'],
    ['41', '\\boxed{41.0}', 1, 'ok', '41.0'],
    ['41', '\\boxed{41.5}', 0, 'wrong answer', '41.5'],
    ['41', '\\boxed{$41$.}', 1, 'ok', '$41$.'],
    ['41', '\\boxed{+41}', 1, 'ok', '+41'],
    ['41', '\\boxed{ 4 1 }', 1, 'ok', '4 1'],
    ['41', '\\boxed{4\\!1}', 1, 'ok', '4\\!1'],
    ['41', '\\boxed {41}', 1, 'ok', '41'],
    ['-5', '\\boxed{-5}', 1, 'ok', '-5'],
    ['-5', '\\boxed{\u22125}', 1, 'ok', '\u22125'],
    ['-5', '\\boxed{5}', 0, 'wrong answer', '5'],
    ['41', '\\boxed{x}', 0, 'wrong answer', 'x'],
    ['1', '\\boxed{1/0}', 0, 'wrong answer', '1/0'],
    ['41', '\\boxed{41/1}', 1, 'ok', '41/1'],
    ['41', 'the answer is 41', 0, 'no \\boxed{} answer', null],
    ['41', 'asdf{}}{ \\boxed', 0, 'no \\boxed{} answer', null],
    ['41', '\\boxed{41', 0, 'unclosed \\boxed{', null],
    ['41', '\\boxed{41} and then \\boxed{4', 0, 'unclosed \\boxed{', null],
    ['41', '\\boxed{}', 0, 'empty \\boxed{}', ''],
    ['41', '\\boxed{{41}}', 1, 'ok', '{41}'],
    ['Correct', '\\boxed{Correct}', 1, 'ok', 'Correct'],
    ['Correct', '\\boxed{Incorrect}', 0, 'wrong answer', 'Incorrect'],
    ['2', '\\boxed{2}\n\\boxedx', 1, 'ok', '2'],
  ];
  it.each(cases)('%s vs %j', (reference, output, reward, reason, extracted) => {
    const g = gradeBoxedAnswer(reference, output);
    expect(g).toEqual({ reward, correct: reward === 1, extracted, reason });
  });

  it('handles megabyte outputs without a box, with an endless box and with deep braces', () => {
    const noBox = 'x{'.repeat(500_000);
    expect(gradeBoxedAnswer('41', noBox)).toMatchObject({ reward: 0, reason: 'no \\boxed{} answer' });
    const endless = '\\boxed{' + '{'.repeat(1_000_000);
    expect(gradeBoxedAnswer('41', endless)).toMatchObject({ reward: 0, reason: 'boxed answer too long' });
    const manyBoxes = '\\boxed{1}'.repeat(100_000) + '\\boxed{41}';
    expect(gradeBoxedAnswer('41', manyBoxes).reward).toBe(1);
    const backslashes = '\\'.repeat(1_000_001);
    expect(gradeBoxedAnswer('41', backslashes).reward).toBe(0);
  });

  it('never throws on non-string or odd input', () => {
    expect(gradeBoxedAnswer('41', undefined as unknown as string)).toMatchObject({ reward: 0 });
    expect(gradeBoxedAnswer('41', '\\boxed{\\}').reward).toBe(0);
    expect(gradeBoxedAnswer('41', '\\boxed{9'.repeat(1000)).reward).toBe(0);
  });
});

describe('math generator', () => {
  const task = new MathTask();

  it('is deterministic in (split, seed, index) and independent of count', () => {
    const a = task.problems('train', 40, 7);
    expect(task.problems('train', 40, 7)).toEqual(a);
    expect(task.problems('train', 10, 7)).toEqual(a.slice(0, 10));
    expect(new MathTask().problems('train', 40, 7)).toEqual(a);
    const b = task.problems('train', 40, 8);
    expect(b.filter((p, i) => p.prompt === a[i]?.prompt).length).toBeLessThan(5);
    expect(new Set(a.map((p) => p.id)).size).toBe(40);
  });

  it('keeps train and test disjoint by expression across seeds', () => {
    const train = new Set<string>();
    for (const seed of [1, 2]) for (const p of task.problems('train', 2000, seed)) train.add((p.data as MathProblemData).expression);
    const test = task.problems('test', 2000, 1).map((p) => (p.data as MathProblemData).expression);
    expect(test.filter((e) => train.has(e))).toEqual([]);
    expect(new Set(test).size).toBeGreaterThan(500);
  });

  it('keeps splits disjoint even when the problem space is tiny', () => {
    const tiny = new MathTask({ ops: [1, 1], digits: [1, 1], operators: ['+'], wordProblems: 0, testFraction: 0.3 });
    const train = new Set(tiny.problems('train', 3000, 1).map((p) => p.prompt));
    const test = new Set(tiny.problems('test', 3000, 1).map((p) => p.prompt));
    expect([...test].filter((p) => train.has(p))).toEqual([]);
    expect(train.size + test.size).toBe(81); // all of 1..9 + 1..9 are reached
  });

  it('gives answers that an independent evaluator confirms', () => {
    for (const config of [{}, { operators: ['+', '-', '*', '/'] as ('+' | '-' | '*' | '/')[], ops: [1, 3] as [number, number] }]) {
      const t = new MathTask(config);
      for (const p of t.problems('train', 500, 3)) {
        const d = p.data as MathProblemData;
        expect(referenceEval(d.expression)).toBe(Number(p.answer));
        if (d.source === 'arith') expect(p.prompt).toBe(`Compute ${d.expression}.`);
        expect(Number.isInteger(Number(p.answer))).toBe(true);
        expect(Number(p.answer)).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('mixes bare expressions and word problems at the default settings', () => {
    const ps = task.problems('train', 1000, 5);
    const word = ps.filter((p) => (p.data as MathProblemData).source !== 'arith').length;
    expect(word).toBeGreaterThan(200);
    expect(word).toBeLessThan(400);
    expect(ps.some((p) => p.prompt.includes('('))).toBe(true);
    const lengths = new Set(ps.map((p) => (p.data as MathProblemData).steps.length));
    expect([...lengths].sort()).toEqual([2, 3]);
    expect(ps.some((p) => p.prompt.includes('/') || p.prompt.includes('equally'))).toBe(true);
  });

  it('validates its knobs', () => {
    expect(() => new MathTask({ ops: [0, 2] })).toThrow(/ops/);
    expect(() => new MathTask({ operators: [] })).toThrow(/operators/);
    expect(() => new MathTask({ testFraction: 1 })).toThrow(/testFraction/);
    expect(() => new MathTask({ parens: 2 })).toThrow(/parens/);
  });
});

describe('math demonstrations', () => {
  it('writes the worked steps in evaluation order', () => {
    const tree: Expr = {
      kind: 'bin',
      op: '+',
      left: { kind: 'bin', op: '*', left: { kind: 'num', value: 12 }, right: { kind: 'num', value: 3 } },
      right: { kind: 'num', value: 5 },
    };
    const problem: Problem = {
      id: 'hand',
      prompt: 'Compute 12*3+5.',
      answer: '41',
      data: {
        expression: '12*3+5',
        tree,
        steps: [
          { left: 12, op: '*', right: 3, value: 36 },
          { left: 36, op: '+', right: 5, value: 41 },
        ],
        source: 'arith',
      },
    };
    const task = new MathTask();
    expect(task.demonstrate(problem, rngFor(1))).toBe('12*3=36, 36+5=41. \\boxed{41}');
    const wrong = task.demonstrateWrong(problem, rngFor(1));
    expect(wrong).toMatch(/^12\*3=\d+, \d+\+5=\d+\. \\boxed\{\d+\}$/);
    expect(task.grade(problem, wrong).reward).toBe(0);
  });

  it('grade correct for every demonstration and wrong for every wrong demonstration', () => {
    const configs = [
      {},
      { operators: ['+', '-', '*', '/'] as ('+' | '-' | '*' | '/')[], ops: [1, 3] as [number, number], parens: 1 },
      { allowNegative: true, wordProblems: 0, ops: [3, 3] as [number, number] },
      { digits: [2, 3] as [number, number], mulDigits: [1, 2] as [number, number], distractors: 3 },
    ];
    for (const [ci, config] of configs.entries()) {
      const task = new MathTask(config);
      for (const split of ['train', 'test'] as const) {
        for (const p of task.problems(split, 400, ci)) {
          const demo = task.demonstrate(p, rngFor('demo', p.id));
          const wrong = task.demonstrateWrong(p, rngFor('wrong', p.id));
          expect(task.grade(p, demo)).toMatchObject({ reward: 1, reason: 'ok' });
          expect(task.grade(p, wrong).reward).toBe(0);
          expect(task.extractAnswer(demo)).toBe(p.answer);
        }
      }
    }
  });
});

describe('math JSONL loader', () => {
  const task = loadMathJsonl(FIXTURE, { name: 'gsm8k', testFraction: 0.3 });

  it('reads every record and splits them deterministically without overlap', () => {
    expect(task.size('train') + task.size('test')).toBe(12);
    expect(task.size('test')).toBeGreaterThan(0);
    const train = task.problems('train', task.size('train'), 1);
    const test = task.problems('test', task.size('test'), 1);
    expect(new Set(train.map((p) => p.prompt)).size).toBe(task.size('train'));
    expect(test.filter((p) => train.some((q) => q.prompt === p.prompt))).toEqual([]);
    const again = loadMathJsonl(FIXTURE, { name: 'gsm8k', testFraction: 0.3 });
    expect(again.problems('test', task.size('test'), 1)).toEqual(test);
  });

  it('understands GSM8K "####" answers, \\boxed solutions and plain answers', () => {
    const records = parseMathJsonl(readFileSync(FIXTURE, 'utf8'), 'fixture');
    const byStart = (s: string) => records.find((r) => r.problem.startsWith(s));
    expect(byStart('Natalia')?.answer).toBe('72');
    expect(byStart('A shop')?.answer).toBe('1,234');
    expect(byStart('What is $')?.answer).toBe('\\frac{3}{2}');
    expect(byStart('What is 6')?.answer).toBe('42');
    expect(byStart('A train')?.answer).toBe('180');
    expect(byStart('The temperature')?.answer).toBe('-3');
    expect(byStart('Betty')?.line).toBe(5); // blank line 4 is skipped, numbering is by file line
    const all = new MathJsonlTask(records, { testFraction: 0.5 });
    const problems = [...all.problems('train', all.size('train'), 0), ...all.problems('test', all.size('test'), 0)];
    const shop = problems.find((p) => p.prompt.startsWith('A shop')) as Problem;
    expect(all.grade(shop, '\\boxed{1234}').reward).toBe(1);
    const frac = problems.find((p) => p.prompt.startsWith('What is $')) as Problem;
    expect(all.grade(frac, 'so \\boxed{1.5}').reward).toBe(1);
    expect(all.grade(frac, 'so \\boxed{6/4}').reward).toBe(1);
    expect(all.grade(frac, 'so \\boxed{3/4}').reward).toBe(0);
  });

  it('demonstrations grade correct and wrong demonstrations grade wrong', () => {
    const all = new MathJsonlTask(parseMathJsonl(readFileSync(FIXTURE, 'utf8')), { testFraction: 0.5 });
    for (const split of ['train', 'test'] as const) {
      for (const p of all.problems(split, all.size(split), 2)) {
        const demo = all.demonstrate(p, rngFor(1));
        expect(demo).not.toMatch(/<<|####/);
        expect(all.grade(p, demo).reward).toBe(1);
        expect(all.grade(p, all.demonstrateWrong(p, rngFor(2))).reward).toBe(0);
      }
    }
    const natalia = all.problems('train', 12, 0).concat(all.problems('test', 12, 0)).find((p) => p.prompt.startsWith('Natalia'));
    expect(all.demonstrate(natalia as Problem, rngFor(1))).toBe(
      'Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n\\boxed{72}',
    );
  });

  it('cycles with distinct ids when more problems are asked than a split holds', () => {
    const ps = task.problems('train', task.size('train') * 2 + 1, 4);
    expect(new Set(ps.map((p) => p.id)).size).toBe(ps.length);
  });

  it('names the line and the missing field of a bad record', () => {
    expect(() => parseMathJsonl('{"question": "a"}\n', 'f.jsonl')).toThrow('f.jsonl:1: missing field "answer" (or "solution")');
    expect(() => parseMathJsonl('{"answer": "3"}\n', 'f.jsonl')).toThrow('f.jsonl:1: missing field "problem" (or "question")');
    expect(() => parseMathJsonl('{"question": "a", "answer": "1"}\n{oops\n', 'f.jsonl')).toThrow(/^f\.jsonl:2: invalid JSON/);
    expect(() => parseMathJsonl('[1]\n', 'f.jsonl')).toThrow('f.jsonl:1: expected a JSON object');
    expect(() => parseMathJsonl('{"problem": "a", "solution": "long text\\nwithout a final answer"}', 'f.jsonl')).toThrow(
      /f\.jsonl:1: no final answer in field "solution"/,
    );
    expect(() => parseMathJsonl('\n\n', 'f.jsonl')).toThrow(/no problems/);
    const single = new MathJsonlTask(parseMathJsonl('{"question": "a", "answer": "1"}'), { testFraction: 0.5 });
    const empty = single.size('train') === 0 ? 'train' : 'test';
    expect(() => single.problems(empty, 1, 0)).toThrow(`the ${empty} split is empty`);
    expect(single.problems(empty, 0, 0)).toEqual([]);
  });
});

describe('SeededRng (shared by every generator)', () => {
  /** Independent BigInt reference of splitmix32 seeding + xoshiro128**. */
  function referenceOutputs(seed: number, n: number): number[] {
    const M = 0xffffffffn;
    const mul = (a: bigint, b: bigint): bigint => (a * b) & M;
    const rotl = (v: bigint, k: bigint): bigint => ((v << k) | (v >> (32n - k))) & M;
    let x = BigInt(seed) & M;
    const sm = (): bigint => {
      x = (x + 0x9e3779b9n) & M;
      let z = x;
      z = mul(z ^ (z >> 16n), 0x21f0aaadn);
      z = mul(z ^ (z >> 15n), 0x735a2d97n);
      return z ^ (z >> 15n);
    };
    const s = [sm(), sm(), sm(), sm()];
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      out.push(Number(mul(rotl(mul(s[1] as bigint, 5n), 7n), 9n)));
      const t = ((s[1] as bigint) << 9n) & M;
      s[2] = (s[2] as bigint) ^ (s[0] as bigint);
      s[3] = (s[3] as bigint) ^ (s[1] as bigint);
      s[1] = (s[1] as bigint) ^ (s[2] as bigint);
      s[0] = (s[0] as bigint) ^ (s[3] as bigint);
      s[2] = (s[2] as bigint) ^ t;
      s[3] = rotl(s[3] as bigint, 11n);
    }
    return out;
  }

  it('implements xoshiro128** exactly', () => {
    for (const seed of [0, 1, 42, 0x7fffffff, 0xdeadbeef]) {
      const rng = new SeededRng(seed);
      expect(Array.from({ length: 50 }, () => rng.nextUint32())).toEqual(referenceOutputs(seed, 50));
    }
  });

  it('is frozen: these values decide which problems are held out and must never change', () => {
    const rng = new SeededRng(42);
    expect([rng.nextUint32(), rng.nextUint32()]).toEqual([660444221, 3652823732]);
    const keyed = rngFor('math', 'train', 1, 0);
    expect([keyed.int(0, 1e9), keyed.int(0, 1e9)]).toEqual([509041098, 831017121]);
    const splits = Array.from({ length: 10_000 }, (_, i) => splitOfKey(`key${i}`, 0.2));
    expect(splits.filter((x) => x === 'test').length).toBeGreaterThan(1850);
    expect(splits.filter((x) => x === 'test').length).toBeLessThan(2150);
  });

  it('draws integers uniformly over inclusive ranges and picks every element', () => {
    const rng = new SeededRng(5);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[rng.int(-3, 3) + 3]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    for (let i = 0; i < 1000; i++) {
      const f = rng.next();
      expect(f >= 0 && f < 1).toBe(true);
    }
    expect(rng.int(4, 4)).toBe(4);
    expect(() => rng.int(3, 2)).toThrow(RangeError);
    expect(() => rng.pick([])).toThrow(RangeError);
    expect(shuffleInPlace(rng, [1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(rngFor('a', 1).next()).toBe(rngFor('a', 1).next());
    expect(rngFor('a', 1).next()).not.toBe(rngFor('a', 2).next());
  });
});
