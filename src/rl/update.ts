// One RL step's parameter update: for every policy, its rows are split into optimizer
// mini-batches; inside a mini-batch each role's rows are accumulated as a separate piece (so the
// native core reports that role's own gradient norm and its cosine with the role's running-average
// gradient, and can damp coherent updates), then one AdamW step is taken. Pieces share the
// mini-batch's normalisers, so the accumulated gradient equals that of one big batch.
import { buildRolloutTable } from '../data/rollout-table.js';
import { roleRanges, sliceRows, trainBatchView } from '../data/train-view.js';
import type { TrainBatch } from '../native/binding.js';
import type { Policy } from '../native/policy.js';
import type { RolloutRow } from '../workflows/executor.js';
import type { TrainConfig } from './config.js';

/** What one role contributed to one step. */
export interface RoleStepStats {
  role: string;
  policy: string;
  /** Rows of this role in the rollout (trained or not). */
  rows: number;
  /** Rows whose gradient was computed (non-zero advantage, or all kept rows with KL/entropy). */
  trainedRows: number;
  tokens: number;
  meanResponseLength: number;
  entropy: number;
  clipFrac: number;
  clipLowFrac: number;
  clipHighFrac: number;
  dualClipFrac: number;
  /** Mean k3 estimate of KL(rollout policy || current policy) over trained tokens. */
  klRollout: number;
  /** Mean KL estimate to the reference (base) policy, when a KL penalty is on. */
  klRef: number;
  /** Norm of the role's gradient (after damping), root-sum-square over mini-batches. */
  gradNorm: number;
  /** Share of the policy's gradient mass: gradNorm / sum of its roles' gradNorms. */
  gradMass: number;
  /** Cosine of the role's gradient with its running average (null before one exists). */
  cosEma: number | null;
  dampingScale: number;
  loss: number;
}

/** One policy's optimizer steps in this RL step. */
export interface PolicyStepStats {
  policy: string;
  updates: number;
  gradNorm: number;
  clipScale: number;
  lr: number;
}

/** Inputs of `updatePolicies`. */
export interface UpdateInputs {
  policies: ReadonlyMap<string, Policy>;
  /** Frozen base policy for the KL anchor (required when any klCoef > 0). */
  reference: Policy | null;
  rows: readonly RolloutRow[];
  advantages: ArrayLike<number>;
  /** 0 for rows dropped by the equal-reward filter. */
  keep: ArrayLike<number>;
  config: TrainConfig;
  lr: number;
}

function perRole(v: number | Record<string, number>, role: string): number {
  return typeof v === 'number' ? v : v[role] ?? 0;
}

/**
 * Row order for the rollout table: within each (policy, role), rows with a non-zero advantage come
 * first, so the rows that carry gradient are one contiguous slice of the Arrow batch (a view).
 */
function gradientFirstOrder(advantages: ArrayLike<number>, n: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  return idx.sort((a, b) => Number(advantages[a] === 0) - Number(advantages[b] === 0) || a - b);
}

function maskedTokens(view: TrainBatch, start: number, end: number): number {
  let n = 0;
  for (let t = view.cuSeqlens[start]; t < view.cuSeqlens[end]; t++) n += view.lossMask[t];
  return n;
}

