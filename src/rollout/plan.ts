// How a stage's rows are cut into pool tasks. All rows (policy after policy) are laid on one line
// weighted by their cost and cut into `workers` equal pieces; a piece that straddles a policy
// boundary becomes one task per policy. That gives at most workers + policies - 1 tasks, each a
// contiguous row range of one policy (so its inputs and outputs are views), and sorting them
// largest first (LPT) lets the pool's free-worker-takes-next policy balance them.

/** One pool task: rows [lo, hi) of batch `batch`. */
export interface Chunk {
  batch: number;
  lo: number;
  hi: number;
  /** Estimated cost (prompt tokens + new-token budget of its rows). */
  weight: number;
}

/** Splits batches of per-row weights into chunks for `workers` workers, largest first. */
export function planChunks(rowWeights: readonly ArrayLike<number>[], workers: number): Chunk[] {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`planChunks: workers must be a positive integer, got ${workers}`);
  let total = 0;
  for (const w of rowWeights) for (let i = 0; i < w.length; i++) total += Math.max(w[i]!, 1);
  const chunks: Chunk[] = [];
  let before = 0;
  rowWeights.forEach((weights, batch) => {
    let cur: Chunk | null = null;
    let curPiece = -1;
    for (let row = 0; row < weights.length; row++) {
      const w = Math.max(weights[row]!, 1);
      // A row belongs to the piece its midpoint falls in.
      const piece = Math.min(workers - 1, Math.floor(((before + w / 2) * workers) / total));
      before += w;
      if (cur && piece === curPiece) {
        cur.hi = row + 1;
        cur.weight += w;
      } else {
        cur = { batch, lo: row, hi: row + 1, weight: w };
        curPiece = piece;
        chunks.push(cur);
      }
    }
  });
  // Stable: equal weights keep plan order, so the dispatch order is deterministic.
  return chunks.map((c, i) => ({ c, i })).sort((a, b) => b.c.weight - a.c.weight || a.i - b.i).map(({ c }) => c);
}
