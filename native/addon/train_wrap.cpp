// Training: accumulate (one piece's loss + backward into the step's gradient), step (clip +
// AdamW), zeroGrad, releaseTrainingState. The loss/optimizer option names are the camelCase forms
// of the core's fields; an unset field keeps the core's default.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "async.h"
#include "convert.h"
#include "exports.h"
#include "handles.h"
#include "train/policy.h"

namespace troupe::addon {
namespace {

std::string num(double x) { return fmt_number(x); }

// Bounds of the numeric options (see convert.h): {lo, hi, lo_open, hi_open}.
constexpr Options::Bounds kNonNegative{0, HUGE_VAL, false, false};
constexpr Options::Bounds kPositive{0, HUGE_VAL, true, false};
constexpr Options::Bounds kUnitHalfOpen{0, 1, false, true};  // [0, 1)
constexpr Options::Bounds kUnitClosed{0, 1, false, false};   // [0, 1]
constexpr Options::Bounds kAnyFinite{};

LossSpec read_loss(ArgReader& r, const Napi::Value& v) {
  Options o(r, v, "loss",
            {"clipEpsLow", "clipEpsHigh", "dualClipC", "logRatioClamp", "kl", "klCoef",
             "entropyCoef", "temperature", "aggregation", "globalNumSeqs", "globalNumTokens",
             "constantNorm", "supervised"});
  LossSpec s;
  PpoLossParams& p = s.ppo;
  p.clip_eps_low = o.bounded_f32("clipEpsLow", p.clip_eps_low, kUnitHalfOpen);
  p.clip_eps_high = o.bounded_f32("clipEpsHigh", p.clip_eps_high, kNonNegative);
  p.dual_clip_c = o.bounded_f32("dualClipC", p.dual_clip_c, kAnyFinite);  // <= 1 disables
  p.log_ratio_clamp = o.bounded_f32("logRatioClamp", p.log_ratio_clamp, kPositive);
  // Index order equals the KlEstimator / LossAgg enum values.
  p.kl = static_cast<KlEstimator>(o.choice("kl", static_cast<int>(p.kl), {"none", "k1", "k2", "k3"}));
  p.kl_coef = o.bounded_f32("klCoef", p.kl_coef, kNonNegative);
  p.entropy_coef = o.bounded_f32("entropyCoef", p.entropy_coef, kAnyFinite);
  p.temperature = o.bounded_f32("temperature", p.temperature, kPositive);
  s.agg = static_cast<LossAgg>(o.choice(
      "aggregation", static_cast<int>(s.agg),
      {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "constant"}));
  s.global_num_seqs =
      static_cast<int>(o.integer("globalNumSeqs", 0, 0, std::numeric_limits<int>::max()));
  s.global_num_tokens = o.integer("globalNumTokens", 0, 0, (int64_t{1} << 53) - 1);
  s.constant_norm = o.bounded_f32("constantNorm", 0, kNonNegative);
  if (s.agg == LossAgg::ConstantNorm && s.constant_norm <= 0)
    r.range_error(o.path("constantNorm"), "> 0 when loss.aggregation is 'constant'",
                  num(s.constant_norm));
  s.supervised = o.boolean("supervised", false);
  return s;
}

PieceOptions read_piece(ArgReader& r, const Napi::Value& v) {
  Options o(r, v, "piece",
            {"role", "track", "emaDecay", "dampingLambda", "gradScale", "maxTokensPerMicro"});
  PieceOptions p;
  p.role = o.string("role", p.role);
  p.track = o.boolean("track", p.track);
  p.ema_decay = o.bounded_f32("emaDecay", p.ema_decay, kUnitClosed);
  p.damping_lambda = o.bounded_f32("dampingLambda", p.damping_lambda, kNonNegative);
  p.grad_scale = o.bounded_f32("gradScale", p.grad_scale, kAnyFinite);
  p.max_tokens_per_micro = static_cast<int>(
      o.integer("maxTokensPerMicro", p.max_tokens_per_micro, 1, std::numeric_limits<int>::max()));
  return p;
}

Napi::Value piece_stats(Napi::Env env, const PieceStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", s.loss);
  o.Set("tokens", static_cast<double>(s.tokens));
  o.Set("numSeqs", s.num_seqs);
  o.Set("entropyMean", s.entropy_mean);
  o.Set("clipLowFrac", s.clip_low_frac);
  o.Set("clipHighFrac", s.clip_high_frac);
  o.Set("dualClipFrac", s.dual_clip_frac);
  o.Set("ratioMean", s.ratio_mean);
  o.Set("ratioMax", s.ratio_max);
  o.Set("approxKl", s.approx_kl);
  o.Set("refKl", s.ref_kl);
  o.Set("logpMean", s.logp_mean);
  o.Set("gradNorm", s.grad_norm);
  o.Set("rawGradNorm", s.raw_grad_norm);
  o.Set("emaNorm", s.ema_norm);
  o.Set("cosEma", s.cos_ema);
  o.Set("hasEma", s.has_ema);
  o.Set("dampingScale", s.damping_scale);
  return o;
}

// accumulate(h, batch, loss, piece) -> PieceStats
Napi::Value accumulate(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "accumulate");
  auto p = policy_arg(r, r.arg(0), "policy");
  const ModelConfig& cfg = p->config();
  LossSpec loss = read_loss(r, r.arg(2));
  PieceOptions piece = read_piece(r, r.arg(3));

