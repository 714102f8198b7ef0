// Parsers for the structured role outputs (aggregator index, evaluator verdict, orchestrator
// strategies). They never throw on model output: null / [] means "unparseable" and the workflow
// takes its documented fallback.

/** Contents of every `\boxed{...}` in order, with nested braces matched. */
export function boxedContents(text: string): string[] {
  const out: string[] = [];
  const tag = '\\boxed{';
  let from = 0;
  for (;;) {
    const at = text.indexOf(tag, from);
    if (at < 0) return out;
    let depth = 1;
    let i = at + tag.length;
    for (; i < text.length && depth > 0; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}') depth--;
    }
    if (depth !== 0) return out; // unclosed: ignore it and everything after
    out.push(text.slice(at + tag.length, i - 1));
    from = i;
  }
}

/** The 1-based candidate index of the last `\boxed{N}` (N in 1..count) as a 0-based index, or null. */
export function parseChoice(text: string, count: number): number | null {
  const boxes = boxedContents(text);
  const last = boxes[boxes.length - 1];
  if (last === undefined) return null;
  const m = /^\s*(?:answer|solution|candidate)?\s*#?\s*(\d+)\s*$/i.exec(last);
  if (!m) return null;
  const n = Number(m[1]);
  return n >= 1 && n <= count ? n - 1 : null;
}

/** An evaluator verdict. */
export type Verdict = 'correct' | 'incorrect';

/** The first `\boxed{Correct}` / `\boxed{Incorrect}` (case-insensitive) and the text after it as the reason. */
export function parseVerdict(text: string): { verdict: Verdict; reason: string } | null {
  const re = /\\boxed\{\s*(correct|incorrect)\s*\}/i;
  const m = re.exec(text);
  if (!m) return null;
  const verdict = m[1]!.toLowerCase() as Verdict;
  const reason = text.slice(m.index + m[0].length).trim();
  return { verdict, reason };
}

/**
 * Strategies from lines "1. ..." / "2) ..." (other lines ignored), trimmed, case-insensitive
 * duplicates and empty ones dropped, at most `max` kept in order.
 */
export function parseStrategies(text: string, max: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^\s*\d+\s*[.)]\s*(.*\S)\s*$/.exec(line);
    if (!m) continue;
    const s = m[1]!.trim();
    const k = s.toLowerCase().replace(/\s+/g, ' ');
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(s);
    if (out.length === max) break;
  }
  return out;
}

/**
 * Index of the most frequent non-null answer; ties go to the answer seen first; all null gives 0.
 */
export function majorityIndex(answers: readonly (string | null)[]): number {
  const counts = new Map<string, number>();
  for (const a of answers) if (a !== null) counts.set(a, (counts.get(a) ?? 0) + 1);
  let best = 0;
  let bestCount = 0;
  answers.forEach((a, i) => {
    if (a === null) return;
    const c = counts.get(a)!;
    if (c > bestCount) {
      best = i;
      bestCount = c;
    }
  });
  return best;
}
