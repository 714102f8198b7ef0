// The generated arithmetic task ("math"): problems from the generator, the boxed-answer verifier,
// and worked-solution demonstrations.
import type { Grade, Problem, Rng, Task } from '../task.js';
import { lastBoxedContent } from './boxed.js';
import { demonstrateMath, demonstrateMathWrong } from './demonstrate.js';
import { generateMathProblem, resolveMathConfig, type MathConfig } from './generator.js';
import { gradeBoxedAnswer } from './verify.js';

/** Generated integer arithmetic problems graded by the last \boxed{} answer. */
export class MathTask implements Task {
  /** Task name used in configs and reports. */
  readonly name: string = 'math';
  /** The resolved difficulty knobs. */
  readonly config: Readonly<MathConfig>;

  constructor(config: Partial<MathConfig> = {}) {
    this.config = Object.freeze(resolveMathConfig(config));
  }

  /** `count` problems of a split, deterministic in (split, seed, index); splits never overlap. */
  problems(split: 'train' | 'test', count: number, seed: number): Problem[] {
    const out: Problem[] = [];
    for (let i = 0; i < count; i++) out.push(generateMathProblem(this.config, split, seed, i));
    return out;
  }

  /** Grades an output by its last \boxed{} answer, compared by value. */
  grade(problem: Problem, output: string): Grade {
    return gradeBoxedAnswer(problem.answer, output);
  }

  /** The content of the last balanced \boxed{...}, or null. */
  extractAnswer(output: string): string | null {
    return typeof output === 'string' ? lastBoxedContent(output) : null;
  }

  /** Worked steps then the boxed answer. */
  demonstrate(problem: Problem, _rng: Rng): string {
    return demonstrateMath(problem);
  }

  /** Worked steps with one slip and the resulting wrong boxed answer. */
  demonstrateWrong(problem: Problem, rng: Rng): string {
    return demonstrateMathWrong(problem, rng);
  }
}
