// Plain-text and markdown tables for summaries (terminal output and sweep reports).

/** Column alignment: text left, numbers right. */
export type Align = 'left' | 'right';

/** A fixed-width text table; `align` defaults to left for the first column and right for the rest. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const al = align ?? header.map((_, i) => (i === 0 ? 'left' : 'right'));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (al[i] === 'right' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A GitHub-flavoured markdown table (pipes in cells escaped). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const al = align ?? header.map((_, i) => (i === 0 ? 'left' : 'right'));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(esc).join(' | ')} |`;
  const rule = `| ${al.map((a) => (a === 'right' ? '---:' : '---')).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** Two-column "key  value" block for a single record. */
export function keyValueBlock(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}
