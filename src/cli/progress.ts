// Training progress for humans and for logs. On a terminal: one status line redrawn in place
// (phase, bar, step/steps, accuracy, reward, tokens/s, elapsed, ETA), with log lines printed above
// it. Anywhere else (CI, pipes, files): plain `key=value` lines, one per RL step and one every few
// seconds for base warm-up and evaluation, because a redrawn line turns into megabytes of carriage
// returns in a log file.
import type { StepProgress, TrainHooks } from '../rl/hooks.js';
import { formatCount, formatDuration, formatRate } from './format.js';

/** The part of a writable stream the printer uses (process.stdout fits; tests pass a fake). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Printer options; `tty` overrides the stream's own isTTY, `now` is the clock in ms. */
export interface ProgressOptions {
  tty?: boolean;
  now?: () => number;
  /** Milliseconds between in-place redraws on a terminal. */
  redrawMs?: number;
  /** Milliseconds between plain lines for base warm-up and evaluation events. */
  plainMs?: number;
}

const BAR_WIDTH = 20;

/** Evaluation events count RL steps like training events, so they share one pace and ETA. */
type Counter = 'base' | 'rl';
const counterOf = (phase: StepProgress['phase']): Counter => (phase === 'base' ? 'base' : 'rl');
const CLEAR_LINE = '\r\x1b[2K';

/** Seconds left in the phase, extrapolated from its pace so far; null before the pace is known. */
export function estimateEta(p: StepProgress, phaseStartSeconds: number, phaseStartStep: number): number | null {
  if (p.step >= p.steps) return 0;
  const done = p.step - phaseStartStep;
  if (done <= 0) return null;
  return ((p.seconds - phaseStartSeconds) / done) * (p.steps - p.step);
}

/** The plain-mode line: `[train 12/40] acc=0.412 reward=0.375 tok/s=1.2k elapsed=1m02s eta=3m10s`. */
export function formatPlainLine(p: StepProgress, eta: number | null): string {
  const parts = [
    `[${p.phase} ${p.step}/${p.steps}]`,
    `acc=${formatRate(p.accuracy)}`,
    `reward=${formatRate(p.reward)}`,
    `tok/s=${formatCount(p.tokensPerSecond)}`,
    `elapsed=${formatDuration(p.seconds)}`,
    `eta=${formatDuration(eta)}`,
  ];
  if (p.message) parts.push(`| ${p.message}`);
  return parts.join(' ');
}

/** The terminal status line with a bar, cut to the terminal width. */
export function formatBarLine(p: StepProgress, eta: number | null, columns = 120): string {
  const frac = p.steps > 0 ? Math.min(1, Math.max(0, p.step / p.steps)) : 0;
  const filled = Math.round(frac * BAR_WIDTH);
  const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
  const text =
    `${p.phase.padEnd(5)} ${bar} ${p.step}/${p.steps}  acc ${formatRate(p.accuracy)}  reward ${formatRate(p.reward)}  ` +
    `${formatCount(p.tokensPerSecond)} tok/s  ${formatDuration(p.seconds)} eta ${formatDuration(eta)}` +
    (p.message ? `  ${p.message}` : '');
  // One column short of the width: writing into the last column wraps on some terminals.
  return text.length >= columns ? text.slice(0, Math.max(0, columns - 1)) : text;
}

/** Renders trainer hooks to a stream; call `finish()` before printing anything else at the end. */
export class ProgressPrinter implements TrainHooks {
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly redrawMs: number;
  private readonly plainMs: number;
  private last: StepProgress | null = null;
  private lastAt = 0;
  private lastDrawAt = -Infinity;
  private lastPlainAt = -Infinity;
  private drawn = false;
  /** Where each counter's pace is measured from: its first step and the run time before it. */
  private readonly starts = new Map<Counter, { seconds: number; step: number }>();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly stream: ProgressStream, opts: ProgressOptions = {}) {
    this.tty = opts.tty ?? stream.isTTY === true;
    this.now = opts.now ?? (() => performance.now());
    this.redrawMs = opts.redrawMs ?? 100;
    this.plainMs = opts.plainMs ?? 5000;
  }

  /** Called by the trainer on every event of every phase. */
  onProgress(p: StepProgress): void {
    const prev = this.last;
    const newPhase = prev === null || prev.phase !== p.phase;
    const counter = counterOf(p.phase);
    // First sight of a counter, or it went back: measure the pace from here. A resumed run starts
    // at step k, so the pace counts only the steps done in this process.
    if (!this.starts.has(counter) || (prev !== null && counterOf(prev.phase) === counter && p.step < prev.step)) {
      this.starts.set(counter, { seconds: prev?.seconds ?? 0, step: Math.max(0, p.step - 1) });
    }
    this.last = p;
    this.lastAt = this.now();
    if (this.tty) {
      const due = newPhase || p.step >= p.steps || this.lastAt - this.lastDrawAt >= this.redrawMs;
      if (due) {
        this.draw();
        // Only event draws throttle; a clock-tick redraw just before must not hide a new step.
        this.lastDrawAt = this.lastAt;
      }
      this.startTicker();
    } else if (p.phase === 'train' || newPhase || this.lastAt - this.lastPlainAt >= this.plainMs) {
      // Every RL step; base warm-up and evaluation events can come many per second, so those
      // print on entry and then every few seconds.
      this.stream.write(formatPlainLine(p, this.eta(p)) + '\n');
      this.lastPlainAt = this.lastAt;
    }
  }

  /** Log lines go above the status line on a terminal, as-is elsewhere. */
  onLog(line: string): void {
    if (this.tty && this.drawn) {
      this.stream.write(CLEAR_LINE + line + '\n');
      this.drawn = false;
      this.draw();
    } else {
      this.stream.write(line + '\n');
    }
  }

  /** Stops redrawing and ends the status line so later output starts on a fresh line. */
  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private eta(p: StepProgress): number | null {
    const s = this.starts.get(counterOf(p.phase)) ?? { seconds: 0, step: 0 };
    return estimateEta(p, s.seconds, s.step);
  }

  private draw(): void {
    if (!this.last) return;
    // Between events the clock keeps running, so elapsed and the ETA move with it.
    const since = Math.max(0, (this.now() - this.lastAt) / 1000);
    const eta = this.eta(this.last);
    const p = { ...this.last, seconds: this.last.seconds + since };
    // Some pseudo-terminals report 0 columns; treat that as unknown rather than cut everything.
    const columns = this.stream.columns && this.stream.columns > 20 ? this.stream.columns : 120;
    this.stream.write(CLEAR_LINE + formatBarLine(p, eta === null ? null : Math.max(0, eta - since), columns));
    this.drawn = true;
  }

  private startTicker(): void {
    if (this.timer) return;
    // Refreshes elapsed/ETA during long steps; unref'd so it never keeps the process alive.
    this.timer = setInterval(() => this.draw(), 1000);
    this.timer.unref?.();
  }
}
