// Single-agent control: one generator call, graded directly.
import type { DemoCompletion, DemoState, EpisodeContext, RoleCallSpec, Workflow } from './api.js';
import { solvePrompt } from './prompts.js';

/** One generator call whose output is the final answer. */
export class SingleAgentWorkflow implements Workflow {
  readonly name = 'single';
  readonly roles = ['generator'] as const;

  async run(ctx: EpisodeContext): Promise<string> {
    const [answer] = await ctx.call([
      { role: 'generator', copy: 0, turn: 0, messages: solvePrompt(ctx.task, ctx.problem) },
    ]);
    return answer!.text;
  }

  demo(_call: RoleCallSpec, state: DemoState): DemoCompletion {
    return { text: state.task.demonstrate(state.problem, state.rng), target: true };
  }
}
