// Resource bounds of the code-task language. Every program, however malformed, stays inside them.

/** Bounds enforced by the lexer, parser and interpreter. */
export interface CodeLimits {
  /** Most characters in a program's source. */
  maxChars: number;
  /** Most lines (including blank ones). */
  maxLines: number;
  /** Most nesting of expressions and statements (parentheses, unary operators, if/repeat prefixes). */
  maxDepth: number;
  /** Most evaluation steps per run (one per statement executed and per expression node evaluated). */
  maxSteps: number;
  /** Most distinct variables alive in a run, x included. */
  maxVars: number;
  /** Largest magnitude of any value; beyond it a run fails with "integer overflow". */
  maxMagnitude: number;
}

/** The default bounds: 10k steps, 16 variables, |v| <= 2^31. */
export const DEFAULT_CODE_LIMITS: Readonly<CodeLimits> = Object.freeze({
  maxChars: 2000,
  maxLines: 64,
  maxDepth: 48,
  maxSteps: 10_000,
  maxVars: 16,
  maxMagnitude: 2 ** 31,
});
