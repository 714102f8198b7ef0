// Syntax tree of the code-task language (grammar in src/tasks/code/parser.ts and docs/code-task.md).

/** A binary operator of the language. */
export type BinOp = '+' | '-' | '*' | '//' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'and' | 'or';

/** An expression node. */
export type CodeExpr =
  | { kind: 'int'; value: number }
  | { kind: 'var'; name: string }
  | { kind: 'neg'; operand: CodeExpr }
  | { kind: 'not'; operand: CodeExpr }
  | { kind: 'bin'; op: BinOp; left: CodeExpr; right: CodeExpr };

/** A statement; `line` is 1-based, for error messages. */
export type CodeStmt =
  | { kind: 'assign'; line: number; name: string; value: CodeExpr }
  | { kind: 'return'; line: number; value: CodeExpr }
  | { kind: 'if'; line: number; cond: CodeExpr; body: CodeStmt }
  | { kind: 'repeat'; line: number; count: CodeExpr; body: CodeStmt };

/** A parsed program: its statements in order. */
export interface CodeProgram {
  stmts: CodeStmt[];
}
