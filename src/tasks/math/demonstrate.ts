// Demonstrations for the supervised warm-up: the worked steps of a generated problem, and a
// plausible wrong solution with exactly one slipped step whose error propagates to the answer.
import type { Problem, Rng } from '../task.js';
import { applyOp, renderSolution, type Expr, type Step } from './expr.js';
import type { MathProblemData } from './generator.js';

/** The correct worked solution ("12*3=36, 36+5=41. \boxed{41}"), or just the boxed answer. */
export function demonstrateMath(problem: Problem): string {
  const data = problem.data as MathProblemData | undefined;
  if (!data?.steps) return `\\boxed{${problem.answer}}`;
  return renderSolution(data.steps, Number(problem.answer));
}

/** A worked solution with one wrong step (the later steps are computed from the wrong value). */
export function demonstrateMathWrong(problem: Problem, rng: Rng): string {
  const data = problem.data as MathProblemData | undefined;
  const correct = Number(problem.answer);
  if (!data?.tree || !data.steps?.length) return `\\boxed{${slipValue(correct, rng, undefined)}}`;
  const negativeOk = data.steps.some((s) => s.value < 0);
  for (let attempt = 0; attempt < 20; attempt++) {
    const k = rng.int(0, data.steps.length - 1);
    const wrong = slipValue((data.steps[k] as Step).value, rng, data.steps[k]);
    const steps = stepsWithSlip(data.tree, k, wrong);
    if (!steps) continue;
    const answer = (steps[steps.length - 1] as Step).value;
    if (answer !== correct && (negativeOk || steps.every((s) => s.value >= 0))) return renderSolution(steps, answer);
  }
  // Fallback that always works: the last step slips by one.
  const steps = data.steps.map((s) => ({ ...s }));
  const last = steps[steps.length - 1] as Step;
  last.value += last.value === 0 ? 1 : rng.pick([-1, 1]);
  return renderSolution(steps, last.value);
}

/** A plausible wrong result of a step: off by one or ten, or a neighbouring product. */
function slipValue(value: number, rng: Rng, step: Step | undefined): number {
  const options: number[] = [value + 1, value - 1, value + 10, value - 10];
  if (step?.op === '*') options.push(step.left * (step.right + 1), step.left * (step.right - 1));
  if (step?.op === '-') options.push(step.left + step.right);
  if (step?.op === '+') options.push(Math.abs(step.left - step.right));
  const wrong = options.filter((v) => v !== value && (v >= 0 || value < 0));
  return wrong.length ? rng.pick(wrong) : value + 1;
}

/** Post-order steps of the tree where step `k` yields `wrong` instead of its true value. */
function stepsWithSlip(tree: Expr, k: number, wrong: number): Step[] | null {
  const steps: Step[] = [];
  const walk = (n: Expr): number | null => {
    if (n.kind === 'num') return n.value;
    const a = walk(n.left);
    const b = a === null ? null : walk(n.right);
    if (a === null || b === null) return null;
    let v = applyOp(n.op, a, b);
    if (v === null) return null;
    if (steps.length === k) v = wrong;
    steps.push({ left: a, op: n.op, right: b, value: v });
    return v;
  };
  return walk(tree) === null ? null : steps;
}
