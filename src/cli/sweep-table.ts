// The sweep's result tables: one row per run, and when several seeds ran, the mean over seeds of
// each (workflow, policy, task, preset) cell, which is the number a comparison should quote.
import type { TrainSummary } from '../rl/hooks.js';
import { formatDelta, formatDuration, formatRate, formatSigned } from './format.js';
import { markdownTable, type Align } from './table.js';

/** One run of a sweep and how it ended. */
export interface SweepRow {
  name: string;
  workflow: string;
  policy: string;
  task: string;
  preset: string;
  seed: number;
  status: 'done' | 'skipped' | 'failed' | 'pending';
  error?: string;
  summary?: TrainSummary;
}

/** What sweep.json holds. */
export interface SweepFile {
  grid: { workflows: string[]; policies: string[]; tasks: string[]; presets: string[]; seeds: number[] };
  runs: SweepRow[];
}

const RUN_HEADER = ['run', 'workflow', 'policy', 'task', 'preset', 'seed', 'base', 'peak (step)', 'final', 'delta [95% CI]', 'greedy base -> final', 'time', 'status'];

function runCells(r: SweepRow): string[] {
  const s = r.summary;
  const status = r.status === 'failed' ? `failed: ${r.error ?? ''}`.trim() : r.status;
  return [
    r.name, r.workflow, r.policy, r.task, r.preset, String(r.seed),
    s ? formatRate(s.base.accuracy) : '-',
    s ? `${formatRate(s.peak.accuracy)} (${s.peak.step})` : '-',
    s ? formatRate(s.final.accuracy) : '-',
    s ? formatDelta(s.delta) : '-',
    s?.greedy ? `${formatRate(s.greedy.base)} -> ${formatRate(s.greedy.final)}` : '-',
    s ? formatDuration(s.seconds) : '-',
    status,
  ];
}

/** Mean over seeds per (workflow, policy, task, preset), from the runs that finished. */
export function seedMeans(rows: readonly SweepRow[]): string[][] {
  const cells = new Map<string, SweepRow[]>();
  for (const r of rows) {
    if (!r.summary) continue;
    const key = [r.workflow, r.policy, r.task, r.preset].join('\u0000');
    cells.set(key, [...(cells.get(key) ?? []), r]);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return [...cells.values()].map((rs) => {
    const s = rs.map((r) => r.summary!);
    const deltas = s.map((x) => x.delta.mean);
    return [
      rs[0].workflow, rs[0].policy, rs[0].task, rs[0].preset, String(rs.length),
      formatRate(mean(s.map((x) => x.base.accuracy))),
      formatRate(mean(s.map((x) => x.peak.accuracy))),
      formatRate(mean(s.map((x) => x.final.accuracy))),
      formatSigned(mean(deltas)),
      `${formatSigned(Math.min(...deltas))} .. ${formatSigned(Math.max(...deltas))}`,
    ];
  });
}

/** sweep.md: the per-run table, then means over seeds when any cell has more than one seed. */
export function sweepMarkdown(file: SweepFile): string {
  const out = ['# troupe sweep', ''];
  const g = file.grid;
  out.push(`Grid: workflows ${g.workflows.join(', ')}; policies ${g.policies.join(', ')}; tasks ${g.tasks.join(', ')}; presets ${g.presets.join(', ')}; seeds ${g.seeds.join(', ')}.`, '');
  const done = file.runs.filter((r) => r.summary).length;
  out.push(`${done} of ${file.runs.length} runs have results. Accuracy is held-out pass@1; delta is final - base on the same problems.`, '');
  const align = RUN_HEADER.map((_, i) => (i < 5 ? 'left' : 'right') as Align);
  out.push(markdownTable(RUN_HEADER, file.runs.map(runCells), align), '');
  const means = seedMeans(file.runs);
  if (means.some((m) => Number(m[4]) > 1)) {
    out.push('## Mean over seeds', '');
    const header = ['workflow', 'policy', 'task', 'preset', 'seeds', 'base', 'peak', 'final', 'delta', 'delta range'];
    out.push(markdownTable(header, means, header.map((_, i) => (i < 4 ? 'left' : 'right') as Align)), '');
  }
  return out.join('\n');
}
