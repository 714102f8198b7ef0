import { describe, expect, it } from 'vitest';
import { extractProgram } from '../src/tasks/code/extract.js';
import { familyGrid, PROGRAM_FAMILIES } from '../src/tasks/code/families.js';
import type { CodeProblemData } from '../src/tasks/code/generator.js';
import { runProgram, runSource } from '../src/tasks/code/interpreter.js';
import { parseProgram } from '../src/tasks/code/parser.js';
import { CodeTask, fenceProgram, gradeProgramOutput } from '../src/tasks/code/task.js';
import { trainPoolOf } from '../src/tasks/pools.js';
import { rngFor, SeededRng } from '../src/tasks/rng.js';

const value = (src: string, x = 0): number | string => {
  const r = runSource(src, x);
  return r.ok ? r.value : r.error;
};

describe('code interpreter', () => {
  it('follows operator precedence and associativity', () => {
    const cases: [string, number][] = [
      ['return 2 + 3 * 4', 14],
      ['return (2 + 3) * 4', 20],
      ['return 10 - 4 - 3', 3],
      ['return 2 * 3 % 4', 2],
      ['return 100 // 10 // 3', 3],
      ['return -2 * 3', -6],
      ['return - -2', 2],
      ['return 1 + 2 == 3', 1],
      ['return not 1 == 2', 1],
      ['return 1 or 0 and 0', 1],
      ['return (1 or 0) and 0', 0],
      ['return 5 > 3 and 2 > 1', 1],
      ['return 3 != 3', 0],
      ['return 2 <= 2', 1],
      ['return 7 and 9', 1],
      ['return not 0', 1],
    ];
    for (const [src, v] of cases) expect(value(src), src).toBe(v);
  });

  it('floors // and % like Python on negative operands', () => {
    // Expected values are Python 3's.
    const cases: [number, number, number, number][] = [
      [-7, 2, -4, 1],
      [7, -2, -4, -1],
      [-7, -2, 3, -1],
      [7, 2, 3, 1],
      [0, -3, 0, 0],
      [-6, 3, -2, 0],
      [-1, 5, -1, 4],
    ];
    for (const [a, b, q, r] of cases) {
      expect(value(`return x // ${b < 0 ? `(0 - ${-b})` : b}`, a)).toBe(q);
      expect(value(`return x % ${b < 0 ? `(0 - ${-b})` : b}`, a)).toBe(r);
    }
    expect(value('return -7 // 2')).toBe(-4); // unary minus binds tighter than //
    expect(value('return -(7 // 2)')).toBe(-3);
  });

  it('runs assignments, conditionals and bounded loops', () => {
    const prog = 'y = x * 3\nif y > 10: y = y - 4\nreturn y % 7';
    expect(value(prog, 5)).toBe(4);
    expect(value(prog, 2)).toBe(6);
    expect(value(prog, -3)).toBe(5);
    const pow = 'y = 1\nrepeat x: y = y * 2\nreturn y';
    expect(value(pow, 10)).toBe(1024);
    expect(value(pow, -3)).toBe(1);
    expect(value('  y = 0\n\n  repeat 3: if y < 5: y = y + 2\r\n  return y  \n')).toBe(6);
    expect(value('if x > 0: return 1\nreturn 2', 3)).toBe(1);
    expect(value('repeat 5: return 9\nreturn 0')).toBe(9);
    expect(value('return x != 0 and 10 // x > 1', 0)).toBe(0); // short-circuit avoids division by zero
  });

  it('stops a runaway loop at the step limit quickly', () => {
    const r = runSource('y = 0\nrepeat 1000000000: y = y + 1\nreturn y', 0);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toMatch(/step limit exceeded/);
    expect(r.steps).toBeLessThanOrEqual(10_001);
    const nested = runSource('repeat 100000: repeat 100000: repeat 100000: x = x\nreturn x', 0);
    expect(nested.ok ? '' : nested.error).toMatch(/step limit/);
  });

  it('turns runtime faults into errors', () => {
    expect(value('y = 2\nrepeat 40: y = y * 2\nreturn y')).toMatch(/integer overflow/);
    expect(value('return 2147483648 + 0')).toBe(2147483648);
    expect(value('return 2147483648 + 1')).toMatch(/integer overflow/);
    expect(value('return 1 // 0')).toMatch(/line 1: division by zero/);
    expect(value('return 1 % 0')).toMatch(/modulo by zero/);
    expect(value('y = 1\nreturn z')).toMatch(/line 2: undefined variable 'z'/);
    expect(value('y = 1')).toBe('no return');
    const many = Array.from({ length: 16 }, (_, i) => `v${i} = ${i}`).join('\n') + '\nreturn 0';
    expect(value(many)).toMatch(/too many variables/);
    const fifteen = Array.from({ length: 15 }, (_, i) => `v${i} = ${i}`).join('\n') + '\nreturn v14';
    expect(value(fifteen)).toBe(14);
  });

  it('rejects malformed programs with a line number', () => {
    const cases: [string, RegExp][] = [
      ['', /empty program/],
      ['return', /line 1: expression expected/],
      ['if x > 1 return 2', /line 1: expected ':'/],
      ['y = = 3', /line 1: unexpected '='/],
      ['return 1 < 2 < 3', /chained comparisons/],
      ['return x +', /expression expected/],
      ['return (1', /expected '\)'/],
      ['return 1)', /unexpected '\)' after statement/],
      ['y = 1\nrepeat 3:\n  y = 2\nreturn y', /line 2: missing statement/],
      ['return x!', /unexpected character "!"/],
      ['return 12abc', /bad number/],
      ['return 99999999999', /integer literal too long/],
      ['return 3000000000', /too large/],
      ['y = 1\nreturn y\nelse: y = 2', /line 3: expected '=' after 'else'/],
      ['return if', /unexpected 'if' in expression/],
      ['return ' + '('.repeat(900) + '1' + ')'.repeat(900), /nesting too deep/],
      ['return ' + '-'.repeat(1000) + '1', /nesting too deep/],
      ['return ' + 'not '.repeat(400) + '1', /nesting too deep/],
      ['return 1' + ' + 1'.repeat(1000), /program too long/],
      ['y = 1\n'.repeat(70) + 'return y', /more than 64 lines/],
    ];
    for (const [src, re] of cases) {
      const p = parseProgram(src);
      expect(p.ok, src.slice(0, 40)).toBe(false);
      expect(p.ok ? '' : p.error, src.slice(0, 40)).toMatch(re);
    }
    expect(parseProgram(42 as unknown as string)).toMatchObject({ ok: false });
  });

  it('never throws on random token soup and random characters', () => {
    const rng = new SeededRng(99);
    const soup = ['if', 'repeat', 'return', 'and', 'or', 'not', 'x', 'y', '=', '==', '<', '>=', '+', '-', '*', '//', '%', '(', ')', ':', '\n', '0', '7', '2147483647', '```', 'else', '#'];
    const atom = (): string => rng.pick(['x', 'y', '0', '1', '3', '-2', '2147483647', '65536']);
    const expr = (d: number): string =>
      d <= 0 || rng.next() < 0.3
        ? atom()
        : rng.pick([
            () => `${expr(d - 1)} ${rng.pick(['+', '-', '*', '//', '%', '==', '<', '>=', 'and', 'or'])} ${expr(d - 1)}`,
            () => `(${expr(d - 1)})`,
            () => `not ${expr(d - 1)}`,
            () => `-${expr(d - 1)}`,
          ])();
    const stmt = (d: number): string =>
      rng.pick([
        () => `y = ${expr(2)}`,
        () => `x = ${expr(2)}`,
        () => `return ${expr(3)}`,
        () => (d > 0 ? `if ${expr(2)}: ${stmt(d - 1)}` : 'y = 1'),
        () => (d > 0 ? `repeat ${expr(1)}: ${stmt(d - 1)}` : 'y = 2'),
      ])();
    let ran = 0;
    for (let i = 0; i < 4000; i++) {
      const lines = Array.from({ length: rng.int(1, 5) }, () => stmt(2));
      const tokens = lines.join(' \n ').split(' ');
      // Corrupt half of the programs: delete, duplicate or insert a random token.
      if (rng.next() < 0.5) {
        const k = rng.int(0, tokens.length - 1);
        const how = rng.int(0, 2);
        if (how === 0) tokens.splice(k, 1);
        else if (how === 1) tokens.splice(k, 0, tokens[k] as string);
        else tokens.splice(k, 0, rng.pick(soup));
      }
      const src = tokens.join(' ');
      const parsed = parseProgram(src);
      if (parsed.ok) {
        ran++;
        const r = runProgram(parsed.program, rng.int(-50, 50));
        expect(typeof r.ok).toBe('boolean');
      }
      const g = gradeProgramOutput([{ input: 1, output: 1 }], fenceProgram(src));
      expect([0, 1]).toContain(g.reward);
      const flat = Array.from({ length: rng.int(0, 30) }, () => rng.pick(soup)).join(rng.next() < 0.5 ? ' ' : '');
      expect(gradeProgramOutput([{ input: 1, output: 1 }], fenceProgram(flat)).reward).toBeLessThanOrEqual(1);
      const chars = Array.from({ length: rng.int(0, 40) }, () => String.fromCharCode(rng.int(0, 200))).join('');
      expect(typeof parseProgram(chars).ok).toBe('boolean');
      expect(gradeProgramOutput([{ input: 0, output: 0 }], chars).reward).toBe(0);
    }
    expect(ran).toBeGreaterThan(1000); // the soup reaches the interpreter too
  });
});

