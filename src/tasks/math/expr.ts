// Arithmetic expression trees of the math task: rendering with the parentheses the tree needs,
// exact integer evaluation, and the step-by-step evaluation order the demonstrations follow.

/** An arithmetic operator; '/' is exact integer division (generators only build exact ones). */
export type Op = '+' | '-' | '*' | '/';

/** An expression tree: integer leaves and binary operator nodes. */
export type Expr = { kind: 'num'; value: number } | { kind: 'bin'; op: Op; left: Expr; right: Expr };

/** One evaluation step "left op right = value", as the demonstrations write it. */
export interface Step {
  left: number;
  op: Op;
  right: number;
  value: number;
}

const PREC: Record<Op, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };

/** Compact text of a tree ("12*3+5", "(4+5)*2"); it parses back to the same tree (no spaces). */
export function renderExpr(e: Expr): string {
  if (e.kind === 'num') return String(e.value);
  const l = e.left.kind === 'bin' && PREC[e.left.op] < PREC[e.op] ? `(${renderExpr(e.left)})` : renderExpr(e.left);
  // A right operand of equal precedence keeps its parentheses even where they are redundant
  // ("a+(b+c)"), so the text names one tree and one evaluation order.
  const r = e.right.kind === 'bin' && PREC[e.right.op] <= PREC[e.op] ? `(${renderExpr(e.right)})` : renderExpr(e.right);
  return `${l}${e.op}${r}`;
}

/** Whether rendering the tree needs any parentheses. */
export function needsParens(e: Expr): boolean {
  return renderExpr(e).includes('(');
}

/** Number of operator nodes. */
export function countOps(e: Expr): number {
  return e.kind === 'num' ? 0 : 1 + countOps(e.left) + countOps(e.right);
}

/** Applies an operator to integers; null for a division that is not exact or by zero. */
export function applyOp(op: Op, a: number, b: number): number | null {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b !== 0 && a % b === 0 ? a / b + 0 : null;
  }
}

/** The evaluation steps in post-order (left subtree, right subtree, node); null if a step fails. */
export function exprSteps(e: Expr): Step[] | null {
  const steps: Step[] = [];
  const walk = (n: Expr): number | null => {
    if (n.kind === 'num') return n.value;
    const a = walk(n.left);
    const b = a === null ? null : walk(n.right);
    if (a === null || b === null) return null;
    const v = applyOp(n.op, a, b);
    if (v === null) return null;
    steps.push({ left: a, op: n.op, right: b, value: v });
    return v;
  };
  return walk(e) === null ? null : steps;
}

/** The value of a tree, or null when a division is not exact. */
export function evalExpr(e: Expr): number | null {
  const steps = exprSteps(e);
  if (steps === null) return null;
  return steps.length ? (steps[steps.length - 1] as Step).value : (e as { value: number }).value;
}

/** One step as text: "12*3=36"; a negative right operand is parenthesised ("5-(-4)=9"). */
export function renderStep(s: Step): string {
  const r = s.right < 0 ? `(${s.right})` : String(s.right);
  return `${s.left}${s.op}${r}=${s.value}`;
}

/** The worked solution: "12*3=36, 36+5=41. \boxed{41}". */
export function renderSolution(steps: readonly Step[], answer: number): string {
  const body = steps.map(renderStep).join(', ');
  return body ? `${body}. \\boxed{${answer}}` : `\\boxed{${answer}}`;
}

/** Parses a slot expression of a word template ("a*b+c", "(a+b)/c"): letters are leaves numbered in order. */
export function parseSlotExpr(src: string): { expr: SlotExpr; slots: string[] } {
  const slots: string[] = [];
  let pos = 0;
  const peek = (): string => src[pos] ?? '';
  const primary = (): SlotExpr => {
    const c = peek();
    if (c === '(') {
      pos++;
      const inner = sum();
      if (peek() !== ')') throw new Error(`parseSlotExpr: expected ')' in ${src}`);
      pos++;
      return inner;
    }
    if (!/[a-z]/.test(c)) throw new Error(`parseSlotExpr: unexpected '${c}' in ${src}`);
    pos++;
    slots.push(c);
    return { kind: 'slot', name: c };
  };
  const product = (): SlotExpr => {
    let left = primary();
    while (peek() === '*' || peek() === '/') {
      const op = src[pos++] as Op;
      left = { kind: 'bin', op, left, right: primary() };
    }
    return left;
  };
  const sum = (): SlotExpr => {
    let left = product();
    while (peek() === '+' || peek() === '-') {
      const op = src[pos++] as Op;
      left = { kind: 'bin', op, left, right: product() };
    }
    return left;
  };
  const expr = sum();
  if (pos !== src.length) throw new Error(`parseSlotExpr: trailing text in ${src}`);
  return { expr, slots };
}

/** A template expression whose leaves are named slots. */
export type SlotExpr = { kind: 'slot'; name: string } | { kind: 'bin'; op: Op; left: SlotExpr; right: SlotExpr };
