// "Did you mean" for mistyped flags, config keys and enum values: the closest known name by
// Damerau-Levenshtein distance, offered only when it is close enough to be a plausible typo.

/** Optimal-string-alignment edit distance (insert, delete, substitute, swap adjacent). */
export function editDistance(a: string, b: string): number {
  const m = a.length, n = b.length;
  // Three rolling rows: the swap rule looks two rows back.
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1);
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[n];
}

/** The closest candidate within a typo's distance (about a third of the word), or null. */
export function closest(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  const limit = Math.max(1, Math.ceil(w.length / 3));
  return best !== null && bestD <= limit ? best : null;
}

/** " (did you mean X?)" or "" when nothing is close. */
export function didYouMean(word: string, candidates: readonly string[], render: (s: string) => string = (s) => s): string {
  const c = closest(word, candidates);
  return c === null ? '' : ` (did you mean ${render(c)}?)`;
}