  Napi::Object b = r.object(r.arg(1), "batch");
  TrainBatch batch;
  Span<int32_t> tokens = r.int32_array(b.Get("tokens"), "batch.tokens");
  Span<int32_t> cu = r.int32_array(b.Get("cuSeqlens"), "batch.cuSeqlens");
  const int S = check_packed(r, tokens, cu, "batch.tokens", "batch.cuSeqlens",
                             cfg.max_position_embeddings);
  check_token_ids(r, tokens, "batch.tokens", cfg.vocab_size);
  const int64_t T = static_cast<int64_t>(tokens.size);
  batch.seqs = {tokens.data, cu.data, S};

  Span<uint8_t> mask = r.uint8_array(b.Get("lossMask"), "batch.lossMask");
  check_length(r, mask, "batch.lossMask", T, true);
  for (size_t i = 0; i < mask.size; ++i)
    if (mask[i] > 1)
      r.range_error("batch.lossMask[" + std::to_string(i) + "]", "0 or 1", std::to_string(mask[i]));
  batch.loss_mask = mask.data;

  // PPO needs the rollout log-probs and the advantages; supervised warm-up (cross-entropy) uses
  // neither, so there they may be left out. Every entry is checked, masked or not: prompt
  // positions should hold 0, so a non-finite value anywhere is a caller bug worth reporting, and
  // the contract then does not depend on how the kernel treats masked rows.
  if (!loss.supervised || ArgReader::present(b.Get("oldLogp"))) {
    Span<float> old_logp = r.float32_array(b.Get("oldLogp"), "batch.oldLogp");
    check_length(r, old_logp, "batch.oldLogp", T, true);
    check_finite(r, old_logp, "batch.oldLogp");
    batch.old_logp = old_logp.data;
  }
  if (!loss.supervised || ArgReader::present(b.Get("advantages"))) {
    Span<float> adv = r.float32_array(b.Get("advantages"), "batch.advantages");
    check_length(r, adv, "batch.advantages", S, true);
    check_finite(r, adv, "batch.advantages");
    batch.advantages = adv.data;
  }
  if (ArgReader::present(b.Get("refLogp"))) {
    Span<float> ref = r.float32_array(b.Get("refLogp"), "batch.refLogp");
    check_length(r, ref, "batch.refLogp", T, true);
    check_finite(r, ref, "batch.refLogp");
    batch.ref_logp = ref.data;
  } else if (loss.ppo.kl != KlEstimator::None && !loss.supervised) {
    throw Napi::TypeError::New(r.env(), "accumulate: batch.refLogp must be a Float32Array when "
                                        "loss.kl is not 'none' (got " + describe(b.Get("refLogp")) + ")");
  }
  if (loss.global_num_seqs > 0 && loss.global_num_seqs < S)
    r.range_error("loss.globalNumSeqs", "0 (this piece alone) or >= the piece's " +
                  std::to_string(S) + " sequences", std::to_string(loss.global_num_seqs));

  auto stats = std::make_shared<PieceStats>();
  Job job;
  job.work = [p, batch, loss, piece, stats] { *stats = p->accumulate(batch, loss, piece); };
  job.done = [stats](Napi::Env env) { return piece_stats(env, *stats); };
  return dispatch(r, std::move(job), async);
}

// step(h, optim) -> {gradNorm, clipScale, step}
Napi::Value step(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "step");
  auto p = policy_arg(r, r.arg(0), "policy");
  Options o(r, r.arg(1), "optim", {"lr", "beta1", "beta2", "eps", "weightDecay", "maxGradNorm"});
  OptimParams op;
  op.lr = o.bounded_f32("lr", op.lr, kNonNegative);
  op.beta1 = o.bounded_f32("beta1", op.beta1, kUnitHalfOpen);
  op.beta2 = o.bounded_f32("beta2", op.beta2, kUnitHalfOpen);
  op.eps = o.bounded_f32("eps", op.eps, kPositive);
  op.weight_decay = o.bounded_f32("weightDecay", op.weight_decay, kNonNegative);
  op.max_grad_norm = o.bounded_f32("maxGradNorm", op.max_grad_norm, kAnyFinite);  // <= 0: no clip

  auto stats = std::make_shared<StepStats>();
  Job job;
  job.work = [p, op, stats] { *stats = p->step(op); };
  job.done = [stats](Napi::Env env) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("gradNorm", stats->grad_norm);
    out.Set("clipScale", stats->clip_scale);
    out.Set("step", stats->step);
    out.Set("skipped", stats->skipped);
    return out;
  };
  return dispatch(r, std::move(job), async);
}

Napi::Value zero_grad(const Napi::CallbackInfo& info) {
  ArgReader r(info, "zeroGrad");
  policy_arg(r, r.arg(0), "policy")->zero_grad();
  return r.env().Undefined();
}

Napi::Value release_training_state(const Napi::CallbackInfo& info) {
  ArgReader r(info, "releaseTrainingState");
  policy_arg(r, r.arg(0), "policy")->release_training_state();
  return r.env().Undefined();
}

}  // namespace

void register_training_functions(Napi::Env env, Napi::Object exports) {
  export_dual(env, exports, "accumulate", accumulate);
  export_dual(env, exports, "step", step);
  export_sync(env, exports, "zeroGrad", zero_grad);
  export_sync(env, exports, "releaseTrainingState", release_training_state);
}

}  // namespace troupe::addon
