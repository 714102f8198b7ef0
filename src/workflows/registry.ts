// Built-in workflows by name, for configs and the CLI.
import type { Workflow } from './api.js';
import { EvalOptWorkflow, type EvalOptOptions } from './eval-opt.js';
import { OrchWorkersWorkflow, type OrchWorkersOptions } from './orch-workers.js';
import { SingleAgentWorkflow } from './single-agent.js';
import { VotingWorkflow, type VotingOptions } from './voting.js';

/** Names of the built-in workflows. */
export const WORKFLOW_NAMES = ['single', 'voting', 'eval-opt', 'orch-workers'] as const;

/** A built-in workflow name. */
export type WorkflowName = (typeof WORKFLOW_NAMES)[number];

/** Options accepted by `createWorkflow` (each workflow reads its own). */
export type WorkflowOptions = VotingOptions & EvalOptOptions & OrchWorkersOptions;

/** A built-in workflow by name; throws naming the known workflows on an unknown name. */
export function createWorkflow(name: string, opts: WorkflowOptions = {}): Workflow {
  switch (name) {
    case 'single':
      return new SingleAgentWorkflow();
    case 'voting':
      return new VotingWorkflow(opts);
    case 'eval-opt':
      return new EvalOptWorkflow(opts);
    case 'orch-workers':
      return new OrchWorkersWorkflow(opts);
    default:
      throw new Error(`unknown workflow '${name}' (known: ${WORKFLOW_NAMES.join(', ')})`);
  }
}
