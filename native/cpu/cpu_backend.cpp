#include "cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels.h"

namespace troupe {
namespace {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  void* malloc_bytes(size_t bytes) override {
    // 64-byte alignment for AVX-512 loads; round the size up as aligned_alloc requires.
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void free_bytes(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy(void* dst, const void* src, size_t n) override { std::memmove(dst, src, n); }
  void zero(void* p, size_t n) override { std::memset(p, 0, n); }
  void synchronize() override {}

  void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
            const float* B, int ldb, float beta, float* C, int ldc) override {
    cpu::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void add_inplace(float* y, const float* x, size_t n) override { cpu::add_inplace(y, x, n); }
  void axpy(float* y, const float* x, float a, size_t n) override { cpu::axpy(y, x, a, n); }
  void scale_inplace(float* x, float s, size_t n) override { cpu::scale_inplace(x, s, n); }
  double sum_squares(const float* x, size_t n) override { return cpu::sum_squares(x, n); }
  double dot(const float* a, const float* b, size_t n) override { return cpu::dot(a, b, n); }

  void embedding_forward(const int32_t* ids, int T, const float* table, int dim, float* out) override {
    cpu::embedding_forward(ids, T, table, dim, out);
  }
  void embedding_backward(const int32_t* ids, int T, const float* dout, int dim, float* dtable) override {
    cpu::embedding_backward(ids, T, dout, dim, dtable);
  }
  void rmsnorm_forward(const float* x, const float* w, int rows, int dim, float eps, float* y,
                       float* rstd) override {
    cpu::rmsnorm_forward(x, w, rows, dim, eps, y, rstd);
  }
  void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd,
                        int rows, int dim, float* dx, float* dw) override {
    cpu::rmsnorm_backward(dy, x, w, rstd, rows, dim, dx, dw);
  }
  void qk_norm_rope_forward(const float* qkv_in, const float* qw, const float* kw,
                            const int32_t* pos, const float* cs, const float* sn, int T, int Hq,
                            int Hkv, int hd, float eps, float* qkv_out, float* rstd) override {
    cpu::qk_norm_rope_forward(qkv_in, qw, kw, pos, cs, sn, T, Hq, Hkv, hd, eps, qkv_out, rstd);
  }
  void qk_norm_rope_backward(const float* dout, const float* qkv_in, const float* qw,
                             const float* kw, const int32_t* pos, const float* cs, const float* sn,
                             const float* rstd, int T, int Hq, int Hkv, int hd, float* dqkv_in,
                             float* dqw, float* dkw) override {
    cpu::qk_norm_rope_backward(dout, qkv_in, qw, kw, pos, cs, sn, rstd, T, Hq, Hkv, hd, dqkv_in,
                               dqw, dkw);
  }
  void swiglu_forward(const float* gu, int T, int I, float* h) override { cpu::swiglu_forward(gu, T, I, h); }
  void swiglu_backward(const float* dh, const float* gu, int T, int I, float* dgu) override {
    cpu::swiglu_backward(dh, gu, T, I, dgu);
  }
  void attention_forward(const float* qkv, const int32_t* cu, int ns, int maxl, int T, int Hq,
                         int Hkv, int hd, float scale, float* out, float* lse) override {
    cpu::attention_forward(qkv, cu, ns, maxl, T, Hq, Hkv, hd, scale, out, lse);
  }
  void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse,
                          const int32_t* cu, int ns, int maxl, int T, int Hq, int Hkv, int hd,
                          float scale, float* dqkv) override {
    cpu::attention_backward(dout, qkv, out, lse, cu, ns, maxl, T, Hq, Hkv, hd, scale, dqkv);
  }
  void kv_cache_write(const float* qkv, const int32_t* slots, const int32_t* pos, int T, int Hq,
                      int Hkv, int hd, int max_len, float* kc, float* vc) override {
    cpu::kv_cache_write(qkv, slots, pos, T, Hq, Hkv, hd, max_len, kc, vc);
  }
  void decode_attention(const float* qkv, const float* kc, const float* vc, const int32_t* slots,
                        const int32_t* lengths, int B, int Hq, int Hkv, int hd, int max_len,
                        float scale, float* out) override {
    cpu::decode_attention(qkv, kc, vc, slots, lengths, B, Hq, Hkv, hd, max_len, scale, out);
  }
  void token_logprobs(const float* logits, int N, int V, const int32_t* targets, float temp,
                      float* logp, float* entropy) override {
    cpu::token_logprobs(logits, N, V, targets, temp, logp, entropy);
  }
  void ppo_loss(const float* logits, int N, int V, const int32_t* targets, const float* old_logp,
                const float* ref_logp, const float* adv, const float* weight,
                const PpoLossParams& p, float* dlogits, float* stats) override {
    cpu::ppo_loss(logits, N, V, targets, old_logp, ref_logp, adv, weight, p, dlogits, stats);
  }
  void cross_entropy(const float* logits, int N, int V, const int32_t* targets,
                     const float* weight, float* dlogits, float* logp) override {
    cpu::cross_entropy(logits, N, V, targets, weight, dlogits, logp);
  }
  void sample(const float* logits, int B, int V, const SampleParams& p, const SampleRowKey* keys,
              int32_t* tokens, float* logp) override {
    cpu::sample(logits, B, V, p, keys, tokens, logp);
  }
  void adamw(float* params, const float* grads, float* m, float* v, size_t n, float lr, float b1,
             float b2, float eps, float wd, int step, float gs) override {
    cpu::adamw(params, grads, m, v, n, lr, b1, b2, eps, wd, step, gs);
  }
};

}  // namespace

Backend* cpu_backend() {
  static CpuBackend be;
  return &be;
}

}  // namespace troupe
