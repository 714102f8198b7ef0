// Runs B*G episodes of a workflow concurrently and batches their role calls: whenever every live
// episode is waiting on `ctx.call`, all pending calls go to the sampler as ONE batch. Episodes that
// finish early (Eval-Opt stopping at "Correct") simply drop out, so the others keep progressing.
// Call ids come from (seed, step, episode, call sequence number), never from batch position.
import type { ChatMessage } from '../chat/message.js';
import type { Problem, Task } from '../tasks/task.js';
import type {
  EpisodeContext,
  FinishReason,
  ParseStatus,
  RoleCallSpec,
  RoleCompletion,
  Workflow,
} from './api.js';
import type {
  LogProbs,
  PolicyRouter,
  RoleSampler,
  SampleRequest,
  SampleResult,
  TokenIds,
} from './sampler.js';
import { callIdOf } from './sampler.js';

/** One role call of the rollout: the record workflows and training meet in (see DESIGN.md). */
export interface RolloutRow {
  episode: number;
  /** GRPO group key: the problem id. */
  group: string;
  role: string;
  copy: number;
  turn: number;
  policy: string;
  callId: string;
  /** Call sequence number within the episode. */
  call: number;
  promptTokens: TokenIds;
  completionTokens: TokenIds;
  logprobs: LogProbs;
  finish: FinishReason;
  text: string;
  parse: ParseStatus;
  /** Why a fallback was taken ('' otherwise). */
  parseNote: string;
}

/** One call as a readable transcript line: prompt and completion. */
export interface TranscriptEntry {
  call: number;
  role: string;
  copy: number;
  turn: number;
  messages: ChatMessage[];
  text: string;
}

/** A finished episode. */
export interface EpisodeResult {
  /** Episode index b*G + g. */
  episode: number;
  problem: Problem;
  finalAnswer: string;
  /** Rows in call order. */
  rows: RolloutRow[];
  transcript: TranscriptEntry[];
}

/** Inputs of one rollout of B problems x G episodes. */
export interface ExecuteOptions {
  workflow: Workflow;
  task: Task;
  /** The B distinct problems; each runs `rollouts` times. */
  problems: readonly Problem[];
  /** G, episodes per problem (default 1). */
  rollouts?: number;
  sampler: RoleSampler;
  router: PolicyRouter;
  seed: number;
  step: number;
  /** Completion budget when neither the call nor `roleMaxTokens` sets one (default 256). */
  maxTokens?: number;
  /** Per-role completion budgets. */
  roleMaxTokens?: Readonly<Record<string, number>>;
}

/** All episodes (index b*G + g) plus their rows flattened in episode then call order. */
export interface ExecuteResult {
  episodes: EpisodeResult[];
  rows: RolloutRow[];
  /** Sampler calls made (one per flush). */
  flushes: number;
}

interface Pending {
  specs: RoleCallSpec[];
  firstSeq: number;
  resolve: (completions: RoleCompletion[]) => void;
}

interface EpisodeState {
  index: number;
  problem: Problem;
  nextSeq: number;
  pending: Pending | null;
  done: boolean;
  rows: RolloutRow[];
  transcript: TranscriptEntry[];
  finalAnswer: string;
}

