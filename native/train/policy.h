// A policy: one set of Qwen3 parameters with its gradients, optimizer state and memory
// accounting, plus the three things RL does with it: score tokens, sample completions, and take
// PPO/GRPO training steps. All buffers given to these calls are host memory owned by the caller
// (the addon passes JS typed-array memory straight through); nothing is copied on the way in.
//
// Concurrency: forward_logprobs and generate may run on several threads at once (shared lock);
// accumulate, step, zero_grad and load take the policy exclusively.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "../core/memory.h"
#include "../model/config.h"
#include "../ops/backend.h"

namespace troupe {

class Qwen3Model;

// A packed batch of S sequences (host memory, borrowed).
struct PackedTokens {
  const int32_t* tokens = nullptr;      // [T]
  const int32_t* cu_seqlens = nullptr;  // [S+1], cu_seqlens[0] = 0, cu_seqlens[S] = T
  int num_seqs = 0;
};

// What the loss needs besides the tokens; per-token arrays are aligned with `tokens` (entry t
// refers to predicting tokens[t] from tokens[<t]; the first token of a sequence is never scored).
struct TrainBatch {
  PackedTokens seqs;
  const uint8_t* loss_mask = nullptr;  // [T] 1 = response token that is trained on
  const float* old_logp = nullptr;     // [T] rollout log-probs (sampling policy)
  const float* ref_logp = nullptr;     // [T] reference-policy log-probs, or null (no KL)
  const float* advantages = nullptr;   // [S] one advantage per sequence (GRPO)
};

struct LossSpec {
  PpoLossParams ppo;
  LossAgg agg = LossAgg::SeqMeanTokenMean;
  // Normalisers across all pieces of one optimizer step, so accumulating role by role gives the
  // same gradient as one big batch. <= 0 means "this piece alone".
  int global_num_seqs = 0;
  int64_t global_num_tokens = 0;
  float constant_norm = 0.0f;  // ConstantNorm: weight = 1 / (num_seqs * constant_norm)
  bool supervised = false;     // cross-entropy on masked tokens instead of PPO (warm-up)
};

// Options of one accumulation piece (typically: one role's rows).
struct PieceOptions {
  std::string role;            // key of the running-average gradient used for coherence
  bool track = true;           // compute the piece's own gradient norm and cosine (extra buffer)
  float ema_decay = 0.9f;      // running average: e = decay * e + (1 - decay) * g
  float damping_lambda = 0.0f; // coherence damping: scale g by 1 - lambda * clamp(cos, 0, 1)
  float grad_scale = 1.0f;     // extra multiplier on this piece's gradient
  int max_tokens_per_micro = 4096;  // activation memory bound; sequences are never split
};

struct PieceStats {
  double loss = 0;             // weighted loss of the piece (its share of the step's loss)
  int64_t tokens = 0;          // trained tokens
  int num_seqs = 0;
  double entropy_mean = 0;     // over trained tokens
  double clip_low_frac = 0, clip_high_frac = 0, dual_clip_frac = 0;
  double ratio_mean = 0, ratio_max = 0;
  double approx_kl = 0;        // mean k3 estimate of KL(old || current) over trained tokens
  double ref_kl = 0;           // mean of the configured KL estimator to the reference
  double logp_mean = 0;
  // Gradient diagnostics (when track): the piece's own gradient g, the role's running average
  // e (before this update), and the damping actually applied.
  double grad_norm = 0;        // |g| after damping
  double raw_grad_norm = 0;    // |g| before damping
  double ema_norm = 0;         // |e|, 0 on the first piece of a role
  double cos_ema = 0;          // cos(g, e); 0 when e is empty
  bool has_ema = false;
  double damping_scale = 1;
};

struct OptimParams {
  float lr = 2e-5f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
  float max_grad_norm = 1.0f;  // <= 0 disables clipping
};

struct StepStats {
  double grad_norm = 0;        // global norm of the accumulated gradient, before clipping
  double clip_scale = 1;
  int step = 0;                // optimizer steps taken so far (after this one)
  bool skipped = false;        // non-finite gradient: no update, gradient dropped
};

struct GenerateRequest {
  PackedTokens prompts;           // B prompts
  const int32_t* max_new = nullptr;  // [B] per-row limit (>= 0)
  const uint64_t* call_ids = nullptr;  // [B] RNG key of each row's completion
  SampleParams sampling;
  std::vector<int32_t> stop_tokens;
  int stride = 0;                 // row stride of the outputs (>= max(max_new))
  int32_t* out_tokens = nullptr;  // [B, stride]
  float* out_logp = nullptr;      // [B, stride]
  int32_t* out_lengths = nullptr; // [B]
  uint8_t* out_finish = nullptr;  // [B] 0 = stop token, 1 = length
};

struct GenerateStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

class Policy {
 public:
  Policy(const ModelConfig& cfg, Backend* backend, uint64_t seed);  // random init (HF-style)
  ~Policy();
  // Loads config.json + model.safetensors (+ optimizer.safetensors when present) from dir.
  static std::unique_ptr<Policy> load(const std::string& dir, Backend* backend);
  // Writes config.json + model.safetensors (+ optimizer.safetensors) atomically into dir.
  void save(const std::string& dir, bool with_optimizer);
  // Copies weights (and optionally optimizer state) from another policy of the same shape.
  void copy_from(Policy& other, bool with_optimizer);

  const ModelConfig& config() const;
  Backend* backend() const;
  int64_t num_parameters() const;
  int optimizer_steps() const;

  // logp[t] = log p(tokens[t] | tokens[<t]) at `temperature`; the first token of each sequence
  // gets 0. entropy may be null.
  void forward_logprobs(const PackedTokens& batch, float temperature, float* logp, float* entropy);
  // Per-position logits [T, V] (tests and debugging).
  void forward_logits(const PackedTokens& batch, float* logits);
  GenerateStats generate(const GenerateRequest& req);

  // Adds one piece's gradient to the step's accumulated gradient.
  PieceStats accumulate(const TrainBatch& batch, const LossSpec& loss, const PieceOptions& opt);
  // Global-norm clip + AdamW on the accumulated gradient, then zero it.
  StepStats step(const OptimParams& p);
  void zero_grad();
  // Drops gradient, optimizer and diagnostic buffers (e.g. a frozen reference policy).
  void release_training_state();

  MemorySnapshot memory() const;
  MemoryTracker& tracker();

  // Flat parameter access (tests, checkpoint conversion).
  struct TensorRef { std::string name; std::vector<int64_t> shape; size_t offset, numel; };
  const std::vector<TensorRef>& tensors() const;
  void read_params(float* dst) const;        // all parameters, flat, in tensors() order
  void write_params(const float* src);
  void read_grads(float* dst) const;         // accumulated gradient, flat

 private:
  Policy() = default;
  std::unique_ptr<Qwen3Model> model_;
  mutable std::shared_mutex mu_;
  friend class PolicyTrainer;
};

// Initialises the process-wide CPU thread default and returns the core count.
int cpu_cores();

}  // namespace troupe