describe('program extraction', () => {
  it('takes the last complete fenced block, else the text after the last "Program:"', () => {
    expect(extractProgram('```\nreturn 1\n```')).toBe('return 1');
    expect(extractProgram('a\n```python\nreturn 1\n```\nthen\n```\nreturn 2\n```\ndone')).toBe('return 2');
    expect(extractProgram('```\nreturn 1\n```\n```\nreturn 2')).toBe('return 1'); // unpaired last fence ignored
    expect(extractProgram('```return x + 1```')).toBe('return x + 1');
    expect(extractProgram('Program: return 3')).toBe('return 3');
    expect(extractProgram('Program: return 3\nProgram:\ny = x\nreturn y')).toBe('y = x\nreturn y');
    expect(extractProgram('return 3')).toBeNull();
    expect(extractProgram('```\nreturn 3')).toBeNull();
    expect(extractProgram(null as unknown as string)).toBeNull();
  });

  it('grades with a reason for each failure kind', () => {
    const tests = [
      { input: 0, output: 1 },
      { input: 2, output: 3 },
    ];
    expect(gradeProgramOutput(tests, '```\nreturn x + 1\n```')).toEqual({ reward: 1, correct: true, extracted: 'return x + 1', reason: 'ok' });
    expect(gradeProgramOutput(tests, 'return x + 1').reason).toMatch(/no program found/);
    expect(gradeProgramOutput(tests, '```\n\n```').reason).toBe('empty program');
    expect(gradeProgramOutput(tests, '```\nreturn x +\n```').reason).toMatch(/^parse error: line 1/);
    expect(gradeProgramOutput(tests, '```\nreturn 1\n```').reason).toBe('test 2 failed: f(2) = 1, expected 3');
    expect(gradeProgramOutput(tests, '```\nreturn 1 // x\n```').reason).toMatch(/^test 1 error: f\(0\): line 1: division by zero/);
    expect(gradeProgramOutput(tests, '```\nrepeat 99999999: x = x\nreturn x\n```').reason).toMatch(/step limit/);
  });
});

