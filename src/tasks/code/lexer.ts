// Lexer of the code-task language. Linear in the source length; errors are values, never throws.
import type { CodeLimits } from './limits.js';

/** Token kinds: integer literal, name, keyword, operator/punctuation, end of line, end of input. */
export type TokenKind = 'int' | 'name' | 'kw' | 'op' | 'nl' | 'eof';

/** One token with its 1-based line. */
export interface Token {
  kind: TokenKind;
  text: string;
  line: number;
}

/** The reserved words. */
export const KEYWORDS: ReadonlySet<string> = new Set(['if', 'repeat', 'return', 'and', 'or', 'not']);

const OPERATORS = ['//', '==', '!=', '<=', '>=', '+', '-', '*', '%', '<', '>', '=', '(', ')', ':'];
const MAX_NAME = 32;
const MAX_INT_DIGITS = 10;

/** Tokens of a source, or an error message naming the line. */
export function lex(source: string, limits: CodeLimits): { ok: true; tokens: Token[] } | { ok: false; error: string } {
  if (source.length > limits.maxChars) return { ok: false, error: `program too long (${source.length} > ${limits.maxChars} chars)` };
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c === '\n') {
      tokens.push({ kind: 'nl', text: '\n', line });
      line++;
      if (line > limits.maxLines) return { ok: false, error: `program too long (more than ${limits.maxLines} lines)` };
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c >= '0' && c <= '9') {
      let j = i;
      while (j < source.length && isDigit(source[j] as string)) j++;
      if (j < source.length && isNameChar(source[j] as string)) return { ok: false, error: `line ${line}: bad number '${source.slice(i, j + 1)}'` };
      if (j - i > MAX_INT_DIGITS) return { ok: false, error: `line ${line}: integer literal too long` };
      tokens.push({ kind: 'int', text: source.slice(i, j), line });
      i = j;
    } else if (isNameStart(c)) {
      let j = i;
      while (j < source.length && isNameChar(source[j] as string)) j++;
      const text = source.slice(i, j);
      if (text.length > MAX_NAME) return { ok: false, error: `line ${line}: name too long` };
      tokens.push({ kind: KEYWORDS.has(text) ? 'kw' : 'name', text, line });
      i = j;
    } else {
      const op = OPERATORS.find((o) => source.startsWith(o, i));
      if (!op) return { ok: false, error: `line ${line}: unexpected character ${JSON.stringify(c)}` };
      tokens.push({ kind: 'op', text: op, line });
      i += op.length;
    }
  }
  tokens.push({ kind: 'eof', text: '', line });
  return { ok: true, tokens };
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}

function isNameChar(c: string): boolean {
  return isNameStart(c) || isDigit(c);
}
