// Task-aware pieces shared by the role prompts. Models are tiny (a few hundred byte-level tokens of
// context), so every prompt is one short user message: an instruction line, then "Problem: ...",
// then labelled context blocks. The same builders serve rollouts and demonstrations.
import type { ChatMessage } from '../chat/message.js';
import type { Task } from '../tasks/task.js';

/** Whether the task's final answer is a boxed value (math) or a fenced program (code). */
export type AnswerKind = 'boxed' | 'program';

/** The answer kind of a task, by name: names containing "code" are program tasks. */
export function answerKindOf(task: Task): AnswerKind {
  return /code/i.test(task.name) ? 'program' : 'boxed';
}

/** The one-sentence answer-format instruction for a task ("End with \boxed{answer}."). */
export function answerHint(task: Task): string {
  return answerKindOf(task) === 'program' ? 'Reply with one fenced program.' : 'End with \\boxed{answer}.';
}

/** Short strategy lines an orchestrator demo draws from (distinct, not solutions). */
export function strategyPool(task: Task): readonly string[] {
  return answerKindOf(task) === 'program'
    ? ['Compare each output with its input.', 'Try a formula in x.', 'Check even and odd inputs.', 'Look for a repeated step.']
    : ['Work step by step.', 'Do * and / before + and -.', 'Solve, then check the result.', 'Split it into smaller parts.'];
}

/** The strategy given to the single worker when no strategy could be parsed. */
export const DEFAULT_STRATEGY = 'Solve it step by step.';

/** A prompt as one user message. */
export function userPrompt(lines: readonly string[]): ChatMessage[] {
  return [{ role: 'user', content: lines.join('\n') }];
}

/** The "Problem: ..." line. */
export function problemLine(prompt: string): string {
  return `Problem: ${prompt}`;
}

/** The "Label N: text" block of numbered candidates (1-based). */
export function numbered(label: string, texts: readonly string[]): string[] {
  return texts.map((t, i) => `${label} ${i + 1}: ${t.trim()}`);
}
