// Orchestrator-Workers: the orchestrator lists up to 3 distinct strategies (not solutions), one per
// line as "1. ..." (parsed by parseStrategies: numbered lines, duplicates dropped, first 3 kept);
// one worker per strategy solves the whole problem in parallel; a synthesizer sees all worker
// solutions and writes the final answer. Fallback: no strategy parsed -> one worker with
// DEFAULT_STRATEGY, recorded on the orchestrator row as parse 'fallback'.
import type {
  DemoCompletion,
  DemoState,
  EpisodeContext,
  EpisodeRecord,
  Judge,
  RoleCallSpec,
  Workflow,
} from './api.js';
import { DEFAULT_STRATEGY, strategyPool } from './format.js';
import { parseStrategies } from './parse.js';
import { orchestratePrompt, synthesizePrompt, workerPrompt } from './prompts.js';

/** Options of the orchestrator-workers workflow. */
export interface OrchWorkersOptions {
  /** Maximum strategies, hence workers (default 3). */
  maxStrategies?: number;
}

/** Orchestrator -> 1..3 parallel workers -> synthesizer. */
export class OrchWorkersWorkflow implements Workflow {
  readonly name = 'orch-workers';
  readonly roles = ['orchestrator', 'worker', 'synthesizer'] as const;
  readonly maxStrategies: number;

  constructor(opts: OrchWorkersOptions = {}) {
    this.maxStrategies = opts.maxStrategies ?? 3;
    if (!Number.isInteger(this.maxStrategies) || this.maxStrategies < 1) {
      throw new Error(`OrchWorkersWorkflow: maxStrategies must be a positive integer, got ${opts.maxStrategies}`);
    }
  }

  async run(ctx: EpisodeContext): Promise<string> {
    const { task, problem } = ctx;
    const [plan] = await ctx.call([
      { role: 'orchestrator', copy: 0, turn: 0, messages: orchestratePrompt(task, problem, this.maxStrategies) },
    ]);
    let strategies = parseStrategies(plan!.text, this.maxStrategies);
    if (strategies.length === 0) {
      strategies = [DEFAULT_STRATEGY];
      ctx.noteParse(plan!, 'fallback', 'no strategy parsed: one worker with the default strategy');
    } else {
      ctx.noteParse(plan!, 'ok');
    }
    const solutions = await ctx.call(
      strategies.map((s, copy) => ({ role: 'worker', copy, turn: 0, messages: workerPrompt(task, problem, s) })),
    );
    const [final] = await ctx.call([
      {
        role: 'synthesizer',
        copy: 0,
        turn: 0,
        messages: synthesizePrompt(task, problem, solutions.map((s) => s.text)),
      },
    ]);
    return final!.text;
  }

  /** Each worker is rewarded for its own solution; orchestrator and synthesizer take the final outcome. */
  roleRewards(episode: EpisodeRecord, judge: Judge): (number | null)[] {
    return episode.calls.map((c) => (c.role === 'worker' ? judge(c.text).reward : null));
  }

  demo(call: RoleCallSpec, state: DemoState): DemoCompletion {
    const { task, problem, rng } = state;
    if (call.role === 'orchestrator') {
      const pool = [...strategyPool(task)];
      const count = rng.int(1, Math.min(this.maxStrategies, pool.length));
      const chosen: string[] = [];
      while (chosen.length < count) chosen.push(pool.splice(rng.int(0, pool.length - 1), 1)[0]!);
      return { text: chosen.map((s, i) => `${i + 1}. ${s}`).join('\n'), target: true };
    }
    if (call.role === 'worker') {
      if (rng.next() < state.wrongRate) return { text: task.demonstrateWrong(problem, rng), target: false };
      return { text: task.demonstrate(problem, rng), target: true };
    }
    // Synthesizer: restate a correct worker solution; when none is correct, demonstrate the fix.
    const correct = state.history
      .filter((h) => h.spec.role === 'worker' && task.grade(problem, h.text).correct)
      .map((h) => h.text);
    return { text: correct.length > 0 ? rng.pick(correct) : task.demonstrate(problem, rng), target: true };
  }
}
