// Finds the program in a model output. Rule: the content of the LAST complete fenced block
// (```...```, an optional language tag on the opening line is skipped); when there is none, the
// text after the last "Program:" marker; else no program. Linear time.

/** Longest output scanned (from the end); longer outputs are cut at the front. */
export const MAX_OUTPUT_SCANNED = 100_000;

const FENCE = '```';
const MARKER = 'Program:';

/** The program text of an output, or null when it has neither a complete fenced block nor "Program:". */
export function extractProgram(output: string): string | null {
  if (typeof output !== 'string') return null;
  const text = output.length > MAX_OUTPUT_SCANNED ? output.slice(output.length - MAX_OUTPUT_SCANNED) : output;
  const fences: number[] = [];
  for (let i = text.indexOf(FENCE); i >= 0; i = text.indexOf(FENCE, i + FENCE.length)) fences.push(i);
  if (fences.length >= 2) {
    // Fences pair up in order (1st opens, 2nd closes, ...); an unpaired last fence is ignored.
    const pairs = Math.floor(fences.length / 2);
    const open = fences[2 * pairs - 2] as number;
    const close = fences[2 * pairs - 1] as number;
    return fencedContent(text.slice(open + FENCE.length, close));
  }
  const at = text.lastIndexOf(MARKER);
  if (at >= 0) return text.slice(at + MARKER.length).trim();
  return null;
}

function fencedContent(inner: string): string {
  const nl = inner.indexOf('\n');
  // "```python\n..." or "```\n...": drop the opening line when it is empty or a bare language tag.
  if (nl >= 0 && /^[A-Za-z0-9_+-]*\s*$/.test(inner.slice(0, nl))) return inner.slice(nl + 1).trim();
  return inner.trim();
}
