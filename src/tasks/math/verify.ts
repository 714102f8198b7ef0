// The math verifier: last balanced \boxed{...}, normalised, compared by value. Never throws.
import type { Grade } from '../task.js';
import { findLastBoxed } from './boxed.js';
import { answersEqual } from './normalize.js';

/** Grades a whole output against a reference answer; malformed or missing answers get reward 0. */
export function gradeBoxedAnswer(reference: string, output: string): Grade {
  try {
    if (typeof output !== 'string') return fail(null, 'output is not a string');
    const found = findLastBoxed(output);
    switch (found.kind) {
      case 'none':
        return fail(null, 'no \\boxed{} answer');
      case 'unclosed':
        return fail(null, 'unclosed \\boxed{');
      case 'too-long':
        return fail(null, 'boxed answer too long');
    }
    const extracted = found.content.trim();
    if (!extracted) return fail(extracted, 'empty \\boxed{}');
    if (answersEqual(reference, extracted)) return { reward: 1, correct: true, extracted, reason: 'ok' };
    return fail(extracted, 'wrong answer');
  } catch (e) {
    return fail(null, `verifier error: ${(e as Error)?.message ?? String(e)}`);
  }
}

function fail(extracted: string | null, reason: string): Grade {
  return { reward: 0, correct: false, extracted, reason };
}
