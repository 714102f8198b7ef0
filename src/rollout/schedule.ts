// How the pool spends its cores on one stage, and a tuner that picks the faster way by measuring.
//
// - 'split': the stage's rows are cut into one balanced piece per worker and the pieces run at
//   once, each call with `threadsPerCall` threads. No barrier is shared between workers, so this
//   wins where a many-threaded call synchronises more than it computes (small models, few rows per
//   policy, ragged completion lengths) and where several policies can run side by side.
// - 'serial': one call per policy, one at a time, each with every thread of the budget (what one
//   in-process call does). This wins where the workers' side-by-side calls would each stream a
//   model's weights through the shared cache and memory bus for only part of the rows.
//
// Which one is faster depends on model size, rows and lengths, and on the machine, so 'auto'
// measures. Each stage shape first runs both schedules alternately (so a slow spell of a shared
// machine hits both) until the difference of their median log costs (seconds per generated
// token) is more than twice its standard error, or until each has run MAX_EXPLORE times; a
// call's cost varies by about 10% with the machine's noise and how ragged its completions are, so
// a 5% difference takes several calls to see. After that the shape keeps the schedule with the
// lower median and every tenth call re-measures the other; it switches only when recent calls
// tell the two apart by the same test, so a change of regime (longer completions as training goes
// on) is noticed but noise does not flip the choice back and forth. When the two stay too close
// to tell apart, the choice costs little either way. The choice never changes what is sampled: a
// completion depends only on its call key, not on batch composition or thread count.

/** The schedule settings: 'auto' (measured per stage shape) or one fixed schedule. */
export const SCHEDULE_CHOICES = ['auto', 'split', 'serial'] as const;
/** A fixed schedule, or 'auto'. */
export type ScheduleChoice = (typeof SCHEDULE_CHOICES)[number];
/** A way of running one stage on the pool. */
export type Schedule = Exclude<ScheduleChoice, 'auto'>;

/** The stage shape a measurement is kept for: distinct policies and a power-of-two row bucket. */
export function stageShape(policies: number, rows: number): string {
  const bucket = 2 ** Math.floor(Math.log2(Math.max(1, rows)));
  return `${policies}p/${bucket}+rows`;
}

/** Measurements of one schedule on one shape. */
export interface Measured {
  calls: number;
  /** Median seconds per generated token over the recent calls. */
  cost: number;
}

/** What the tuner knows of one stage shape. */
export interface ShapeReport {
  shape: string;
  calls: number;
  /** Whether exploration has ended for this shape. */
  decided: boolean;
  split: Measured | null;
  serial: Measured | null;
  /** The chosen schedule (while exploring: the one ahead so far). */
  choice: Schedule;
}

/** Options of the tuner. */
export interface TunerOptions {
  /** After exploring, every N-th call of a shape runs the schedule not chosen (default 10). */
  refreshEvery?: number;
  /** Recent calls per schedule whose median is its cost (default 8). */
  window?: number;
}

/** Calls of each schedule before a difference may decide, and after which one must. */
const MIN_EXPLORE = 4;
const MAX_EXPLORE = 8;

interface Series {
  /** log(seconds per token) of the recent calls. */
  recent: number[];
  calls: number;
}

interface ShapeState {
  calls: number;
  /** The chosen schedule once exploration has ended (null while exploring). */
  choice: Schedule | null;
  split: Series;
  serial: Series;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// Standard error of a median from the median absolute deviation (normal-consistent scale, and the
// median's efficiency factor sqrt(pi/2) against a mean).
function medianStdErr(xs: readonly number[]): number {
  const m = median(xs);
  const mad = median(xs.map((x) => Math.abs(x - m)));
  return (1.4826 * mad * 1.2533) / Math.sqrt(xs.length);
}

/** Measured per-shape choice between the schedules; deterministic given the same measurements. */
export class ScheduleTuner {
  private readonly shapes = new Map<string, ShapeState>();
  private readonly refreshEvery: number;
  private readonly window: number;

  constructor(opts: TunerOptions = {}) {
    this.refreshEvery = opts.refreshEvery ?? 10;
    this.window = opts.window ?? MAX_EXPLORE;
    if (!Number.isInteger(this.refreshEvery) || this.refreshEvery < 2) {
      throw new RangeError(`ScheduleTuner: refreshEvery must be an integer >= 2, got ${this.refreshEvery}`);
    }
    if (!Number.isInteger(this.window) || this.window < MIN_EXPLORE) {
      throw new RangeError(`ScheduleTuner: window must be an integer >= ${MIN_EXPLORE}, got ${this.window}`);
    }
  }

  /** The schedule for the next call of this shape (and counts the call). */
  next(shape: string): Schedule {
    const s = this.state(shape);
    s.calls++;
    if (s.choice === null) {
      const n1 = s.split.calls;
      const n2 = s.serial.calls;
      if (n1 !== n2) return n1 < n2 ? 'split' : 'serial';
      // Alternate split, serial, split, ... until the two are told apart or the limit is reached.
      if (n1 < MAX_EXPLORE && !(n1 >= MIN_EXPLORE && this.separated(s))) return 'split';
      s.choice = this.best(s);
    } else {
      // Switch only on the same evidence that ended exploration, not on a median crossing in noise.
      const best = this.best(s);
      if (best !== s.choice && this.separated(s)) s.choice = best;
    }
    return s.calls % this.refreshEvery === 0 ? (s.choice === 'split' ? 'serial' : 'split') : s.choice;
  }

  /** Records a finished call: `seconds` of sampling that produced `tokens` new tokens. */
  record(shape: string, schedule: Schedule, seconds: number, tokens: number): void {
    const s = this.state(shape);
    const m = s[schedule];
    m.calls++;
    // A call with no measurable work still counts as run, so exploration keeps alternating.
    if (!(tokens > 0) || !(seconds > 0) || !Number.isFinite(seconds)) return;
    m.recent.push(Math.log(seconds / tokens));
    if (m.recent.length > this.window) m.recent.shift();
  }

  /** Every shape seen, with its measurements and current choice. */
  report(): ShapeReport[] {
    const measured = (m: Series): Measured | null => (m.recent.length === 0 ? null : { calls: m.calls, cost: Math.exp(median(m.recent)) });
    return [...this.shapes].map(([shape, s]) => ({
      shape,
      calls: s.calls,
      decided: s.choice !== null,
      split: measured(s.split),
      serial: measured(s.serial),
      choice: s.choice ?? this.best(s),
    }));
  }

  private separated(s: ShapeState): boolean {
    const a = s.split.recent;
    const b = s.serial.recent;
    if (a.length < MIN_EXPLORE || b.length < MIN_EXPLORE) return false;
    const se = Math.hypot(medianStdErr(a), medianStdErr(b));
    return Math.abs(median(a) - median(b)) > 2 * se;
  }

  // Split until serial is measured faster (a schedule never measured counts as infinitely slow).
  private best(s: ShapeState): Schedule {
    const cost = (m: Series) => (m.recent.length === 0 ? Infinity : median(m.recent));
    return cost(s.serial) < cost(s.split) ? 'serial' : 'split';
  }

  private state(shape: string): ShapeState {
    let s = this.shapes.get(shape);
    if (!s) {
      s = { calls: 0, choice: null, split: { recent: [], calls: 0 }, serial: { recent: [], calls: 0 } };
      this.shapes.set(shape, s);
    }
    return s;
  }
}
