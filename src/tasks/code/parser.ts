// Recursive-descent parser of the code-task language. Grammar (one statement per line; blank
// lines and spaces are ignored; full description in docs/code-task.md):
//
//   program := line { NEWLINE line }          line := [ stmt ]
//   stmt    := NAME '=' expr | 'return' expr | 'if' expr ':' stmt | 'repeat' expr ':' stmt
//   expr    := and { 'or' and }               and  := not { 'and' not }
//   not     := 'not' not | cmp                cmp  := sum [ ('=='|'!='|'<'|'<='|'>'|'>=') sum ]
//   sum     := term { ('+'|'-') term }         term := unary { ('*'|'//'|'%') unary }
//   unary   := '-' unary | atom               atom := INT | NAME | '(' expr ')'
//
// Depth is bounded (limits.maxDepth) so hostile nesting cannot overflow the stack.
import type { BinOp, CodeExpr, CodeProgram, CodeStmt } from './ast.js';
import { lex, type Token } from './lexer.js';
import { DEFAULT_CODE_LIMITS, type CodeLimits } from './limits.js';

/** A parse result: the program, or an error message naming the line. */
export type ParseResult = { ok: true; program: CodeProgram } | { ok: false; error: string };

class ParseError extends Error {}

const COMPARISONS: ReadonlySet<string> = new Set(['==', '!=', '<', '<=', '>', '>=']);

/** Parses a program; never throws. A program must contain at least one statement. */
export function parseProgram(source: string, limits: CodeLimits = DEFAULT_CODE_LIMITS): ParseResult {
  try {
    if (typeof source !== 'string') return { ok: false, error: 'program is not a string' };
    const lexed = lex(source, limits);
    if (!lexed.ok) return lexed;
    const program = new Parser(lexed.tokens, limits).program();
    if (program.stmts.length === 0) return { ok: false, error: 'empty program' };
    return { ok: true, program };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, error: e.message };
    return { ok: false, error: `parse failure: ${(e as Error)?.message ?? String(e)}` };
  }
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly limits: CodeLimits,
  ) {}

  program(): CodeProgram {
    const stmts: CodeStmt[] = [];
    while (this.peek().kind !== 'eof') {
      if (this.peek().kind === 'nl') {
        this.pos++;
        continue;
      }
      stmts.push(this.stmt());
      const t = this.peek();
      if (t.kind !== 'nl' && t.kind !== 'eof') this.fail(t, `unexpected '${t.text}' after statement`);
    }
    return { stmts };
  }

  private stmt(): CodeStmt {
    return this.nested(() => {
      const t = this.next();
      if (t.kind === 'kw' && t.text === 'return') return { kind: 'return', line: t.line, value: this.expr() };
      if (t.kind === 'kw' && (t.text === 'if' || t.text === 'repeat')) {
        const head = this.expr();
        this.expect(':', `after ${t.text} ${t.text === 'if' ? 'condition' : 'count'}`);
        if (this.peek().kind === 'nl' || this.peek().kind === 'eof') this.fail(this.peek(), `missing statement after '${t.text} ...:' (the body must be on the same line)`);
        const body = this.stmt();
        return t.text === 'if' ? { kind: 'if', line: t.line, cond: head, body } : { kind: 'repeat', line: t.line, count: head, body };
      }
      if (t.kind === 'name') {
        this.expect('=', `after '${t.text}' (expected an assignment)`);
        return { kind: 'assign', line: t.line, name: t.text, value: this.expr() };
      }
      return this.fail(t, t.kind === 'nl' || t.kind === 'eof' ? 'expected a statement' : `unexpected '${t.text}' at start of statement`);
    });
  }

  private expr(): CodeExpr {
    return this.nested(() => {
      let left = this.and();
      while (this.isKw('or')) {
        this.pos++;
        left = { kind: 'bin', op: 'or', left, right: this.and() };
      }
      return left;
    });
  }

  private and(): CodeExpr {
    let left = this.not();
    while (this.isKw('and')) {
      this.pos++;
      left = { kind: 'bin', op: 'and', left, right: this.not() };
    }
    return left;
  }

  private not(): CodeExpr {
    if (this.isKw('not')) {
      this.pos++;
      return this.nested(() => ({ kind: 'not', operand: this.not() }));
    }
    return this.cmp();
  }

  private cmp(): CodeExpr {
    const left = this.sum();
    const t = this.peek();
    if (t.kind === 'op' && COMPARISONS.has(t.text)) {
      this.pos++;
      const right = this.sum();
      const after = this.peek();
      if (after.kind === 'op' && COMPARISONS.has(after.text)) this.fail(after, 'chained comparisons are not allowed');
      return { kind: 'bin', op: t.text as BinOp, left, right };
    }
    return left;
  }

  private sum(): CodeExpr {
    let left = this.term();
    for (let t = this.peek(); t.kind === 'op' && (t.text === '+' || t.text === '-'); t = this.peek()) {
      this.pos++;
      left = { kind: 'bin', op: t.text as BinOp, left, right: this.term() };
    }
    return left;
  }

  private term(): CodeExpr {
    let left = this.unary();
    for (let t = this.peek(); t.kind === 'op' && (t.text === '*' || t.text === '//' || t.text === '%'); t = this.peek()) {
      this.pos++;
      left = { kind: 'bin', op: t.text as BinOp, left, right: this.unary() };
    }
    return left;
  }

  private unary(): CodeExpr {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '-') {
      this.pos++;
      return this.nested(() => ({ kind: 'neg', operand: this.unary() }));
    }
    return this.atom();
  }

  private atom(): CodeExpr {
    const t = this.next();
    if (t.kind === 'int') {
      const value = Number(t.text);
      if (value > this.limits.maxMagnitude) this.fail(t, `integer literal ${t.text} too large`);
      return { kind: 'int', value };
    }
    if (t.kind === 'name') return { kind: 'var', name: t.text };
    if (t.kind === 'op' && t.text === '(') {
      const inner = this.expr();
      this.expect(')', 'to close (');
      return inner;
    }
    return this.fail(t, t.kind === 'nl' || t.kind === 'eof' ? 'expression expected at end of line' : `unexpected '${t.text}' in expression`);
  }

  private nested<T>(f: () => T): T {
    if (++this.depth > this.limits.maxDepth) this.fail(this.peek(), 'nesting too deep');
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  private isKw(word: string): boolean {
    const t = this.peek();
    return t.kind === 'kw' && t.text === word;
  }

  private expect(op: string, what: string): void {
    const t = this.next();
    if (t.kind !== 'op' || t.text !== op) this.fail(t, `expected '${op}' ${what}`);
  }

  private peek(): Token {
    return this.tokens[this.pos] as Token;
  }

  private next(): Token {
    const t = this.tokens[this.pos] as Token;
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private fail(t: Token, message: string): never {
    throw new ParseError(`line ${t.line}: ${message}`);
  }
}
