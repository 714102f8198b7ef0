// The op interface. Model code (native/model) is written once against this class; the CPU
// kernels (native/cpu) and the CUDA kernels (cuda/) implement it. Every pointer argument is
// backend memory (host memory for CPU, device memory for CUDA) unless its name ends in _host.
//
// Conventions shared by all ops:
//  - fp32 tensors, row-major, densely packed unless a leading dimension is given.
//  - Variable-length batches are packed: T tokens in total, sequence s occupies rows
//    [cu_seqlens[s], cu_seqlens[s+1]). No padding anywhere.
//  - The attention input is "packed qkv": [T, Hq + 2*Hkv, hd], query heads first, then key heads,
//    then value heads, because the q/k/v projections run as one GEMM over one fused weight.
//  - "accumulate" in a comment means the op adds into its output (+=); otherwise it overwrites.
//  - Reductions run in a fixed order so results do not depend on thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace troupe {

// How the fused log-softmax + policy-gradient loss combines per-token terms.
// Per-token loss weights are computed by the caller (native/train/loss_weights.h), so the op
// itself only needs the per-token weight; the enum is here for documentation and CUDA parity.
enum class LossAgg : int { TokenMean = 0, SeqMeanTokenMean = 1, SeqMeanTokenSum = 2, ConstantNorm = 3 };
enum class KlEstimator : int { None = 0, K1 = 1, K2 = 2, K3 = 3 };

// Parameters of the per-token PPO/GRPO objective, identical on every backend.
struct PpoLossParams {
  float clip_eps_low = 0.2f;     // ratio lower bound 1 - eps_low
  float clip_eps_high = 0.28f;   // ratio upper bound 1 + eps_high
  float dual_clip_c = 3.0f;      // dual clip for negative advantages; <= 1 disables
  float log_ratio_clamp = 20.0f; // ratio = exp(clamp(logp - old_logp, -c, c))
  KlEstimator kl = KlEstimator::None;
  float kl_coef = 0.0f;          // loss += kl_coef * kl(ref, policy) per token
  float entropy_coef = 0.0f;     // loss -= entropy_coef * H per token
  float temperature = 1.0f;      // logits are divided by this before log-softmax (match sampling)
};

// Per-token outputs of the loss op: one row of kTokenStatCols floats per token.
enum TokenStatCol : int {
  kStatLogp = 0,     // log p(target) under the current policy (at the loss temperature)
  kStatEntropy = 1,  // entropy of the full distribution
  kStatRatio = 2,    // exp(clamped logp - old_logp)
  kStatPgLoss = 3,   // unweighted per-token policy-gradient loss term
  kStatKl = 4,       // unweighted per-token KL estimate (0 when kl == None)
  kStatClip = 5,     // 0 none, 1 clipped on the low side, 2 high side, 3 dual-clip active
  kTokenStatCols = 6
};

// Sampling parameters for one generate call (same for every row of the call).
struct SampleParams {
  float temperature = 1.0f;  // <= 0 or greedy=true means argmax
  int top_k = 0;             // 0 = no top-k
  float top_p = 1.0f;        // 1 = no nucleus truncation
  bool greedy = false;
  uint64_t seed = 0;
};

// One row of a sampling batch: which (call, position) the draw belongs to. The Gumbel noise for
// vocabulary entry j is philox(seed, call_id, position, j), so a draw depends on nothing else.
struct SampleRowKey {
  uint64_t call_id;
  int32_t position;  // index of the token being generated within its completion
  int32_t pad_;
};

