// Voting: N generators (default 3) answer the identical prompt in one stage; one aggregator sees
// all candidates and picks one by its 1-based number in \boxed{N}; the picked candidate's text is
// the final answer. Fallback when the pick is unparseable or out of range: majority vote over the
// candidates' extracted answers (ties -> earliest candidate; no extractable answer -> candidate 1),
// recorded on the aggregator row as parse 'fallback'.
import type {
  DemoCompletion,
  DemoState,
  EpisodeContext,
  EpisodeRecord,
  Judge,
  RoleCallSpec,
  Workflow,
} from './api.js';
import { majorityIndex, parseChoice } from './parse.js';
import { aggregatePrompt, solvePrompt } from './prompts.js';

/** Options of the voting workflow. */
export interface VotingOptions {
  /** Number of parallel generators (default 3). */
  voters?: number;
}

/** 3 voters + 1 aggregator that picks a candidate by index. */
export class VotingWorkflow implements Workflow {
  readonly name = 'voting';
  readonly roles = ['generator', 'aggregator'] as const;
  readonly voters: number;

  constructor(opts: VotingOptions = {}) {
    this.voters = opts.voters ?? 3;
    if (!Number.isInteger(this.voters) || this.voters < 1) {
      throw new Error(`VotingWorkflow: voters must be a positive integer, got ${opts.voters}`);
    }
  }

  async run(ctx: EpisodeContext): Promise<string> {
    const prompt = solvePrompt(ctx.task, ctx.problem);
    const candidates = await ctx.call(
      Array.from({ length: this.voters }, (_, copy) => ({ role: 'generator', copy, turn: 0, messages: prompt })),
    );
    const texts = candidates.map((c) => c.text);
    const [agg] = await ctx.call([
      { role: 'aggregator', copy: 0, turn: 0, messages: aggregatePrompt(ctx.task, ctx.problem, texts) },
    ]);
    let pick = parseChoice(agg!.text, texts.length);
    if (pick === null) {
      pick = majorityIndex(texts.map((t) => ctx.task.extractAnswer(t)));
      ctx.noteParse(agg!, 'fallback', `unparseable choice: majority vote picked ${pick + 1}`);
    } else {
      ctx.noteParse(agg!, 'ok');
    }
    return texts[pick]!;
  }

  /** Each voter is rewarded for its own answer; the aggregator takes the final outcome. */
  roleRewards(episode: EpisodeRecord, judge: Judge): (number | null)[] {
    return episode.calls.map((c) => (c.role === 'generator' ? judge(c.text).reward : null));
  }

  demo(call: RoleCallSpec, state: DemoState): DemoCompletion {
    const { task, problem, rng } = state;
    if (call.role === 'generator') {
      const earlier = state.history.filter((h) => h.spec.role === 'generator');
      const anyCorrect = earlier.some((h) => task.grade(problem, h.text).correct);
      // The last voter is forced correct when all earlier ones were wrong, so a correct pick exists.
      const lastChance = call.copy === this.voters - 1 && !anyCorrect;
      if (!lastChance && rng.next() < state.wrongRate) {
        return { text: task.demonstrateWrong(problem, rng), target: false };
      }
      return { text: task.demonstrate(problem, rng), target: true };
    }
    const candidates = state.history.filter((h) => h.spec.role === 'generator').map((h) => h.text);
    const correct = candidates.flatMap((t, i) => (task.grade(problem, t).correct ? [i] : []));
    if (correct.length === 0) return { text: '\\boxed{1}', target: false };
    return { text: `\\boxed{${rng.pick(correct) + 1}}`, target: true };
  }
}