/** Accumulates role pieces and steps every policy; returns per-role and per-policy statistics. */
export async function updatePolicies(inp: UpdateInputs): Promise<{ roles: RoleStepStats[]; policies: PolicyStepStats[]; tokens: number }> {
  const c = inp.config;
  const roles: RoleStepStats[] = [];
  const policySteps: PolicyStepStats[] = [];
  let totalTokens = 0;
  const order = gradientFirstOrder(inp.advantages, inp.rows.length);
  const table = buildRolloutTable({
    rows: order.map((i) => inp.rows[i]),
    advantages: order.map((i) => inp.advantages[i]),
    keep: order.map((i) => inp.keep[i]),
    policies: [...inp.policies.keys()],
  });
  for (const [name, policy] of inp.policies) {
    const batch = table.batches.get(name);
    const all = inp.rows.filter((r) => r.policy === name);
    const roleNames = [...new Set(all.map((r) => r.role))];
    const byRole = new Map<string, RoleStepStats>();
    for (const role of roleNames) {
      const mine = all.filter((r) => r.role === role);
      byRole.set(role, {
        role, policy: name, rows: mine.length, trainedRows: 0, tokens: 0,
        meanResponseLength: mine.reduce((s, r) => s + r.completionTokens.length, 0) / Math.max(1, mine.length),
        entropy: 0, clipFrac: 0, clipLowFrac: 0, clipHighFrac: 0, dualClipFrac: 0, klRollout: 0, klRef: 0,
        gradNorm: 0, gradMass: 0, cosEma: null, dampingScale: 1, loss: 0,
      });
    }
    const ps: PolicyStepStats = { policy: name, updates: 0, gradNorm: 0, clipScale: 1, lr: inp.lr };
    const gradSq = new Map<string, number>();
    if (batch) {
      const view = trainBatchView(batch);
      const ranges = roleRanges(batch);
      const adv = view.advantages!;
      // Per role, the end of its non-zero-advantage prefix.
      const nonzeroEnd = new Map<string, number>();
      for (const [role, r] of ranges) {
        let e = r.start;
        while (e < r.end && adv[e] !== 0) e++;
        nonzeroEnd.set(role, e);
      }
      for (let epoch = 0; epoch < c.epochs; epoch++) {
        for (let m0 = 0; m0 < batch.numRows; m0 += c.miniBatch) {
          const m1 = Math.min(batch.numRows, m0 + c.miniBatch);
          const mbTokens = maskedTokens(view, m0, m1);
          let pieces = 0;
          for (const [role, r] of ranges) {
            const klCoef = perRole(c.klCoef, role);
            // Zero-advantage rows contribute exactly zero policy gradient; without KL or entropy
            // terms they are skipped (the normalisers still count them, so the result equals
            // including them).
            const exactSkip = klCoef === 0 && c.entropyCoef === 0;
            const a = Math.max(m0, r.start);
            const b = Math.min(m1, exactSkip ? nonzeroEnd.get(role)! : r.end);
            if (b <= a) continue;
            let piece = sliceRows(view, a, b);
            if (klCoef > 0) {
              if (!inp.reference) throw new Error(`klCoef for role '${role}' needs a reference policy`);
              const ref = await inp.reference.forwardLogprobs(piece, { temperature: c.temperature });
              piece = { ...piece, refLogp: ref.logp };
            }
            const st = await policy.accumulate(
              piece,
              {
                clipEpsLow: c.clipLow, clipEpsHigh: c.clipHigh, dualClipC: c.dualClip,
                kl: klCoef > 0 ? c.klEstimator : 'none', klCoef, entropyCoef: c.entropyCoef,
                temperature: c.temperature, aggregation: c.lossAgg,
                globalNumSeqs: m1 - m0, globalNumTokens: mbTokens,
                constantNorm: c.lossAgg === 'constant' ? c.maxNewTokens : 0,
              },
              { role, track: true, emaDecay: c.coherenceDecay, dampingLambda: perRole(c.coherenceDamping, role) },
            );
            pieces++;
            const s = byRole.get(role)!;
            const n0 = s.tokens, n1 = st.tokens;
            const w = (x: number, y: number) => (n0 + n1 > 0 ? (x * n0 + y * n1) / (n0 + n1) : 0);
            s.entropy = w(s.entropy, st.entropyMean);
            s.clipLowFrac = w(s.clipLowFrac, st.clipLowFrac);
            s.clipHighFrac = w(s.clipHighFrac, st.clipHighFrac);
            s.dualClipFrac = w(s.dualClipFrac, st.dualClipFrac);
            s.klRollout = w(s.klRollout, st.approxKl);
            s.klRef = w(s.klRef, st.refKl);
            s.tokens += st.tokens;
            s.trainedRows += b - a;
            s.loss += st.loss;
            gradSq.set(role, (gradSq.get(role) ?? 0) + st.gradNorm * st.gradNorm);
            if (st.hasEma) s.cosEma = st.cosEma;
            s.dampingScale = st.dampingScale;
            totalTokens += st.tokens;
          }
          if (pieces === 0) continue;
          const step = await policy.step({
            lr: inp.lr, beta1: c.beta1, beta2: c.beta2, weightDecay: c.weightDecay, maxGradNorm: c.gradClip,
          });
          ps.updates++;
          ps.gradNorm = step.gradNorm;
          ps.clipScale = step.clipScale;
        }
      }
    }
    let massTotal = 0;
    for (const role of roleNames) {
      const s = byRole.get(role)!;
      s.gradNorm = Math.sqrt(gradSq.get(role) ?? 0);
      s.clipFrac = s.clipLowFrac + s.clipHighFrac + s.dualClipFrac;
      massTotal += s.gradNorm;
    }
    for (const role of roleNames) {
      const s = byRole.get(role)!;
      s.gradMass = massTotal > 0 ? s.gradNorm / massTotal : 0;
      roles.push(s);
    }
    policySteps.push(ps);
  }
  return { roles, policies: policySteps, tokens: totalTokens };
}