/** Runs every episode to completion, sampling stage by stage in cross-episode batches. */
export function executeEpisodes(opts: ExecuteOptions): Promise<ExecuteResult> {
  const rollouts = opts.rollouts ?? 1;
  if (!Number.isInteger(rollouts) || rollouts < 1) {
    throw new Error(`executeEpisodes: rollouts must be a positive integer, got ${rollouts}`);
  }
  const defaultMax = opts.maxTokens ?? 256;
  const roles = new Set(opts.workflow.roles);
  const states: EpisodeState[] = [];
  opts.problems.forEach((problem, b) => {
    for (let g = 0; g < rollouts; g++) {
      states.push({
        index: b * rollouts + g,
        problem,
        nextSeq: 0,
        pending: null,
        done: false,
        rows: [],
        transcript: [],
        finalAnswer: '',
      });
    }
  });

  return new Promise<ExecuteResult>((resolveAll, rejectAll) => {
    let live = states.length;
    let waiting = 0;
    let flushing = false;
    let failed = false;
    let flushes = 0;

    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      rejectAll(err instanceof Error ? err : new Error(String(err)));
    };

    const finish = (): void => {
      const episodes = states.map((s) => ({
        episode: s.index,
        problem: s.problem,
        finalAnswer: s.finalAnswer,
        rows: s.rows,
        transcript: s.transcript,
      }));
      resolveAll({ episodes, rows: episodes.flatMap((e) => e.rows), flushes });
    };

    const maybeFlush = (): void => {
      if (failed || flushing) return;
      if (live === 0) finish();
      else if (waiting === live) void flush();
    };

    const flush = async (): Promise<void> => {
      flushing = true;
      flushes++;
      // Episode order then call order: the batch layout is deterministic too, though ids never depend on it.
      const batch = states.filter((s) => s.pending !== null);
      const requests: SampleRequest[] = [];
      const owners: { state: EpisodeState; spec: RoleCallSpec; seq: number }[] = [];
      try {
        for (const state of batch) {
          const pending = state.pending!;
          pending.specs.forEach((spec, i) => {
            const seq = pending.firstSeq + i;
            const key = { seed: opts.seed, step: opts.step, episode: state.index, call: seq };
            requests.push({
              callId: callIdOf(key),
              key,
              policy: opts.router.policyFor(spec.role, spec.copy),
              role: spec.role,
              copy: spec.copy,
              turn: spec.turn,
              messages: spec.messages,
              maxTokens: spec.maxTokens ?? opts.roleMaxTokens?.[spec.role] ?? defaultMax,
            });
            owners.push({ state, spec, seq });
          });
        }
      } catch (err) {
        fail(err);
        return;
      }
      let results: SampleResult[];
      try {
        results = await opts.sampler.sample(requests);
      } catch (err) {
        fail(err);
        return;
      }
      if (!Array.isArray(results) || results.length !== requests.length) {
        fail(new Error(`sampler returned ${results?.length} results for ${requests.length} requests`));
        return;
      }
      const byState = new Map<EpisodeState, RoleCompletion[]>();
      owners.forEach(({ state, spec, seq }, i) => {
        const req = requests[i]!;
        const res = results[i]!;
        state.rows.push({
          episode: state.index,
          group: state.problem.id,
          role: spec.role,
          copy: spec.copy,
          turn: spec.turn,
          policy: req.policy,
          callId: req.callId,
          call: seq,
          promptTokens: res.promptTokens,
          completionTokens: res.completionTokens,
          logprobs: res.logprobs,
          finish: res.finish,
          text: res.text,
          parse: 'none',
          parseNote: '',
        });
        state.transcript.push({
          call: seq,
          role: spec.role,
          copy: spec.copy,
          turn: spec.turn,
          messages: spec.messages,
          text: res.text,
        });
        const list = byState.get(state) ?? [];
        list.push({ text: res.text, finish: res.finish, seq });
        byState.set(state, list);
      });
      waiting = 0;
      flushing = false;
      for (const state of batch) {
        const pending = state.pending!;
        state.pending = null;
        pending.resolve(byState.get(state) ?? []);
      }
    };

    const contextFor = (state: EpisodeState): EpisodeContext => ({
      task: opts.task,
      problem: state.problem,
      call: (specs: RoleCallSpec[]): Promise<RoleCompletion[]> => {
        if (state.done) {
          return Promise.reject(new Error(`episode ${state.index}: ctx.call after the workflow returned`));
        }
        if (state.pending) {
          return Promise.reject(
            new Error(`episode ${state.index}: ctx.call while a stage is pending (await each stage)`),
          );
        }
        for (const spec of specs) {
          if (!roles.has(spec.role)) {
            return Promise.reject(
              new Error(`episode ${state.index}: role '${spec.role}' is not a role of workflow '${opts.workflow.name}'`),
            );
          }
        }
        if (specs.length === 0) return Promise.resolve([]);
        return new Promise<RoleCompletion[]>((resolve) => {
          state.pending = { specs: [...specs], firstSeq: state.nextSeq, resolve };
          state.nextSeq += specs.length;
          waiting++;
          maybeFlush();
        });
      },
      noteParse: (completion: RoleCompletion, status: ParseStatus, note = ''): void => {
        const row = state.rows.find((r) => r.call === completion.seq);
        if (!row) throw new Error(`episode ${state.index}: noteParse for unknown call ${completion.seq}`);
        row.parse = status;
        row.parseNote = note;
      },
    });

    if (states.length === 0) {
      finish();
      return;
    }
    for (const state of states) {
      const ctx = contextFor(state);
      Promise.resolve()
        .then(() => opts.workflow.run(ctx))
        .then(
          (answer) => {
            state.finalAnswer = answer;
            state.done = true;
            live--;
            maybeFlush();
          },
          (err: unknown) => {
            const msg = err instanceof Error ? err.message : String(err);
            fail(new Error(`workflow '${opts.workflow.name}' episode ${state.index} (${state.problem.id}): ${msg}`, { cause: err }));
          },
        );
    }
  });
}
