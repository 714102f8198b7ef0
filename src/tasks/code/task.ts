// The code task: infer a small program from examples; graded by running hidden tests in the
// project's own interpreter (no eval, bounded steps and memory).
import type { Grade, Problem, Rng, Task } from '../task.js';
import { extractProgram } from './extract.js';
import { buildCodeUniverse, generateCodeProblem, type CodeConfig, type CodeProblemData, type CodeUniverse } from './generator.js';
import { runProgram } from './interpreter.js';
import { mutateProgram } from './mutate.js';
import { parseProgram } from './parser.js';

/** Wraps a program in the fenced block the verifier extracts. */
export function fenceProgram(program: string): string {
  return '```\n' + program + '\n```';
}

/** Grades an output against hidden tests: reward 1 only when every test passes; never throws. */
export function gradeProgramOutput(tests: readonly { input: number; output: number }[], output: string): Grade {
  try {
    const program = extractProgram(output);
    if (program === null) return fail(null, 'no program found (expected a ``` fenced block)');
    if (!program) return fail(program, 'empty program');
    const parsed = parseProgram(program);
    if (!parsed.ok) return fail(program, `parse error: ${parsed.error}`);
    if (tests.length === 0) return fail(program, 'problem has no tests');
    for (let i = 0; i < tests.length; i++) {
      const t = tests[i] as { input: number; output: number };
      const r = runProgram(parsed.program, t.input);
      if (!r.ok) return fail(program, `test ${i + 1} error: f(${t.input}): ${r.error}`);
      if (r.value !== t.output) return fail(program, `test ${i + 1} failed: f(${t.input}) = ${r.value}, expected ${t.output}`);
    }
    return { reward: 1, correct: true, extracted: program, reason: 'ok' };
  } catch (e) {
    return fail(null, `verifier error: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Program induction from input/output examples, graded by hidden tests. */
export class CodeTask implements Task {
  /** Task name used in configs and reports. */
  readonly name: string = 'code';
  /** The resolved difficulty knobs. */
  readonly config: Readonly<CodeConfig>;
  private readonly universe: CodeUniverse;

  constructor(config: Partial<CodeConfig> = {}) {
    this.universe = buildCodeUniverse(config);
    this.config = Object.freeze(this.universe.config);
  }

  /** Number of distinct target programs of the enabled families. */
  get programCount(): number {
    return this.universe.targets.length;
  }

  /** `count` problems of a split, deterministic in (split, seed, index); splits never overlap. */
  problems(split: 'train' | 'test', count: number, seed: number): Problem[] {
    const out: Problem[] = [];
    for (let i = 0; i < count; i++) out.push(generateCodeProblem(this.universe, split, seed, i));
    return out;
  }

  /** Runs the extracted program on every hidden test. */
  grade(problem: Problem, output: string): Grade {
    const tests = (problem.data as CodeProblemData | undefined)?.tests;
    if (!Array.isArray(tests)) return fail(null, 'problem has no hidden tests');
    return gradeProgramOutput(tests, output);
  }

  /** The last fenced block's content, else the text after the last "Program:", else null. */
  extractAnswer(output: string): string | null {
    return extractProgram(output);
  }

  /** The canonical target program in a fenced block. */
  demonstrate(problem: Problem, _rng: Rng): string {
    return fenceProgram(problem.answer);
  }

  /** The target with one literal or operator mutated, checked to fail a hidden test. */
  demonstrateWrong(problem: Problem, rng: Rng): string {
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = fenceProgram(mutateProgram(problem.answer, rng));
      if (this.grade(problem, candidate).reward === 0) return candidate;
    }
    const tests = (problem.data as CodeProblemData | undefined)?.tests ?? [];
    return fenceProgram(`return ${(tests[0]?.output ?? 0) + 1}`);
  }
}

function fail(extracted: string | null, reason: string): Grade {
  return { reward: 0, correct: false, extracted, reason };
}
