// A math Task over a user JSONL file: one JSON object per line with `problem` or `question`, and
// `answer` or `solution`. GSM8K answers ("... #### 1,234") and MATH solutions ("... \boxed{3/2}")
// are understood. The split is by a hash of the problem text, so duplicates share a split.
import { readFileSync } from 'node:fs';
import type { Grade, Problem, Rng, Task } from '../task.js';
import { rngFor, shuffleInPlace } from '../rng.js';
import { checkTestFraction, splitOfKey } from '../split.js';
import { lastBoxedContent } from './boxed.js';
import { normalizeAnswer, parseRational, formatRational } from './normalize.js';
import { gradeBoxedAnswer } from './verify.js';

/** Options of the JSONL math task. */
export interface MathJsonlOptions {
  /** Task name (default "gsm8k"). */
  name?: string;
  /** Share of problems held out for the test split (default 0.2). */
  testFraction?: number;
}

/** One parsed record: the statement, the final answer and, when present, a worked solution. */
export interface MathRecord {
  line: number;
  problem: string;
  answer: string;
  solution: string | null;
}

/** Parses JSONL text; throws an error naming the 1-based line and the problem on a bad line. */
export function parseMathJsonl(text: string, source = 'input'): MathRecord[] {
  const records: MathRecord[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (!raw.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${source}:${line}: invalid JSON (${(e as Error).message})`);
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${source}:${line}: expected a JSON object`);
    const o = obj as Record<string, unknown>;
    const problem = textField(o, ['problem', 'question'], source, line);
    const answerField = o.answer !== undefined ? 'answer' : 'solution';
    const answerText = textField(o, ['answer', 'solution'], source, line);
    const final = finalAnswer(answerText);
    if (final === null) throw new Error(`${source}:${line}: no final answer in field "${answerField}" (expected "#### N", \\boxed{...} or a short answer)`);
    const worked = answerText.trim() !== final ? answerText : null;
    records.push({ line, problem: problem.trim(), answer: final, solution: worked });
  });
  if (records.length === 0) throw new Error(`${source}: no problems`);
  return records;
}

/** The final answer in an answer/solution text: after the last "####", else the last \boxed{}, else the whole short text. */
export function finalAnswer(text: string): string | null {
  const hashes = text.lastIndexOf('####');
  if (hashes >= 0) {
    const a = text.slice(hashes + 4).trim();
    return a || null;
  }
  const boxed = lastBoxedContent(text);
  if (boxed !== null) return boxed.trim() || null;
  const t = text.trim();
  return t && t.length <= 64 && !t.includes('\n') ? t : null;
}

/** A math Task over parsed JSONL records. */
export class MathJsonlTask implements Task {
  /** Task name used in configs and reports. */
  readonly name: string;
  private readonly splits: Record<'train' | 'test', MathRecord[]>;
  private readonly testFraction: number;

  constructor(records: readonly MathRecord[], opts: MathJsonlOptions = {}) {
    this.name = opts.name ?? 'gsm8k';
    this.testFraction = opts.testFraction ?? 0.2;
    checkTestFraction(this.testFraction, 'MathJsonlTask');
    this.splits = { train: [], test: [] };
    for (const r of records) this.splits[splitOfKey(problemKey(r.problem), this.testFraction)].push(r);
  }

  /** Number of records in a split. */
  size(split: 'train' | 'test'): number {
    return this.splits[split].length;
  }

  /** `count` problems drawn without replacement (cycling through fresh permutations when count > size). */
  problems(split: 'train' | 'test', count: number, seed: number): Problem[] {
    const pool = this.splits[split];
    if (count > 0 && pool.length === 0) {
      throw new Error(`${this.name}: the ${split} split is empty (testFraction ${this.testFraction})`);
    }
    const out: Problem[] = [];
    for (let round = 0; out.length < count; round++) {
      const order = shuffleInPlace(rngFor(this.name, split, seed, round), pool.map((_, i) => i));
      for (const i of order) {
        if (out.length >= count) break;
        const r = pool[i] as MathRecord;
        out.push({
          id: `${this.name}:${r.line}${round ? `#${round}` : ''}`,
          prompt: r.problem,
          answer: r.answer,
          data: { solution: r.solution, line: r.line },
        });
      }
    }
    return out;
  }

  /** Grades by the last \boxed{} answer (numbers by value, other answers as normalised text). */
  grade(problem: Problem, output: string): Grade {
    return gradeBoxedAnswer(problem.answer, output);
  }

  /** The content of the last balanced \boxed{...}, or null. */
  extractAnswer(output: string): string | null {
    return typeof output === 'string' ? lastBoxedContent(output) : null;
  }

  /** The file's worked solution ending in \boxed{answer} (GSM8K calculator marks removed), or the boxed answer. */
  demonstrate(problem: Problem, _rng: Rng): string {
    const solution = (problem.data as { solution?: string | null } | undefined)?.solution;
    if (!solution) return `\\boxed{${problem.answer}}`;
    const hashes = solution.lastIndexOf('####');
    const body = (hashes >= 0 ? solution.slice(0, hashes) : solution).replace(/<<[^<>]*>>/g, '').trim();
    if (hashes < 0 && lastBoxedContent(body) !== null) return body;
    return body ? `${body}\n\\boxed{${problem.answer}}` : `\\boxed{${problem.answer}}`;
  }

  /** A short output with a plausible wrong answer (the reference off by a small amount). */
  demonstrateWrong(problem: Problem, rng: Rng): string {
    return `\\boxed{${wrongAnswer(problem.answer, rng)}}`;
  }
}

/** Reads and parses a JSONL file into a MathJsonlTask. */
export function loadMathJsonl(path: string, opts: MathJsonlOptions = {}): MathJsonlTask {
  return new MathJsonlTask(parseMathJsonl(readFileSync(path, 'utf8'), path), opts);
}

/** A wrong answer near the reference: integers shift by 1..10, fractions by 1, text gets a suffix. */
export function wrongAnswer(reference: string, rng: Rng): string {
  const v = parseRational(normalizeAnswer(reference));
  if (!v) return `${reference.trim()}+1`;
  const delta = BigInt(rng.pick([1, 2, 10, -1, -2, -10]));
  return formatRational({ num: v.num + delta * v.den, den: v.den });
}

function problemKey(problem: string): string {
  return problem.replace(/\s+/g, ' ').trim().toLowerCase();
}

function textField(o: Record<string, unknown>, names: readonly string[], source: string, line: number): string {
  for (const n of names) {
    const v = o[n];
    if (typeof v === 'string' && v.trim()) return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  throw new Error(`${source}:${line}: missing field "${names[0]}" (or "${names.slice(1).join('", "')}")`);
}
