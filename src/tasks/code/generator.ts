// Generator of code-task problems: a hidden target program from the enabled families, hidden tests
// (edge cases first), and 3-4 shown examples chosen so that the target is identifiable: no other
// program of the enabled families matches every shown example yet fails a hidden test.
import type { Problem, Rng } from '../task.js';
import { rngFor } from '../rng.js';
import { checkTestFraction, splitOfKey } from '../split.js';
import { familiesAtLevel, familiesByName, familyGrid, type ProgramFamily } from './families.js';
import { runSource } from './interpreter.js';

/** Difficulty knobs of the code task. */
export interface CodeConfig {
  /** Families enabled by level: 1 add/mul; 2 + affine, mod, div, cap, floor; 3 + square, step, ifmod, loopsum, absdiff; 4 + compose, doubling. */
  level: number;
  /** Explicit family names; overrides `level` when non-null. */
  families: string[] | null;
  /** Number of shown examples (raised by up to 2 when needed to identify the target). */
  examples: number;
  /** Number of hidden tests (0, 1, -1, the family's edge inputs, then random inputs). */
  hiddenTests: number;
  /** Range of the shown inputs. */
  shownRange: [number, number];
  /** Range of the random hidden inputs. */
  testRange: [number, number];
  /** Split key: the target program (held-out programs are never trained on) or the prompt text. */
  splitBy: 'program' | 'prompt';
  /** Share of keys held out for the test split. */
  testFraction: number;
}

/**
 * Defaults: level 2 (one-line programs and one-threshold conditionals), 4 examples, 8 hidden tests.
 * Calibration (warm-up of 3000 steps x 256 demonstrations, pass@1 on held-out programs at T=0.7):
 * 28% with 0.7M params, 30% with 5M (36% after 7.6k steps); level 3: 22% with 0.7M params.
 */
export const DEFAULT_CODE_CONFIG: Readonly<CodeConfig> = Object.freeze({
  level: 2,
  families: null,
  examples: 4,
  hiddenTests: 8,
  shownRange: [-5, 20],
  testRange: [-30, 40],
  splitBy: 'program',
  testFraction: 0.2,
} as CodeConfig);

/** One input/output pair. */
export interface CodeExample {
  input: number;
  output: number;
}

/** Task-specific payload of a code problem (plain JSON). */
export interface CodeProblemData {
  /** Canonical target program. */
  program: string;
  family: string;
  params: number[];
  /** The examples shown in the prompt. */
  examples: CodeExample[];
  /** The hidden tests that decide the reward. */
  tests: CodeExample[];
  /** What the train/test split hashed (the program or the prompt, per `splitBy`); training pools use it too. */
  splitKey?: string;
}

/** A candidate target: a family and one parameter tuple. */
export interface CodeTarget {
  family: ProgramFamily;
  params: number[];
}

/** The generator's view of a config: the resolved knobs and every program of the enabled families. */
export interface CodeUniverse {
  config: CodeConfig;
  families: ProgramFamily[];
  grids: number[][][];
  targets: CodeTarget[];
}

const MAX_ATTEMPTS = 5_000;
const SHOWN_TRIALS = 40;

/** Merges and validates a partial config and enumerates its program space. */
export function buildCodeUniverse(partial: Partial<CodeConfig> = {}): CodeUniverse {
  const config: CodeConfig = { ...DEFAULT_CODE_CONFIG, ...partial };
  // Copies, so a caller mutating its arrays later cannot change a task's knobs.
  if (Array.isArray(config.families)) config.families = [...config.families];
  if (Array.isArray(config.shownRange)) config.shownRange = [...config.shownRange];
  if (Array.isArray(config.testRange)) config.testRange = [...config.testRange];
  if (!Number.isInteger(config.level) || config.level < 1 || config.level > 4) {
    throw new RangeError(`code config: level must be 1..4, got ${config.level}`);
  }
  const families = config.families ? familiesByName(config.families) : familiesAtLevel(config.level);
  if (families.length === 0) throw new RangeError('code config: no families enabled');
  if (!Number.isInteger(config.examples) || config.examples < 1 || config.examples > 8) {
    throw new RangeError(`code config: examples must be 1..8, got ${config.examples}`);
  }
  if (!Number.isInteger(config.hiddenTests) || config.hiddenTests < 1 || config.hiddenTests > 32) {
    throw new RangeError(`code config: hiddenTests must be 1..32, got ${config.hiddenTests}`);
  }
  for (const k of ['shownRange', 'testRange'] as const) {
    const [lo, hi] = config[k];
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi - lo < 10 || Math.max(-lo, hi) > 1000) {
      throw new RangeError(`code config: ${k} must be integers [lo, hi] with hi - lo >= 10 within +-1000, got ${JSON.stringify(config[k])}`);
    }
  }
  if (config.splitBy !== 'program' && config.splitBy !== 'prompt') throw new RangeError(`code config: splitBy must be "program" or "prompt"`);
  checkTestFraction(config.testFraction, 'code config');
  const grids = families.map(familyGrid);
  const targets = families.flatMap((family, i) => (grids[i] as number[][]).map((params) => ({ family, params })));
  return { config, families, grids, targets };
}