class Backend {
 protected:
  [[noreturn]] static void throw_no_packed_weights() {
    throw std::logic_error("this backend has no packed weight layout (packed_weight_bytes is 0)");
  }

 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory (raw; native/core/memory.h adds categories and accounting) ----
  virtual void* malloc_bytes(size_t bytes) = 0;
  virtual void free_bytes(void* p) = 0;
  virtual void upload(void* dst, const void* src_host, size_t bytes) = 0;
  virtual void download(void* dst_host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // ---- dense math ----
  // C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major. op(A) is [M,K]: A is [M,K] (lda >= K)
  // or, when trans_a, [K,M] (lda >= M). op(B) is [K,N]: B is [K,N] or, when trans_b, [N,K].
  // beta == 0 means C is not read (may hold NaN).
  virtual void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                    int lda, const float* B, int ldb, float beta, float* C, int ldc) = 0;
  // Optional prepacked weights for inference: a backend whose GEMM repacks its B operand may
  // offer a layout that W [N, K] (the x @ W^T of every linear layer) is converted to once, so the
  // many decode steps of a generation skip the repacking. packed_weight_bytes returns 0 when the
  // backend has no such layout (then the other two are never called and plain gemm is used).
  // gemm_packed_weight must give exactly gemm(false, true, M, N, K, alpha, A, lda, W, K, beta, C,
  // ldc)'s result.
  virtual size_t packed_weight_bytes(int N, int K) { (void)N, (void)K; return 0; }
  virtual void pack_weight(const float* W, int N, int K, void* packed) {
    (void)W, (void)N, (void)K, (void)packed;
    throw_no_packed_weights();
  }
  virtual void gemm_packed_weight(int M, int N, int K, float alpha, const float* A, int lda,
                                  const void* packed, float beta, float* C, int ldc) {
    (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)packed, (void)beta, (void)C,
        (void)ldc;
    throw_no_packed_weights();
  }
  virtual void add_inplace(float* y, const float* x, size_t n) = 0;          // y += x
  virtual void axpy(float* y, const float* x, float a, size_t n) = 0;        // y += a*x
  virtual void scale_inplace(float* x, float s, size_t n) = 0;               // x *= s
  // sum of squares and dot product, accumulated in double in a fixed order.
  virtual double sum_squares(const float* x, size_t n) = 0;
  virtual double dot(const float* a, const float* b, size_t n) = 0;

