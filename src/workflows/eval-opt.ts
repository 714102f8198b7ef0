// Evaluator-Optimizer: the generator answers (turn 0); the evaluator judges it with \boxed{Correct}
// or \boxed{Incorrect} plus a short reason (same turn); on Incorrect the generator revises (turn+1)
// seeing its latest answer and the reason. At most `maxRounds` evaluations (default 3 for boxed
// tasks, 2 for program tasks); the last generator answer is the final answer, even if judged
// Incorrect in the last round. Fallback: an unparseable verdict counts as Correct (stop), recorded
// on the evaluator row as parse 'fallback'.
import type {
  CallRecord,
  DemoCompletion,
  DemoState,
  EpisodeContext,
  EpisodeRecord,
  Judge,
  RoleCallSpec,
  Workflow,
} from './api.js';
import { answerKindOf } from './format.js';
import { parseVerdict } from './parse.js';
import { evaluatePrompt, revisePrompt, solvePrompt } from './prompts.js';

/** Options of the evaluator-optimizer workflow. */
export interface EvalOptOptions {
  /** Maximum evaluation rounds; default 3 for boxed-answer tasks, 2 for program tasks. */
  maxRounds?: number;
}

/** Ideal evaluator replies used by demonstrations. */
export const VERDICT_CORRECT = '\\boxed{Correct} The answer checks out.';
/** Ideal evaluator reply for a wrong answer (generic reason: the demo evaluator does not solve). */
export const VERDICT_INCORRECT = '\\boxed{Incorrect} The answer is wrong. Recheck each step.';

/** Generator/evaluator loop that stops at Correct or after `maxRounds` evaluations. */
export class EvalOptWorkflow implements Workflow {
  readonly name = 'eval-opt';
  readonly roles = ['generator', 'evaluator'] as const;
  readonly maxRounds: number | undefined;

  constructor(opts: EvalOptOptions = {}) {
    this.maxRounds = opts.maxRounds;
    if (opts.maxRounds !== undefined && (!Number.isInteger(opts.maxRounds) || opts.maxRounds < 1)) {
      throw new Error(`EvalOptWorkflow: maxRounds must be a positive integer, got ${opts.maxRounds}`);
    }
  }

  /** Rounds used for a task: the option, else 3 (boxed answers) or 2 (programs). */
  roundsFor(task: EpisodeContext['task']): number {
    return this.maxRounds ?? (answerKindOf(task) === 'program' ? 2 : 3);
  }

  async run(ctx: EpisodeContext): Promise<string> {
    const { task, problem } = ctx;
    const rounds = this.roundsFor(task);
    let [answer] = await ctx.call([{ role: 'generator', copy: 0, turn: 0, messages: solvePrompt(task, problem) }]);
    for (let turn = 0; turn < rounds; turn++) {
      const [review] = await ctx.call([
        { role: 'evaluator', copy: 0, turn, messages: evaluatePrompt(task, problem, answer!.text) },
      ]);
      const verdict = parseVerdict(review!.text);
      if (verdict === null) {
        ctx.noteParse(review!, 'fallback', 'unparseable verdict: treated as Correct');
        break;
      }
      ctx.noteParse(review!, 'ok');
      if (verdict.verdict === 'correct' || turn === rounds - 1) break;
      [answer] = await ctx.call([
        {
          role: 'generator',
          copy: 0,
          turn: turn + 1,
          messages: revisePrompt(task, problem, answer!.text, verdict.reason),
        },
      ]);
    }
    return answer!.text;
  }

  /**
   * Each generator answer is rewarded for its own correctness; an evaluator gets 1 when its verdict
   * matches the truth of the answer it judged (same turn), 0 otherwise or when unparseable.
   */
  roleRewards(episode: EpisodeRecord, judge: Judge): (number | null)[] {
    const generatorAt = new Map<number, CallRecord>();
    for (const c of episode.calls) if (c.role === 'generator') generatorAt.set(c.turn, c);
    return episode.calls.map((c) => {
      if (c.role === 'generator') return judge(c.text).reward;
      if (c.role !== 'evaluator') return null;
      const verdict = parseVerdict(c.text);
      const judged = generatorAt.get(c.turn);
      if (verdict === null || judged === undefined) return 0;
      return (verdict.verdict === 'correct') === judge(judged.text).correct ? 1 : 0;
    });
  }

  demo(call: RoleCallSpec, state: DemoState): DemoCompletion {
    const { task, problem, rng } = state;
    if (call.role === 'generator') {
      // First answers are a realistic mix; a revision always demonstrates the fix.
      if (call.turn === 0 && rng.next() < state.wrongRate) {
        return { text: task.demonstrateWrong(problem, rng), target: false };
      }
      return { text: task.demonstrate(problem, rng), target: true };
    }
    const judged = [...state.history].reverse().find((h) => h.spec.role === 'generator');
    const ok = judged !== undefined && task.grade(problem, judged.text).correct;
    return { text: ok ? VERDICT_CORRECT : VERDICT_INCORRECT, target: true };
  }
}
