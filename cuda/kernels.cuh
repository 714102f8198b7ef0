// Host-side launchers of the CUDA kernels, one group per .cu file. Each has the op interface's
// signature (see native/ops/backend.h for the contract) plus the device context; CudaBackend
// (cuda_backend.cu) forwards to these. Pointers are device memory unless named *_host.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda_common.cuh"
#include "ops/backend.h"

namespace troupe::cuda {

// gemm.cu — cuBLAS when the toolkit has it, else (or when asked) a tiled shared-memory SGEMM.
struct GemmEngine;
GemmEngine* gemm_engine_create(Ctx& ctx);
void gemm_engine_destroy(GemmEngine* g);
void gemm_set_precision(GemmEngine* g, int precision);  // a CudaGemmPrecision value
int gemm_get_precision(const GemmEngine* g);
bool gemm_has_cublas();
void gemm(Ctx& ctx, GemmEngine* g, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
          const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc);

// elementwise.cu
void add_inplace(Ctx& ctx, float* y, const float* x, size_t n);
void axpy(Ctx& ctx, float* y, const float* x, float a, size_t n);
void scale_inplace(Ctx& ctx, float* x, float s, size_t n);
double sum_squares(Ctx& ctx, const float* x, size_t n);
double dot(Ctx& ctx, const float* a, const float* b, size_t n);
void swiglu_forward(Ctx& ctx, const float* gu, int T, int I, float* h);
void swiglu_backward(Ctx& ctx, const float* dh, const float* gu, int T, int I, float* dgu);

// embedding.cu
void embedding_forward(Ctx& ctx, const int32_t* ids, int T, const float* table, int dim,
                       float* out);
void embedding_backward(Ctx& ctx, const int32_t* ids, int T, const float* dout, int dim,
                        float* dtable);

// rmsnorm.cu
void rmsnorm_forward(Ctx& ctx, const float* x, const float* w, int rows, int dim, float eps,
                     float* y, float* rstd);
void rmsnorm_backward(Ctx& ctx, const float* dy, const float* x, const float* w,
                      const float* rstd, int rows, int dim, float* dx, float* dw);

// qk_norm_rope.cu
void qk_norm_rope_forward(Ctx& ctx, const float* qkv_in, const float* q_norm_w,
                          const float* k_norm_w, const int32_t* positions, const float* rope_cos,
                          const float* rope_sin, int T, int Hq, int Hkv, int hd, float eps,
                          float* qkv_out, float* rstd);
void qk_norm_rope_backward(Ctx& ctx, const float* dqkv_out, const float* qkv_in,
                           const float* q_norm_w, const float* k_norm_w,
                           const int32_t* positions, const float* rope_cos,
                           const float* rope_sin, const float* rstd, int T, int Hq, int Hkv,
                           int hd, float* dqkv_in, float* dq_norm_w, float* dk_norm_w);

// attention.cu (forward), attention_bwd.cu (backward)
void attention_forward(Ctx& ctx, const float* qkv, const int32_t* cu_seqlens, int num_seqs,
                       int max_seqlen, int T, int Hq, int Hkv, int hd, float scale, float* out,
                       float* lse);
void attention_backward(Ctx& ctx, const float* dout, const float* qkv, const float* out,
                        const float* lse, const int32_t* cu_seqlens, int num_seqs,
                        int max_seqlen, int T, int Hq, int Hkv, int hd, float scale,
                        float* dqkv);

// decode.cu
void kv_cache_write(Ctx& ctx, const float* qkv, const int32_t* slots, const int32_t* positions,
                    int T, int Hq, int Hkv, int hd, int max_len, float* k_cache, float* v_cache);
void decode_attention(Ctx& ctx, const float* qkv, const float* k_cache, const float* v_cache,
                      const int32_t* slots, const int32_t* lengths, int B, int Hq, int Hkv,
                      int hd, int max_len, float scale, float* out);

// loss.cu
void token_logprobs(Ctx& ctx, const float* logits, int N, int V, const int32_t* targets,
                    float temperature, float* logp, float* entropy);
void ppo_loss(Ctx& ctx, const float* logits, int N, int V, const int32_t* targets,
              const float* old_logp, const float* ref_logp, const float* adv,
              const float* weight, const PpoLossParams& p, float* dlogits, float* stats);
void cross_entropy(Ctx& ctx, const float* logits, int N, int V, const int32_t* targets,
                   const float* weight, float* dlogits, float* logp);

// sampler.cu
void sample(Ctx& ctx, const float* logits, int B, int V, const SampleParams& p,
            const SampleRowKey* keys_host, int32_t* tokens_out_host, float* logp_out_host);

// adamw.cu
void adamw(Ctx& ctx, float* params, const float* grads, float* m, float* v, size_t n, float lr,
           float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale);

}  // namespace troupe::cuda
