// Single-point mutations of a program (one literal or one operator changed), used to make plausible
// wrong demonstrations. The result always stays inside the grammar.
import type { Rng } from '../task.js';

const SITE = /\/\/|==|!=|<=|>=|[+\-*%<>]|\d+/g;

const SWAPS: Readonly<Record<string, readonly string[]>> = {
  '+': ['-', '*'],
  '-': ['+'],
  '*': ['+', '//'],
  '//': ['%', '*'],
  '%': ['//'],
  '<': ['<=', '>'],
  '>': ['>=', '<'],
  '<=': ['<'],
  '>=': ['>'],
  '==': ['!='],
  '!=': ['=='],
};

/** The source with one integer literal shifted by 1 or 2, or one binary operator swapped for a similar one. */
export function mutateProgram(source: string, rng: Rng): string {
  // A '-' that does not follow an operand is unary: swapping it to '+' would leave the grammar, so
  // it is not a site.
  const sites = [...source.matchAll(SITE)].filter((m) => m[0] !== '-' || followsOperand(source.slice(0, m.index)));
  if (sites.length === 0) return source;
  const m = rng.pick(sites);
  const text = m[0];
  let replacement: string;
  if (/^\d+$/.test(text)) {
    const v = Number(text);
    const options = [v + 1, v + 2, v - 1, v - 2].filter((w) => w >= 1 || v === 0);
    replacement = String(rng.pick(options));
  } else {
    replacement = rng.pick(SWAPS[text] ?? ['+']);
  }
  const at = m.index ?? 0;
  return source.slice(0, at) + replacement + source.slice(at + text.length);
}

function followsOperand(prefix: string): boolean {
  const before = prefix.trimEnd();
  return /[A-Za-z0-9_)]$/.test(before) && !/(^|[^A-Za-z0-9_])(return|if|repeat|and|or|not)$/.test(before);
}
