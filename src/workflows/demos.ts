// Supervised warm-up data: runs a workflow's real `run()` (so every prompt comes from the same
// builders as in rollouts) against an oracle instead of a model. Each call is answered by the
// workflow's `demo()` given the episode so far; outputs marked `target: false` are context only
// (e.g. a deliberately wrong voter whose mistake the aggregator demo must avoid).
import type { ChatMessage } from '../chat/message.js';
import type { Problem, Rng, Task } from '../tasks/task.js';
import type { DemoState, EpisodeContext, ParseStatus, RoleCallSpec, RoleCompletion, Workflow } from './api.js';

/** One demonstrated call: the prompt the workflow built and the oracle's completion. */
export interface DemoCall {
  role: string;
  copy: number;
  turn: number;
  messages: ChatMessage[];
  completion: string;
  /** True when the completion is an ideal output to train on. */
  target: boolean;
  /** How the workflow parsed the completion (demos should never need a fallback). */
  parse: ParseStatus;
}

/** A demonstrated episode. */
export interface DemoEpisode {
  problem: Problem;
  calls: DemoCall[];
  finalAnswer: string;
}

/** Options of demonstration episodes. */
export interface DemoOptions {
  /** Probability that an upstream output (voter, first answer, worker) is a plausible wrong one (default 0.4). */
  wrongRate?: number;
}

/** Runs one demonstration episode of `workflow` on `problem`. */
export async function demonstrateEpisode(
  workflow: Workflow,
  task: Task,
  problem: Problem,
  rng: Rng,
  opts: DemoOptions = {},
): Promise<DemoEpisode> {
  const wrongRate = opts.wrongRate ?? 0.4;
  const history: { spec: RoleCallSpec; text: string }[] = [];
  const calls: DemoCall[] = [];
  const state: DemoState = { task, problem, rng, wrongRate, history };
  const ctx: EpisodeContext = {
    task,
    problem,
    call: async (specs: RoleCallSpec[]): Promise<RoleCompletion[]> =>
      specs.map((spec) => {
        if (!workflow.roles.includes(spec.role)) {
          throw new Error(`role '${spec.role}' is not a role of workflow '${workflow.name}'`);
        }
        const out = workflow.demo(spec, state);
        const seq = calls.length;
        history.push({ spec, text: out.text });
        calls.push({
          role: spec.role,
          copy: spec.copy,
          turn: spec.turn,
          messages: spec.messages,
          completion: out.text,
          target: out.target,
          parse: 'none',
        });
        return { text: out.text, finish: 'stop' as const, seq };
      }),
    noteParse: (completion: RoleCompletion, status: ParseStatus): void => {
      const call = calls[completion.seq];
      if (call) call.parse = status;
    },
  };
  const finalAnswer = await workflow.run(ctx);
  return { problem, calls, finalAnswer };
}

/** The (messages, completion) pairs of an episode's target calls, for supervised warm-up. */
export function demoTargets(episode: DemoEpisode): { role: string; messages: ChatMessage[]; completion: string }[] {
  return episode.calls
    .filter((c) => c.target)
    .map((c) => ({ role: c.role, messages: c.messages, completion: c.completion }));
}
