// Group-relative advantages. Groups are (problem, role) across the G rollouts with parallel copies
// and Eval-Opt turns pooled (the paper's default) or (problem, role, turn) (AT-GRPO).
// advantage = (r - mean) / (std + eps). The default std is the unbiased SAMPLE std (divide by n-1):
// the paper's code computes advantages with verl's GRPO estimator, which uses torch.std, and
// torch.std applies Bessel's correction by default. A group of size 1 gets 0 (DESIGN.md; note that
// verl instead uses mean 0, std 1 there, i.e. advantage = reward).

/** How rows are grouped. */
export type GroupingMode = 'role' | 'role-turn';

/** Which standard deviation normalises a group: n-1 (`sample`, torch.std) or n (`population`). */
export type StdKind = 'sample' | 'population';

/** Options of `groupAdvantages`. */
export interface AdvantageOptions {
  /** Default 'role' (copies and turns pooled). */
  grouping?: GroupingMode;
  /** Default 'sample'. */
  std?: StdKind;
  /** Added to the std; default 1e-6. */
  epsilon?: number;
  /** Drop groups whose rewards are all equal (size-1 groups included); default false. */
  dropEqualGroups?: boolean;
}

/** The row fields grouping reads (a RolloutRow satisfies it). */
export interface GroupedRow {
  group: string;
  role: string;
  turn: number;
}

/** One advantage group and its statistics. */
export interface AdvantageGroup {
  group: string;
  role: string;
  /** The turn for 'role-turn' grouping; null when turns are pooled. */
  turn: number | null;
  /** Row indices in the group, ascending. */
  rows: number[];
  mean: number;
  /** The std used (0 for a group of size 1). */
  std: number;
  dropped: boolean;
}

/** Advantages aligned with the rows, the groups, and which rows the equal-reward filter dropped. */
export interface AdvantageResult {
  advantages: Float64Array;
  /** Index into `groups` for every row. */
  groupOf: Int32Array;
  groups: AdvantageGroup[];
  /** Row indices dropped by the filter, ascending (empty when the filter is off). */
  dropped: number[];
  /** 1 for rows to train on, 0 for dropped rows. */
  keep: Uint8Array;
}

/** Computes group-normalised advantages for rows with aligned rewards. */
export function groupAdvantages(
  rows: readonly GroupedRow[],
  rewards: ArrayLike<number>,
  opts: AdvantageOptions = {},
): AdvantageResult {
  const grouping = opts.grouping ?? 'role';
  const stdKind = opts.std ?? 'sample';
  const eps = opts.epsilon ?? 1e-6;
  if (grouping !== 'role' && grouping !== 'role-turn') throw new Error(`advantages: unknown grouping '${String(grouping)}'`);
  if (stdKind !== 'sample' && stdKind !== 'population') throw new Error(`advantages: unknown std '${String(stdKind)}'`);
  if (rewards.length !== rows.length) {
    throw new Error(`advantages: ${rewards.length} rewards for ${rows.length} rows`);
  }

  const index = new Map<string, number>();
  const groups: AdvantageGroup[] = [];
  const groupOf = new Int32Array(rows.length);
  rows.forEach((row, i) => {
    const turn = grouping === 'role-turn' ? row.turn : null;
    const key = JSON.stringify([row.group, row.role, turn]);
    let g = index.get(key);
    if (g === undefined) {
      g = groups.length;
      index.set(key, g);
      groups.push({ group: row.group, role: row.role, turn, rows: [], mean: 0, std: 0, dropped: false });
    }
    groups[g]!.rows.push(i);
    groupOf[i] = g;
  });

  const advantages = new Float64Array(rows.length);
  const keep = new Uint8Array(rows.length).fill(1);
  const dropped: number[] = [];
  for (const g of groups) {
    const n = g.rows.length;
    const rs = g.rows.map((i) => {
      const r = rewards[i]!;
      if (!Number.isFinite(r)) throw new Error(`advantages: non-finite reward ${r} at row ${i}`);
      return r;
    });
    g.mean = rs.reduce((s, r) => s + r, 0) / n;
    if (n > 1) {
      const ss = rs.reduce((s, r) => s + (r - g.mean) ** 2, 0);
      g.std = Math.sqrt(ss / (stdKind === 'sample' ? n - 1 : n));
      g.rows.forEach((i, k) => (advantages[i] = (rs[k]! - g.mean) / (g.std + eps)));
    }
    if (opts.dropEqualGroups && rs.every((r) => r === rs[0])) {
      g.dropped = true;
      for (const i of g.rows) {
        keep[i] = 0;
        advantages[i] = 0;
        dropped.push(i);
      }
    }
  }
  dropped.sort((a, b) => a - b);
  return { advantages, groupOf, groups, dropped, keep };
}
