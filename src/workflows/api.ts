// The workflow API: a workflow is one async function per episode that asks for role completions
// stage by stage through an EpisodeContext. It knows nothing about tokens, policies or training;
// the executor (executor.ts) batches its calls and records the rollout rows.
import type { ChatMessage } from '../chat/message.js';
import type { Grade, Problem, Rng, Task } from '../tasks/task.js';

/** One role call a workflow asks for; the calls passed to one `ctx.call` form a stage. */
export interface RoleCallSpec {
  /** Role name; must be one of the workflow's `roles`. */
  role: string;
  /** Index among parallel calls of the same role in this stage (voters 0..2, workers 0..k-1). */
  copy: number;
  /** Round index for multi-round roles (Eval-Opt); 0 for single-round workflows. */
  turn: number;
  /** The prompt. */
  messages: ChatMessage[];
  /** Completion budget; the executor's per-role default when absent. */
  maxTokens?: number;
}

/** How a completion ended: a stop token, the token budget, or a sampler error (text is then ''). */
export type FinishReason = 'stop' | 'length' | 'error';

/** A completion handed back to the workflow. */
export interface RoleCompletion {
  text: string;
  finish: FinishReason;
  /** Call sequence number within the episode (0, 1, 2, ... in the order the calls were asked for). */
  seq: number;
}

/** Whether a workflow could read a role output: `none` when it never parsed it (answers graded by the task). */
export type ParseStatus = 'none' | 'ok' | 'fallback';

/** What a running workflow sees of its episode. */
export interface EpisodeContext {
  readonly task: Task;
  readonly problem: Problem;
  /** Runs one stage: all calls are sampled together; results come back in the same order. */
  call(calls: RoleCallSpec[]): Promise<RoleCompletion[]>;
  /** Records whether an output parsed (`ok`) or a documented fallback was used (`fallback`, with why). */
  noteParse(completion: RoleCompletion, status: ParseStatus, note?: string): void;
}

/** One finished call as the reward hook sees it. */
export interface CallRecord {
  role: string;
  copy: number;
  turn: number;
  text: string;
  finish: FinishReason;
  parse: ParseStatus;
}

/** A finished episode as the reward hook sees it: calls in sequence order. */
export interface EpisodeRecord {
  problem: Problem;
  finalAnswer: string;
  calls: readonly CallRecord[];
}

/** Grades a text against the episode's problem (task.grade bound to the problem). */
export type Judge = (text: string) => Grade;

/** Episode state given to a workflow's demonstration oracle: what was produced so far. */
export interface DemoState {
  readonly task: Task;
  readonly problem: Problem;
  readonly rng: Rng;
  /** Probability that an upstream role's demo output is a plausible wrong one (realistic mixes). */
  readonly wrongRate: number;
  /** Calls already answered in this episode, in sequence order (earlier copies of a stage included). */
  readonly history: readonly { spec: RoleCallSpec; text: string }[];
}

/** A demonstration output; `target` false marks context-only outputs (e.g. a deliberately wrong voter). */
export interface DemoCompletion {
  text: string;
  target: boolean;
}

/** A multi-role workflow; one instance serves every episode (keep per-episode state inside `run`). */
export interface Workflow {
  /** Registry name ("single", "voting", "eval-opt", "orch-workers"). */
  readonly name: string;
  /** Every role name the workflow may call; routing tables are validated against it. */
  readonly roles: readonly string[];
  /** Runs one episode and returns the final answer text that the task grades. */
  run(ctx: EpisodeContext): Promise<string>;
  /**
   * Per-call rewards for the `role` credit mode, aligned with `episode.calls`; `null` entries take
   * the episode's final outcome. Absent: every call gets the final outcome.
   */
  roleRewards?(episode: EpisodeRecord, judge: Judge): (number | null)[];
  /** The ideal (or, for upstream context, deliberately mixed) output of one call given the episode so far. */
  demo(call: RoleCallSpec, state: DemoState): DemoCompletion;
}