  // ---- layers (each with its backward) ----
  // out[t,:] = table[ids[t], :]
  virtual void embedding_forward(const int32_t* ids, int T, const float* table, int dim,
                                 float* out) = 0;
  // dtable[ids[t], :] += dout[t, :]   (accumulate; deterministic order over t)
  virtual void embedding_backward(const int32_t* ids, int T, const float* dout, int dim,
                                  float* dtable) = 0;
  // y = x * rstd * w, rstd[r] = 1/sqrt(mean(x[r]^2) + eps)
  virtual void rmsnorm_forward(const float* x, const float* w, int rows, int dim, float eps,
                               float* y, float* rstd) = 0;
  // dx += d/dx (accumulate, so the residual-stream gradient fuses in); dw += d/dw (accumulate)
  virtual void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd,
                                int rows, int dim, float* dx, float* dw) = 0;
  // Per-head RMSNorm of q and k heads (weights q_norm_w[hd], k_norm_w[hd]) followed by rotary
  // embedding (rotate-half form) at positions[t], using rope_cos/rope_sin tables [max_pos, hd/2].
  // Value heads are copied unchanged. qkv_in and qkv_out are [T, Hq+2Hkv, hd]; rstd is
  // [T, Hq+Hkv] (one per q/k head) and is needed by the backward.
  virtual void qk_norm_rope_forward(const float* qkv_in, const float* q_norm_w,
                                    const float* k_norm_w, const int32_t* positions,
                                    const float* rope_cos, const float* rope_sin, int T, int Hq,
                                    int Hkv, int hd, float eps, float* qkv_out, float* rstd) = 0;
  // dqkv_in = d/d(qkv_in) (overwrite); dq_norm_w, dk_norm_w accumulate.
  virtual void qk_norm_rope_backward(const float* dqkv_out, const float* qkv_in,
                                     const float* q_norm_w, const float* k_norm_w,
                                     const int32_t* positions, const float* rope_cos,
                                     const float* rope_sin, const float* rstd, int T, int Hq,
                                     int Hkv, int hd, float* dqkv_in, float* dq_norm_w,
                                     float* dk_norm_w) = 0;
  // gu is [T, 2I] = [gate | up]; h[t,i] = silu(gate[t,i]) * up[t,i]
  virtual void swiglu_forward(const float* gu, int T, int I, float* h) = 0;
  // dgu (overwrite) from dh
  virtual void swiglu_backward(const float* dh, const float* gu, int T, int I, float* dgu) = 0;

  // Causal self-attention over packed variable-length sequences with grouped-query heads
  // (query head h uses kv head h / (Hq/Hkv)). out is [T, Hq*hd]; lse is [T, Hq] (log-sum-exp of
  // the scaled scores of each query row, kept for the backward). max_seqlen lets kernels size
  // their tiles. The full score matrix must not be materialised for long sequences.
  virtual void attention_forward(const float* qkv, const int32_t* cu_seqlens, int num_seqs,
                                 int max_seqlen, int T, int Hq, int Hkv, int hd, float scale,
                                 float* out, float* lse) = 0;
  // dqkv is [T, Hq+2Hkv, hd] (overwrite).
  virtual void attention_backward(const float* dout, const float* qkv, const float* out,
                                  const float* lse, const int32_t* cu_seqlens, int num_seqs,
                                  int max_seqlen, int T, int Hq, int Hkv, int hd, float scale,
                                  float* dqkv) = 0;

  // ---- KV cache (generation). Cache layout per layer: [num_slots, max_len, Hkv, hd]. ----
  // Writes the (normed, roped) k and v heads of each token t of qkv [T, Hq+2Hkv, hd] to
  // cache slot slots[t] at position positions[t].
  virtual void kv_cache_write(const float* qkv, const int32_t* slots, const int32_t* positions,
                              int T, int Hq, int Hkv, int hd, int max_len, float* k_cache,
                              float* v_cache) = 0;
  // One query token per row b: q from qkv [B, Hq+2Hkv, hd] attends to cache positions
  // [0, lengths[b]) of slot slots[b] (the row's own k/v must already be written). out [B, Hq*hd].
  virtual void decode_attention(const float* qkv, const float* k_cache, const float* v_cache,
                                const int32_t* slots, const int32_t* lengths, int B, int Hq,
                                int Hkv, int hd, int max_len, float scale, float* out) = 0;

  // ---- heads ----
  // Forward only: logp[n] = log_softmax(logits[n]/temperature)[targets[n]]; entropy[n] of that
  // distribution (entropy may be null).
  virtual void token_logprobs(const float* logits, int N, int V, const int32_t* targets,
                              float temperature, float* logp, float* entropy) = 0;
  // Fused log-softmax + target gather + PPO/GRPO loss forward and backward for N rows.
  // weight[n] is the token's aggregation weight (0 for prompt tokens, so they get no gradient);
  // the loss is sum_n weight[n] * (pg[n] + kl_coef*kl[n] - entropy_coef*H[n]).
  // adv[n] is the token's advantage; ref_logp may be null when kl == None.
  // dlogits [N, V] receives d loss / d logits (may alias logits). stats [N, kTokenStatCols].
  virtual void ppo_loss(const float* logits, int N, int V, const int32_t* targets,
                        const float* old_logp, const float* ref_logp, const float* adv,
                        const float* weight, const PpoLossParams& p, float* dlogits,
                        float* stats) = 0;
  // Cross-entropy for supervised warm-up: loss = sum_n weight[n] * -log p(target); dlogits as
  // above; logp[n] receives log p(target).
  virtual void cross_entropy(const float* logits, int N, int V, const int32_t* targets,
                             const float* weight, float* dlogits, float* logp) = 0;
  // Draw one token per row from logits [B, V]. Gumbel-max over the allowed set (top-k, then
  // top-p over the temperature-scaled distribution); logp_out is the token's log-probability
  // under that truncated, renormalised distribution (for greedy: under temperature 1, untruncated).
  // keys_host stays in host memory on every backend (it is tiny).
  virtual void sample(const float* logits, int B, int V, const SampleParams& p,
                      const SampleRowKey* keys_host, int32_t* tokens_out_host,
                      float* logp_out_host) = 0;

  // ---- optimizer ----
  // Decoupled AdamW over n parameters; grad is multiplied by grad_scale first (clipping).
  // step is 1-based (bias correction).
  virtual void adamw(float* params, const float* grads, float* m, float* v, size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int step,
                     float grad_scale) = 0;
};

}  // namespace troupe