describe('program families', () => {
  it('reference evaluators agree with the interpreter on every program of every family', () => {
    for (const f of PROGRAM_FAMILIES) {
      for (const p of familyGrid(f)) {
        const parsed = parseProgram(f.render(p));
        expect(parsed.ok, f.render(p)).toBe(true);
        if (!parsed.ok) continue;
        for (let x = -30; x <= 40; x += 1) {
          const r = runProgram(parsed.program, x);
          if (!r.ok || r.value !== f.run(p, x)) throw new Error(`${f.name}(${p}) at x=${x}: ${JSON.stringify(r)} vs ${f.run(p, x)}`);
        }
      }
    }
  });
});

describe('code task', () => {
  const task = new CodeTask();

  it('renders the prompt and demonstration in the documented format', () => {
    const [p] = task.problems('train', 1, 0);
    const d = p?.data as CodeProblemData;
    expect(p?.prompt).toBe(['Find f(x).', ...d.examples.map((e) => `f(${e.input}) = ${e.output}`)].join('\n'));
    expect(task.demonstrate(p!, rngFor(0))).toBe('```\n' + d.program + '\n```');
    expect(d.tests.length).toBe(8);
    expect(d.tests.slice(0, 3).map((t) => t.input)).toEqual([0, 1, -1]);
    for (const e of [...d.examples, ...d.tests]) expect(value(d.program, e.input)).toBe(e.output);
  });

  it('is deterministic and index-stable', () => {
    const a = task.problems('train', 50, 3);
    expect(task.problems('train', 50, 3)).toEqual(a);
    expect(new CodeTask().problems('train', 20, 3)).toEqual(a.slice(0, 20));
    expect(new Set(a.map((p) => p.id)).size).toBe(50);
  });

  it('keeps held-out programs out of training under any seed', () => {
    const train = new Set<string>();
    for (const seed of [1, 2, 3]) for (const p of task.problems('train', 1000, seed)) train.add(p.answer);
    const test = task.problems('test', 1000, 1).map((p) => p.answer);
    expect(test.filter((prog) => train.has(prog))).toEqual([]);
    expect(new Set(test).size).toBeGreaterThan(15);
    const byPrompt = new CodeTask({ splitBy: 'prompt' });
    const trainPrompts = new Set(byPrompt.problems('train', 1000, 1).map((p) => p.prompt));
    expect(byPrompt.problems('test', 500, 1).filter((p) => trainPrompts.has(p.prompt))).toEqual([]);
  });

  it('pools warm-up and RL problems by the key the split used', () => {
    // Program split: a program is warm-up or RL, never both. Prompt split (difficulty easy):
    // pools are disjoint in prompts, and the same programs appear in both.
    const byProgram = task.problems('train', 600, 5);
    const poolOfProgram = new Map<string, string>();
    for (const p of byProgram) {
      const pool = trainPoolOf(p);
      expect(poolOfProgram.get(p.answer) ?? pool).toBe(pool);
      poolOfProgram.set(p.answer, pool);
    }
    const easy = new CodeTask({ level: 1, splitBy: 'prompt' }).problems('train', 600, 5);
    const warm = easy.filter((p) => trainPoolOf(p) === 'warmup');
    const rl = easy.filter((p) => trainPoolOf(p) === 'rl');
    const warmPrompts = new Set(warm.map((p) => p.prompt));
    expect(rl.filter((p) => warmPrompts.has(p.prompt))).toEqual([]);
    const warmPrograms = new Set(warm.map((p) => p.answer));
    expect(rl.filter((p) => warmPrograms.has(p.answer)).length).toBeGreaterThan(rl.length * 0.9);
  });

  it('shows examples that identify the target among the enabled programs', () => {
    for (const level of [1, 2, 3, 4]) {
      const t = new CodeTask({ level });
      const universe = PROGRAM_FAMILIES.filter((f) => f.level <= level).flatMap((f) => familyGrid(f).map((p) => ({ f, p })));
      for (const p of t.problems('train', 60, level)) {
        const d = p.data as CodeProblemData;
        expect(d.examples.length).toBeGreaterThanOrEqual(4);
        const consistent = universe.filter(({ f, p: q }) => d.examples.every((e) => f.run(q, e.input) === e.output));
        for (const { f, p: q } of consistent) {
          expect(d.tests.every((e) => f.run(q, e.input) === e.output), `${f.render(q)} vs ${d.program}`).toBe(true);
        }
      }
    }
  });

  it('demonstrations pass every hidden test; wrong demonstrations parse and fail one', () => {
    for (const level of [1, 2, 3, 4]) {
      const t = new CodeTask({ level });
      for (const split of ['train', 'test'] as const) {
        for (const p of t.problems(split, 150, 10 + level)) {
          expect(t.grade(p, t.demonstrate(p, rngFor(1)))).toMatchObject({ reward: 1, reason: 'ok' });
          expect(t.grade(p, p.answer)).toMatchObject({ reward: 0 }); // not fenced: no program found
          const wrong = t.demonstrateWrong(p, rngFor('w', p.id));
          expect(t.grade(p, wrong).reward).toBe(0);
          expect(parseProgram(extractProgram(wrong) ?? '').ok, wrong).toBe(true);
        }
      }
    }
  });

  it('validates its knobs', () => {
    expect(() => new CodeTask({ level: 0 })).toThrow(/level/);
    expect(() => new CodeTask({ families: ['nope'] })).toThrow(/unknown family "nope"/);
    expect(() => new CodeTask({ examples: 0 })).toThrow(/examples/);
    expect(new CodeTask({ families: ['add'] }).programCount).toBe(24);
  });
});
