// Target-program families of the code task. Each family is a program template with integer
// parameters over a small grid, a renderer to source text, and a reference evaluator in plain JS
// (independent of the interpreter; the tests check that both agree on the whole grid).
import { floorDiv, floorMod } from './interpreter.js';

/** A family of target programs. */
export interface ProgramFamily {
  /** Stable name used in configs. */
  name: string;
  /** Difficulty level (1..4) from which the family is enabled. */
  level: number;
  /** Inclusive ranges of the parameters. */
  params: readonly (readonly [number, number])[];
  /** Whether a parameter tuple is allowed (excludes degenerate programs). */
  valid?(p: readonly number[]): boolean;
  /** Canonical source text. */
  render(p: readonly number[]): string;
  /** The program's value on x, mirroring the language semantics. */
  run(p: readonly number[], x: number): number;
  /** Inputs where the behaviour changes (thresholds), offered to the hidden tests. */
  edges?(p: readonly number[]): number[];
}

/** "x + 3" or "x - 3". */
function plus(v: string, k: number): string {
  return k >= 0 ? `${v} + ${k}` : `${v} - ${-k}`;
}

/** The built-in families, easiest first. */
export const PROGRAM_FAMILIES: readonly ProgramFamily[] = [
  {
    name: 'add',
    level: 1,
    params: [[-12, 12]],
    valid: ([a]) => a !== 0,
    render: ([a]) => `return ${plus('x', a as number)}`,
    run: ([a], x) => x + (a as number),
  },
  {
    name: 'mul',
    level: 1,
    params: [[2, 9]],
    render: ([a]) => `return x * ${a}`,
    run: ([a], x) => x * (a as number),
  },
  {
    name: 'affine',
    level: 2,
    params: [
      [2, 5],
      [-9, 9],
    ],
    valid: ([, b]) => b !== 0,
    render: ([a, b]) => `return ${plus(`x * ${a}`, b as number)}`,
    run: ([a, b], x) => x * (a as number) + (b as number),
  },
  {
    name: 'mod',
    level: 2,
    params: [[2, 9]],
    render: ([a]) => `return x % ${a}`,
    run: ([a], x) => floorMod(x, a as number),
  },
  {
    name: 'div',
    level: 2,
    params: [[2, 9]],
    render: ([a]) => `return x // ${a}`,
    run: ([a], x) => floorDiv(x, a as number),
  },
  {
    name: 'cap',
    level: 2,
    params: [[-5, 15]],
    render: ([a]) => `if x > ${a}: return ${a}\nreturn x`,
    run: ([a], x) => Math.min(x, a as number),
    edges: ([a]) => [a as number, (a as number) + 1],
  },
  {
    name: 'floor',
    level: 2,
    params: [[-5, 15]],
    render: ([a]) => `if x < ${a}: return ${a}\nreturn x`,
    run: ([a], x) => Math.max(x, a as number),
    edges: ([a]) => [a as number, (a as number) - 1],
  },
  {
    name: 'square',
    level: 3,
    params: [[-9, 9]],
    render: ([a]) => (a === 0 ? 'return x * x' : `return ${plus('x * x', a as number)}`),
    run: ([a], x) => x * x + (a as number),
  },
  {
    name: 'step',
    level: 3,
    params: [
      [-5, 15],
      [2, 9],
    ],
    render: ([a, b]) => `if x > ${a}: return ${b}\nreturn 0`,
    run: ([a, b], x) => (x > (a as number) ? (b as number) : 0),
    edges: ([a]) => [a as number, (a as number) + 1],
  },
  {
    name: 'ifmod',
    level: 3,
    params: [
      [2, 5],
      [1, 9],
    ],
    render: ([a, b]) => `if x % ${a} == 0: return x // ${a}\nreturn x + ${b}`,
    run: ([a, b], x) => (floorMod(x, a as number) === 0 ? floorDiv(x, a as number) : x + (b as number)),
  },
  {
    name: 'loopsum',
    level: 3,
    params: [[2, 9]],
    render: ([a]) => `y = 0\nrepeat x: y = y + ${a}\nreturn y`,
    run: ([a], x) => Math.max(x, 0) * (a as number),
    edges: () => [0, -1],
  },
  {
    name: 'absdiff',
    level: 3,
    params: [[-5, 10]],
    render: ([a]) => `y = ${a === 0 ? 'x' : plus('x', -(a as number))}\nif y < 0: y = -y\nreturn y`,
    run: ([a], x) => Math.abs(x - (a as number)),
    edges: ([a]) => [a as number, (a as number) - 1],
  },
  {
    name: 'compose',
    level: 4,
    params: [
      [2, 5],
      [5, 30],
      [1, 9],
      [3, 9],
    ],
    render: ([a, b, c, d]) => `y = x * ${a}\nif y > ${b}: y = y - ${c}\nreturn y % ${d}`,
    run: ([a, b, c, d], x) => {
      let y = x * (a as number);
      if (y > (b as number)) y -= c as number;
      return floorMod(y, d as number);
    },
    edges: ([a, b]) => [floorDiv(b as number, a as number), floorDiv(b as number, a as number) + 1],
  },
  {
    name: 'doubling',
    level: 4,
    params: [
      [1, 4],
      [-3, 3],
    ],
    // y*2 once is just "x * 2" (family mul).
    valid: ([a, b]) => !(a === 1 && b === 0),
    render: ([a, b]) => (b === 0 ? `y = x\nrepeat ${a}: y = y * 2\nreturn y` : `y = x\nrepeat ${a}: y = ${plus('y * 2', b as number)}\nreturn y`),
    run: ([a, b], x) => {
      let y = x;
      for (let k = 0; k < (a as number); k++) y = y * 2 + (b as number);
      return y;
    },
  },
];

/** Every valid parameter tuple of a family, in lexicographic order. */
export function familyGrid(f: ProgramFamily): number[][] {
  let out: number[][] = [[]];
  for (const [lo, hi] of f.params) {
    const next: number[][] = [];
    for (const prefix of out) for (let v = lo; v <= hi; v++) next.push([...prefix, v]);
    out = next;
  }
  return f.valid ? out.filter((p) => f.valid?.(p)) : out;
}

/** The families enabled at a level (all families with level <= the given one). */
export function familiesAtLevel(level: number): ProgramFamily[] {
  return PROGRAM_FAMILIES.filter((f) => f.level <= level);
}

/** Looks families up by name; throws naming an unknown one. */
export function familiesByName(names: readonly string[]): ProgramFamily[] {
  return names.map((n) => {
    const f = PROGRAM_FAMILIES.find((g) => g.name === n);
    if (!f) throw new RangeError(`code config: unknown family "${n}" (known: ${PROGRAM_FAMILIES.map((g) => g.name).join(', ')})`);
    return f;
  });
}
