// The run's metrics file: one Arrow IPC stream row per step. On resume the rows after the
// checkpoint's step are dropped first, so the file ends exactly as an uninterrupted run's would.
import { existsSync } from 'node:fs';
import { MetricsLog } from '../data/metrics-log.js';
import type { MetricsRow } from './metrics-row.js';

/** Where step rows go. */
export interface MetricsSink {
  append(row: MetricsRow): Promise<void>;
  close(): Promise<void>;
}

/** Opens (resume: truncates after `resumeStep` and appends) the metrics stream at `file`. */
export async function openMetrics(file: string, resumeStep: number): Promise<MetricsSink> {
  const resume = resumeStep > 0 && existsSync(file);
  if (resume) MetricsLog.truncateAfter(file, resumeStep);
  const log = MetricsLog.open(file, { append: resume });
  return {
    append: async (row) => log.append(row),
    close: async () => log.close(),
  };
}
