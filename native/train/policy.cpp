#include "policy.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "../cpu/parallel.h"
#include "../model/qwen3.h"
#include "checkpoint.h"
#include "loss_weights.h"
#include "validate.h"

namespace troupe {

Policy::Policy(const ModelConfig& cfg, Backend* backend, uint64_t seed)
    : model_(std::make_unique<Qwen3Model>(cfg, backend)) {
  model_->init_random(seed);
}

Policy::~Policy() = default;

std::unique_ptr<Policy> Policy::load(const std::string& dir, Backend* backend) {
  auto p = std::unique_ptr<Policy>(new Policy());
  p->model_ = load_checkpoint(dir, backend);
  return p;
}

void Policy::save(const std::string& dir, bool with_optimizer) {
  std::shared_lock lk(mu_);
  save_checkpoint(*model_, dir, with_optimizer);
}

void Policy::copy_from(Policy& other, bool with_optimizer) {
  if (&other == this) return;
  // Lock in address order: two copies in opposite directions must not deadlock.
  std::unique_lock lk(mu_, std::defer_lock);
  std::shared_lock lk2(other.mu_, std::defer_lock);
  if (this < &other) {
    lk.lock();
    lk2.lock();
  } else {
    lk2.lock();
    lk.lock();
  }
  Qwen3Model &a = *model_, &b = *other.model_;
  if (a.layout.total != b.layout.total || a.cfg.vocab_size != b.cfg.vocab_size)
    throw std::invalid_argument("copyFrom: the two policies have different shapes");
  if (a.be != b.be) throw std::invalid_argument("copyFrom: the two policies live on different devices");
  a.be->copy(a.params.data(), b.params.data(), a.layout.total * sizeof(float));
  a.params_changed();
  if (with_optimizer && !b.adam_m.empty()) {
    a.ensure_optimizer();
    a.be->copy(a.adam_m.data(), b.adam_m.data(), a.adam_m.bytes());
    a.be->copy(a.adam_v.data(), b.adam_v.data(), a.adam_v.bytes());
    a.opt_steps = b.opt_steps;
  }
}

const ModelConfig& Policy::config() const { return model_->cfg; }
Backend* Policy::backend() const { return model_->be; }
int64_t Policy::num_parameters() const { return static_cast<int64_t>(model_->layout.total); }
int Policy::optimizer_steps() const { return model_->opt_steps; }
MemorySnapshot Policy::memory() const { return model_->tracker.snapshot(); }
MemoryTracker& Policy::tracker() { return model_->tracker; }

const std::vector<Policy::TensorRef>& Policy::tensors() const {
  static thread_local std::vector<TensorRef> refs;
  refs.clear();
  for (const auto& t : model_->layout.tensors) refs.push_back({t.name, t.shape, t.offset, t.numel});
  return refs;
}

void Policy::read_params(float* dst) const {
  std::shared_lock lk(mu_);
  model_->be->download(dst, model_->params.data(), model_->layout.total * sizeof(float));
}

void Policy::write_params(const float* src) {
  std::unique_lock lk(mu_);
  model_->be->upload(model_->params.data(), src, model_->layout.total * sizeof(float));
  model_->params_changed();
}

void Policy::read_grads(float* dst) const {
  std::shared_lock lk(mu_);
  if (model_->grads.empty()) {
    std::fill(dst, dst + model_->layout.total, 0.0f);
    return;
  }
  model_->be->download(dst, model_->grads.data(), model_->layout.total * sizeof(float));
}

// ---- inference ------------------------------------------------------------------------------

void Policy::forward_logits(const PackedTokens& batch, float* logits) {
  std::shared_lock lk(mu_);
  Qwen3Model& m = *model_;
  validate_packed(batch, m.cfg, "batch");
  const int T = batch.cu_seqlens[batch.num_seqs], V = m.cfg.vocab_size;
  if (T == 0) return;
  Activations a;
  m.reserve(a, T, false, MemCategory::Activations);
  DeviceBatch db = m.upload_batch(a, batch.tokens, batch.cu_seqlens, batch.num_seqs);
  m.forward_hidden(a, db, false, nullptr);
  const int chunk = std::min(T, m.logits_chunk_rows());
  for (int r0 = 0; r0 < T; r0 += chunk) {
    int n = std::min(chunk, T - r0);
    m.lm_head_forward(a, r0, n);
    m.be->download(logits + static_cast<size_t>(r0) * V, a.logits.data(),
                   static_cast<size_t>(n) * V * sizeof(float));
  }
}

void Policy::forward_logprobs(const PackedTokens& batch, float temperature, float* logp,
                              float* entropy) {
  std::shared_lock lk(mu_);
  Qwen3Model& m = *model_;
  validate_packed(batch, m.cfg, "batch");
  const int S = batch.num_seqs, T = batch.cu_seqlens[S];
  if (!(temperature > 0.0f)) throw std::invalid_argument("temperature must be > 0");
  std::fill(logp, logp + T, 0.0f);
  if (entropy) std::fill(entropy, entropy + T, 0.0f);
  if (T == 0) return;
  Activations a;
  m.reserve(a, T, false, MemCategory::Activations);
  DeviceBatch db = m.upload_batch(a, batch.tokens, batch.cu_seqlens, S);
  m.forward_hidden(a, db, false, nullptr);
  // Row r predicts token r+1 (same sequence); the last row of each sequence predicts nothing.
  std::vector<int32_t> targets(static_cast<size_t>(T), 0);
  std::vector<uint8_t> has(static_cast<size_t>(T), 0);
  for (int s = 0; s < S; ++s)
    for (int r = batch.cu_seqlens[s]; r + 1 < batch.cu_seqlens[s + 1]; ++r) {
      targets[r] = batch.tokens[r + 1];
      has[r] = 1;
    }
  int32_t* tgt_dev = a.ids.i32() + 2 * T + S + 1;  // spare room after the uploaded batch ids
  m.be->upload(tgt_dev, targets.data(), T * sizeof(int32_t));
  const int chunk = std::min(T, m.logits_chunk_rows());
  std::vector<float> lp(static_cast<size_t>(chunk)), en(static_cast<size_t>(chunk));
  float* out_dev = a.loss_in.f32();
  for (int r0 = 0; r0 < T; r0 += chunk) {
    int n = std::min(chunk, T - r0);
    m.lm_head_forward(a, r0, n);
    m.be->token_logprobs(a.logits.f32(), n, m.cfg.vocab_size, tgt_dev + r0, temperature, out_dev,
                         entropy ? out_dev + chunk : nullptr);
    m.be->download(lp.data(), out_dev, n * sizeof(float));
    if (entropy) m.be->download(en.data(), out_dev + chunk, n * sizeof(float));
    for (int i = 0; i < n; ++i) {
      if (!has[r0 + i]) continue;
      logp[r0 + i + 1] = lp[i];
      if (entropy) entropy[r0 + i + 1] = en[i];
    }
  }
}

// ---- training -------------------------------------------------------------------------------

namespace {

struct StatSums {
  double loss = 0, entropy = 0, ratio = 0, ratio_max = 0, kl_old = 0, kl_ref = 0, logp = 0;
  int64_t tokens = 0, clip_low = 0, clip_high = 0, dual = 0;
};

}  // namespace

PieceStats Policy::accumulate(const TrainBatch& batch, const LossSpec& spec, const PieceOptions& opt) {
  std::unique_lock lk(mu_);
  Qwen3Model& m = *model_;
  validate_train_batch(batch, m.cfg);
  if (!spec.supervised && (!batch.old_logp || !batch.advantages))
    throw std::invalid_argument("batch: oldLogprobs and advantages are required for the PPO loss");
  if (spec.ppo.kl != KlEstimator::None && spec.ppo.kl_coef != 0.0f && !batch.ref_logp)
    throw std::invalid_argument("batch.refLogprobs is required when a KL penalty is configured");
  if (opt.max_tokens_per_micro < 1) throw std::invalid_argument("maxTokensPerMicro must be >= 1");
  const int S = batch.seqs.num_seqs, V = m.cfg.vocab_size;
  const int32_t* cu = batch.seqs.cu_seqlens;
  m.ensure_grads();
  const bool use_piece = opt.track || opt.grad_scale != 1.0f;
  float* gbase = m.grads.f32();
  if (use_piece) {
    m.piece.ensure(m.be, &m.tracker, MemCategory::Grads, m.layout.total * sizeof(float));
    m.be->zero(m.piece.data(), m.piece.bytes());
    gbase = m.piece.f32();
  }
  const std::vector<float> wtok = token_loss_weights(batch, spec);

  StatSums sum;
  int s0 = 0;
  while (s0 < S) {
    // Micro-batch: whole sequences up to the token budget (at least one sequence).
    int s1 = s0 + 1;
    while (s1 < S && cu[s1 + 1] - cu[s0] <= opt.max_tokens_per_micro) ++s1;
    const int t0 = cu[s0], T = cu[s1] - cu[s0], nseq = s1 - s0;
    if (T == 0) { s0 = s1; continue; }
    std::vector<int32_t> local_cu(static_cast<size_t>(nseq + 1));
    for (int i = 0; i <= nseq; ++i) local_cu[i] = cu[s0 + i] - t0;
    Activations& a = m.train_acts;
    m.reserve(a, std::max(T, std::min(opt.max_tokens_per_micro, cu[S])), true, MemCategory::Activations);
    DeviceBatch db = m.upload_batch(a, batch.seqs.tokens + t0, local_cu.data(), nseq);
    m.forward_hidden(a, db, true, nullptr);

    // Per-row loss inputs: row r predicts token r+1 of the same sequence.
    std::vector<int32_t> tgt(static_cast<size_t>(T), 0);
    std::vector<float> lin(static_cast<size_t>(4) * T, 0.0f);  // weight | old | ref | adv
    for (int i = 0; i < nseq; ++i)
      for (int r = local_cu[i]; r + 1 < local_cu[i + 1]; ++r) {
        const int t = t0 + r + 1;
        tgt[r] = batch.seqs.tokens[t];
        lin[r] = wtok[t];
        lin[T + r] = batch.old_logp ? batch.old_logp[t] : 0.0f;
        lin[2 * T + r] = batch.ref_logp ? batch.ref_logp[t] : 0.0f;
        lin[3 * T + r] = batch.advantages ? batch.advantages[s0 + i] : 0.0f;
      }
    int32_t* tgt_dev = a.ids.i32() + 2 * T + nseq + 1;
    m.be->upload(tgt_dev, tgt.data(), T * sizeof(int32_t));
    m.be->upload(a.loss_in.data(), lin.data(), lin.size() * sizeof(float));
    const float* w_dev = a.loss_in.f32();
    const int chunk = std::min(T, m.logits_chunk_rows());
    std::vector<float> st(static_cast<size_t>(chunk) * kTokenStatCols);
    for (int r0 = 0; r0 < T; r0 += chunk) {
      const int n = std::min(chunk, T - r0);
      m.lm_head_forward(a, r0, n);
      float* stats_dev = a.stats.f32();
      if (spec.supervised) {
        m.be->cross_entropy(a.logits.f32(), n, V, tgt_dev + r0, w_dev + r0, a.logits.f32(), stats_dev);
      } else {
        m.be->ppo_loss(a.logits.f32(), n, V, tgt_dev + r0, w_dev + T + r0,
                       batch.ref_logp ? w_dev + 2 * T + r0 : nullptr, w_dev + 3 * T + r0,
                       w_dev + r0, spec.ppo, a.logits.f32(), stats_dev);
      }
      m.be->download(st.data(), stats_dev,
                     static_cast<size_t>(n) * (spec.supervised ? 1 : kTokenStatCols) * sizeof(float));
      for (int i = 0; i < n; ++i) {
        const float w = lin[r0 + i];
        if (w == 0.0f) continue;
        ++sum.tokens;
        if (spec.supervised) {
          const float lp = st[i];
          sum.loss += -static_cast<double>(w) * lp;
          sum.logp += lp;
          continue;
        }
        const float* row = &st[static_cast<size_t>(i) * kTokenStatCols];
        const double H = row[kStatEntropy], ratio = row[kStatRatio];
        sum.loss += w * (row[kStatPgLoss] + spec.ppo.kl_coef * row[kStatKl] - spec.ppo.entropy_coef * H);
        sum.entropy += H;
        sum.ratio += ratio;
        sum.ratio_max = std::max(sum.ratio_max, ratio);
        sum.kl_ref += row[kStatKl];
        sum.logp += row[kStatLogp];
        const double logr = static_cast<double>(row[kStatLogp]) - lin[T + r0 + i];
        sum.kl_old += std::expm1(logr) - logr;  // k3 estimate of KL(old || current)
        const int code = static_cast<int>(row[kStatClip]);
        sum.clip_low += code == 1;
        sum.clip_high += code == 2;
        sum.dual += code == 3;
      }
      m.lm_head_backward(a, r0, n, gbase);
    }
    m.backward_hidden(a, db, gbase);
    s0 = s1;
  }

  PieceStats ps;
  ps.loss = sum.loss;
  ps.tokens = sum.tokens;
  ps.num_seqs = S;
  const double nt = std::max<int64_t>(1, sum.tokens);
  ps.entropy_mean = sum.entropy / nt;
  ps.clip_low_frac = sum.clip_low / nt;
  ps.clip_high_frac = sum.clip_high / nt;
  ps.dual_clip_frac = sum.dual / nt;
  ps.ratio_mean = sum.tokens ? sum.ratio / nt : 1.0;
  ps.ratio_max = sum.ratio_max;
  ps.approx_kl = sum.kl_old / nt;
  ps.ref_kl = sum.kl_ref / nt;
  ps.logp_mean = sum.logp / nt;

  if (use_piece) {
    const size_t n = m.layout.total;
    const double gg = m.be->sum_squares(m.piece.f32(), n);
    ps.raw_grad_norm = std::sqrt(gg);
    double scale = opt.grad_scale;
    if (opt.track) {
      auto it = m.role_ema.find(opt.role);
      if (it != m.role_ema.end()) {
        const double ee = m.be->sum_squares(it->second.f32(), n);
        const double ge = m.be->dot(m.piece.f32(), it->second.f32(), n);
        ps.has_ema = true;
        ps.ema_norm = std::sqrt(ee);
        ps.cos_ema = (gg > 0 && ee > 0) ? ge / (std::sqrt(gg) * std::sqrt(ee)) : 0.0;
        ps.damping_scale = 1.0 - opt.damping_lambda * std::clamp(ps.cos_ema, 0.0, 1.0);
        scale *= ps.damping_scale;
        // e <- decay * e + (1 - decay) * g   (raw gradient: the role's own direction)
        m.be->scale_inplace(it->second.f32(), opt.ema_decay, n);
        m.be->axpy(it->second.f32(), m.piece.f32(), 1.0f - opt.ema_decay, n);
      } else {
        DeviceBuffer e(m.be, &m.tracker, MemCategory::Grads, n * sizeof(float));
        m.be->copy(e.data(), m.piece.data(), n * sizeof(float));
        m.role_ema.emplace(opt.role, std::move(e));
      }
    }
    ps.grad_norm = ps.raw_grad_norm * std::fabs(scale);
    m.be->axpy(m.grads.f32(), m.piece.f32(), static_cast<float>(scale), n);
  }
  return ps;
}

StepStats Policy::step(const OptimParams& p) {
  std::unique_lock lk(mu_);
  Qwen3Model& m = *model_;
  if (!(p.lr >= 0) || !(p.eps > 0) || !(p.beta1 >= 0 && p.beta1 < 1) || !(p.beta2 >= 0 && p.beta2 < 1) ||
      !(p.weight_decay >= 0))
    throw std::invalid_argument("optimizer: need lr >= 0, eps > 0, 0 <= beta1, beta2 < 1, weightDecay >= 0");
  m.ensure_grads();
  m.ensure_optimizer();
  const size_t n = m.layout.total;
  StepStats s;
  s.grad_norm = std::sqrt(m.be->sum_squares(m.grads.f32(), n));
  if (!std::isfinite(s.grad_norm)) {
    m.be->zero(m.grads.data(), m.grads.bytes());
    s.skipped = true;
    s.step = m.opt_steps;
    return s;
  }
  s.clip_scale = (p.max_grad_norm > 0 && s.grad_norm > p.max_grad_norm)
                     ? p.max_grad_norm / (s.grad_norm + 1e-6)
                     : 1.0;
  ++m.opt_steps;
  m.be->adamw(m.params.f32(), m.grads.f32(), m.adam_m.f32(), m.adam_v.f32(), n, p.lr, p.beta1,
              p.beta2, p.eps, p.weight_decay, m.opt_steps, static_cast<float>(s.clip_scale));
  m.params_changed();
  m.be->zero(m.grads.data(), m.grads.bytes());
  s.step = m.opt_steps;
  return s;
}

void Policy::zero_grad() {
  std::unique_lock lk(mu_);
  if (!model_->grads.empty()) model_->be->zero(model_->grads.data(), model_->grads.bytes());
}

void Policy::release_training_state() {
  std::unique_lock lk(mu_);
  Qwen3Model& m = *model_;
  m.grads.release();
  m.piece.release();
  m.adam_m.release();
  m.adam_v.release();
  m.role_ema.clear();
  m.train_acts = Activations();
}

int cpu_cores() { return cpu::hardware_cores(); }

}  // namespace troupe
