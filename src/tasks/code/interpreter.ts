// Interpreter of the code-task language: a tree walk with a step budget, a variable cap and a
// magnitude cap. Integer semantics follow Python: // and % floor (the remainder takes the divisor's
// sign); comparisons, and, or, not give 1 or 0; any nonzero value is true; and/or short-circuit.
import type { CodeExpr, CodeProgram, CodeStmt } from './ast.js';
import { DEFAULT_CODE_LIMITS, type CodeLimits } from './limits.js';
import { parseProgram } from './parser.js';

/** The outcome of one run: the returned value, or an error message. */
export type RunResult = { ok: true; value: number; steps: number } | { ok: false; error: string; steps: number };

class RunError extends Error {}
class Return {
  constructor(readonly value: number) {}
}

/** Floor division as in Python (b must be nonzero). */
export function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** Floor modulo as in Python: the result has the divisor's sign (b must be nonzero). */
export function floorMod(a: number, b: number): number {
  return a - b * Math.floor(a / b) + 0;
}

/** Runs a parsed program with input x; never throws. */
export function runProgram(program: CodeProgram, x: number, limits: CodeLimits = DEFAULT_CODE_LIMITS): RunResult {
  const machine = new Machine(limits);
  try {
    machine.vars.set('x', machine.check(x));
    machine.block(program.stmts);
    return { ok: false, error: 'no return', steps: machine.steps };
  } catch (e) {
    if (e instanceof Return) return { ok: true, value: e.value, steps: machine.steps };
    if (e instanceof RunError) return { ok: false, error: e.message, steps: machine.steps };
    return { ok: false, error: `runtime failure: ${(e as Error)?.message ?? String(e)}`, steps: machine.steps };
  }
}

/** Parses then runs a source with input x; never throws. */
export function runSource(source: string, x: number, limits: CodeLimits = DEFAULT_CODE_LIMITS): RunResult {
  const parsed = parseProgram(source, limits);
  if (!parsed.ok) return { ok: false, error: `parse error: ${parsed.error}`, steps: 0 };
  return runProgram(parsed.program, x, limits);
}

class Machine {
  readonly vars = new Map<string, number>();
  steps = 0;
  private line = 0;

  constructor(private readonly limits: CodeLimits) {}

  block(stmts: readonly CodeStmt[]): void {
    for (const s of stmts) this.stmt(s);
  }

  stmt(s: CodeStmt): void {
    this.line = s.line;
    this.tick();
    switch (s.kind) {
      case 'assign': {
        const v = this.eval(s.value);
        if (!this.vars.has(s.name) && this.vars.size >= this.limits.maxVars) this.fail(`too many variables (> ${this.limits.maxVars})`);
        this.vars.set(s.name, v);
        return;
      }
      case 'return':
        throw new Return(this.eval(s.value));
      case 'if':
        if (this.eval(s.cond) !== 0) this.stmt(s.body);
        return;
      case 'repeat': {
        const n = this.eval(s.count);
        for (let k = 0; k < n; k++) this.stmt(s.body);
        return;
      }
    }
  }

  eval(e: CodeExpr): number {
    this.tick();
    switch (e.kind) {
      case 'int':
        return this.check(e.value);
      case 'var': {
        const v = this.vars.get(e.name);
        if (v === undefined) this.fail(`undefined variable '${e.name}'`);
        return v as number;
      }
      case 'neg':
        return this.check(0 - this.eval(e.operand));
      case 'not':
        return this.eval(e.operand) === 0 ? 1 : 0;
      case 'bin':
        break;
    }
    if (e.op === 'and') return this.eval(e.left) !== 0 && this.eval(e.right) !== 0 ? 1 : 0;
    if (e.op === 'or') return this.eval(e.left) !== 0 || this.eval(e.right) !== 0 ? 1 : 0;
    const a = this.eval(e.left);
    const b = this.eval(e.right);
    switch (e.op) {
      case '+':
        return this.check(a + b);
      case '-':
        return this.check(a - b);
      case '*':
        // Both factors are within 2^31, so an overflowing product is still detected even when the
        // float result is inexact.
        return this.check(a * b);
      case '//':
        if (b === 0) this.fail('division by zero');
        return this.check(floorDiv(a, b));
      case '%':
        if (b === 0) this.fail('modulo by zero');
        return this.check(floorMod(a, b));
      case '==':
        return a === b ? 1 : 0;
      case '!=':
        return a !== b ? 1 : 0;
      case '<':
        return a < b ? 1 : 0;
      case '<=':
        return a <= b ? 1 : 0;
      case '>':
        return a > b ? 1 : 0;
      case '>=':
        return a >= b ? 1 : 0;
    }
  }

  check(v: number): number {
    if (!Number.isFinite(v) || Math.abs(v) > this.limits.maxMagnitude) this.fail('integer overflow');
    return v + 0; // normalise -0 to 0
  }

  private tick(): void {
    if (++this.steps > this.limits.maxSteps) this.fail(`step limit exceeded (${this.limits.maxSteps})`);
  }

  private fail(message: string): never {
    throw new RunError(`line ${this.line}: ${message}`);
  }
}