/** The prompt of a code problem: "Find f(x)." then one "f(in) = out" line per example. */
export function codePrompt(examples: readonly CodeExample[]): string {
  return ['Find f(x).', ...examples.map((e) => `f(${e.input}) = ${e.output}`)].join('\n');
}

/** Problem `index` of `split` under `seed`: the same inputs always give the same problem. */
export function generateCodeProblem(u: CodeUniverse, split: 'train' | 'test', seed: number, index: number): Problem {
  const c = u.config;
  const rng = rngFor('code', split, seed, index);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const fi = rng.int(0, u.families.length - 1);
    const family = u.families[fi] as ProgramFamily;
    const params = rng.pick(u.grids[fi] as number[][]);
    const program = family.render(params);
    if (c.splitBy === 'program' && splitOfKey(program, c.testFraction) !== split) continue;
    const tests = hiddenTests(family, params, c, rng);
    const examples = identifyingExamples({ family, params }, tests, u, rng);
    if (!examples) continue;
    const prompt = codePrompt(examples);
    if (c.splitBy === 'prompt' && splitOfKey(prompt, c.testFraction) !== split) continue;
    checkAgainstInterpreter(program, tests);
    const data: CodeProblemData = { program, family: family.name, params, examples, tests, splitKey: c.splitBy === 'program' ? program : prompt };
    return { id: `code:${split}:${seed}:${index}`, prompt, answer: program, data };
  }
  throw new Error(`code generator: no identifiable problem after ${MAX_ATTEMPTS} attempts; config: ${JSON.stringify(c)}`);
}

function hiddenTests(f: ProgramFamily, p: readonly number[], c: CodeConfig, rng: Rng): CodeExample[] {
  const inputs: number[] = [];
  const add = (x: number): void => {
    if (inputs.length < c.hiddenTests && !inputs.includes(x)) inputs.push(x);
  };
  for (const x of [0, 1, -1, ...(f.edges?.(p) ?? [])]) add(x);
  for (let guard = 0; inputs.length < c.hiddenTests && guard < 10_000; guard++) add(rng.int(c.testRange[0], c.testRange[1]));
  return inputs.map((input) => ({ input, output: f.run(p, input) }));
}

/** Shown examples (sorted by input) that rule out every inequivalent program, or null. */
function identifyingExamples(target: CodeTarget, tests: readonly CodeExample[], u: CodeUniverse, rng: Rng): CodeExample[] | null {
  const { family, params } = target;
  const rivals = u.targets.filter((t) => tests.some((e) => t.family.run(t.params, e.input) !== e.output));
  const [lo, hi] = u.config.shownRange;
  const near = (family.edges?.(params) ?? []).flatMap((e) => [e - 2, e - 1, e, e + 1, e + 2]);
  for (let n = u.config.examples; n <= Math.min(8, u.config.examples + 2); n++) {
    for (let trial = 0; trial < SHOWN_TRIALS; trial++) {
      const inputs: number[] = [];
      for (let guard = 0; inputs.length < n && guard < 1000; guard++) {
        const x = near.length > 0 && rng.next() < 0.3 ? rng.pick(near) : rng.int(lo, hi);
        if (!inputs.includes(x)) inputs.push(x);
      }
      const shown = inputs.sort((a, b) => a - b).map((input) => ({ input, output: family.run(params, input) }));
      const ambiguous = rivals.some((t) => shown.every((e) => t.family.run(t.params, e.input) === e.output));
      if (!ambiguous) return shown;
    }
  }
  return null;
}

function checkAgainstInterpreter(program: string, tests: readonly CodeExample[]): void {
  for (const t of tests) {
    const r = runSource(program, t.input);
    if (!r.ok || r.value !== t.output) {
      throw new Error(`code generator: family reference and interpreter disagree on ${JSON.stringify(program)} at x=${t.input}`);
    }
  }
}
