// CPU kernels: free functions with the op interface's signatures (see native/ops/backend.h for
// the contract of each). CpuBackend (cpu_backend.cpp) forwards to these. Kernels parallelise
// internally with parallel.h and are deterministic for a given thread count; reductions whose
// result feeds training (norm weight grads, embedding grads) are deterministic for any count.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../ops/backend.h"

namespace troupe::cpu {

// gemm.cpp
void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// elementwise.cpp
void add_inplace(float* y, const float* x, size_t n);
void axpy(float* y, const float* x, float a, size_t n);
void scale_inplace(float* x, float s, size_t n);
double sum_squares(const float* x, size_t n);
double dot(const float* a, const float* b, size_t n);
void embedding_forward(const int32_t* ids, int T, const float* table, int dim, float* out);
void embedding_backward(const int32_t* ids, int T, const float* dout, int dim, float* dtable);
void rmsnorm_forward(const float* x, const float* w, int rows, int dim, float eps, float* y,
                     float* rstd);
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int rows,
                      int dim, float* dx, float* dw);
void qk_norm_rope_forward(const float* qkv_in, const float* q_norm_w, const float* k_norm_w,
                          const int32_t* positions, const float* rope_cos, const float* rope_sin,
                          int T, int Hq, int Hkv, int hd, float eps, float* qkv_out, float* rstd);
void qk_norm_rope_backward(const float* dqkv_out, const float* qkv_in, const float* q_norm_w,
                           const float* k_norm_w, const int32_t* positions, const float* rope_cos,
                           const float* rope_sin, const float* rstd, int T, int Hq, int Hkv, int hd,
                           float* dqkv_in, float* dq_norm_w, float* dk_norm_w);
void swiglu_forward(const float* gu, int T, int I, float* h);
void swiglu_backward(const float* dh, const float* gu, int T, int I, float* dgu);

// attention.cpp
void attention_forward(const float* qkv, const int32_t* cu_seqlens, int num_seqs, int max_seqlen,
                       int T, int Hq, int Hkv, int hd, float scale, float* out, float* lse);
void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse,
                        const int32_t* cu_seqlens, int num_seqs, int max_seqlen, int T, int Hq,
                        int Hkv, int hd, float scale, float* dqkv);
void kv_cache_write(const float* qkv, const int32_t* slots, const int32_t* positions, int T, int Hq,
                    int Hkv, int hd, int max_len, float* k_cache, float* v_cache);
void decode_attention(const float* qkv, const float* k_cache, const float* v_cache,
                      const int32_t* slots, const int32_t* lengths, int B, int Hq, int Hkv, int hd,
                      int max_len, float scale, float* out);

// loss.cpp
void token_logprobs(const float* logits, int N, int V, const int32_t* targets, float temperature,
                    float* logp, float* entropy);
void ppo_loss(const float* logits, int N, int V, const int32_t* targets, const float* old_logp,
              const float* ref_logp, const float* adv, const float* weight,
              const PpoLossParams& p, float* dlogits, float* stats);
void cross_entropy(const float* logits, int N, int V, const int32_t* targets, const float* weight,
                   float* dlogits, float* logp);

// sampler.cpp
void sample(const float* logits, int B, int V, const SampleParams& p, const SampleRowKey* keys,
            int32_t* tokens_out, float* logp_out);

// adamw.cpp
void adamw(float* params, const float* grads, float* m, float* v, size_t n, float lr, float beta1,
           float beta2, float eps, float weight_decay, int step, float grad_scale);

}  // namespace troupe::cpu
