// Every role prompt of the built-in workflows, in one place so rollouts and demonstrations use the
// same text byte for byte. Layout: instruction line, "Problem: ...", labelled context lines.
import type { ChatMessage } from '../chat/message.js';
import type { Problem, Task } from '../tasks/task.js';
import { answerHint, numbered, problemLine, userPrompt } from './format.js';

/** Generator (and single agent): solve from scratch. */
export function solvePrompt(task: Task, problem: Problem): ChatMessage[] {
  return userPrompt([`Solve the problem. ${answerHint(task)}`, problemLine(problem.prompt)]);
}

/** Aggregator: pick one of the candidates by its 1-based number in `\boxed{N}`. */
export function aggregatePrompt(task: Task, problem: Problem, candidates: readonly string[]): ChatMessage[] {
  return userPrompt([
    `Pick the correct answer. Reply \\boxed{N}, N from 1 to ${candidates.length}.`,
    problemLine(problem.prompt),
    ...numbered('Answer', candidates),
  ]);
}

/** Evaluator: judge one answer; the verdict comes first so a truncated reply still parses. */
export function evaluatePrompt(task: Task, problem: Problem, answer: string): ChatMessage[] {
  return userPrompt([
    'Check the answer. Reply \\boxed{Correct} or \\boxed{Incorrect}, then a short reason.',
    problemLine(problem.prompt),
    `Answer: ${answer.trim()}`,
  ]);
}

/** Generator revision: only the latest answer and feedback are shown, to keep the prompt short. */
export function revisePrompt(task: Task, problem: Problem, previous: string, feedback: string): ChatMessage[] {
  return userPrompt([
    `Fix the answer using the feedback. ${answerHint(task)}`,
    problemLine(problem.prompt),
    `Answer: ${previous.trim()}`,
    `Feedback: ${feedback.trim() || 'Incorrect.'}`,
  ]);
}

/** Orchestrator: up to `max` distinct strategies, one per line as "1. ...", no solution. */
export function orchestratePrompt(task: Task, problem: Problem, max: number): ChatMessage[] {
  return userPrompt([
    `List up to ${max} different strategies, one per line as "1. ...". Do not solve.`,
    problemLine(problem.prompt),
  ]);
}

/** Worker: solve the whole problem following one strategy. */
export function workerPrompt(task: Task, problem: Problem, strategy: string): ChatMessage[] {
  return userPrompt([
    `Solve the problem with the strategy. ${answerHint(task)}`,
    problemLine(problem.prompt),
    `Strategy: ${strategy.trim()}`,
  ]);
}

/** Synthesizer: the final answer from the workers' solutions, in the task's answer format. */
export function synthesizePrompt(task: Task, problem: Problem, solutions: readonly string[]): ChatMessage[] {
  return userPrompt([
    `Give the final answer from the solutions. ${answerHint(task)}`,
    problemLine(problem.prompt),
    ...numbered('Solution', solutions),
  ]);
}
