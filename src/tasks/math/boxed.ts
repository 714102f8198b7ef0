// Finds the final answer of a math output: the content of the LAST `\boxed{...}` with balanced
// braces. Linear time: one backward search, then a forward brace scan capped at MAX_BOXED_CHARS.

/** Longest boxed content considered; longer content is rejected as malformed. */
export const MAX_BOXED_CHARS = 256;

/** What the search for the last `\boxed{...}` found. */
export type BoxedSearch =
  | { kind: 'ok'; content: string }
  | { kind: 'none' }
  | { kind: 'unclosed' }
  | { kind: 'too-long' };

const MARK = '\\boxed';

/**
 * Searches for the last `\boxed{` (spaces allowed before the brace). `\{` and `\}` inside count as
 * literal braces. The last box is authoritative: when it is unclosed the search does not fall back
 * to an earlier box, so trailing garbage after an answer cannot be rewarded.
 */
export function findLastBoxed(text: string): BoxedSearch {
  let at = text.lastIndexOf(MARK);
  while (at >= 0) {
    let j = at + MARK.length;
    while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++;
    if (text[j] === '{') return scanBraces(text, j);
    at = at === 0 ? -1 : text.lastIndexOf(MARK, at - 1);
  }
  return { kind: 'none' };
}

/** The content of the last balanced `\boxed{...}`, or null when there is none. */
export function lastBoxedContent(text: string): string | null {
  const found = findLastBoxed(text);
  return found.kind === 'ok' ? found.content : null;
}

function scanBraces(text: string, open: number): BoxedSearch {
  let depth = 1;
  const end = Math.min(text.length, open + 1 + MAX_BOXED_CHARS + 1);
  for (let j = open + 1; j < end; j++) {
    const c = text[j];
    if (c === '\\') {
      j++;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) return { kind: 'ok', content: text.slice(open + 1, j) };
    }
  }
  return end < text.length ? { kind: 'too-long' } : { kind: 'unclosed' };
}
