#include "cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#include "gemm.h"
#include "kernels.h"

namespace troupe {
namespace {

// Host memory for the CPU backend: 64-byte aligned (AVX-512 loads). Large blocks are recycled:
// every generate call allocates and frees a KV cache and activations of the same sizes as the
// call before, and a fresh multi-megabyte block from the OS costs a page fault and a page zeroing
// per 4 KiB (a few percent of a sampling call). Freed blocks of at least kMinCached bytes are
// kept, up to kMaxCachedBytes in all (oldest dropped first), and reused for a request of the
// same rounded size. The per-policy memory accounting (core/memory.h) counts live buffers only.
class BlockCache {
 public:
  static constexpr size_t kMinCached = size_t(1) << 20;
  static constexpr size_t kMaxCachedBytes = size_t(512) << 20;

  void* allocate(size_t bytes) {
    const size_t n = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    if (n >= kMinCached) {
      std::lock_guard lk(mu_);
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->first == n) {
          void* p = it->second;
          free_.erase(it);
          cached_ -= n;
          live_[p] = n;
          return p;
        }
    }
    void* p = std::aligned_alloc(64, n);
    if (!p) throw std::bad_alloc();
    if (n >= kMinCached) {
      std::lock_guard lk(mu_);
      live_[p] = n;
    }
    return p;
  }
  void release(void* p) {
    if (!p) return;
    {
      std::lock_guard lk(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        const size_t n = it->second;
        live_.erase(it);
        if (n <= kMaxCachedBytes) {
          free_.emplace_back(n, p);
          cached_ += n;
          while (cached_ > kMaxCachedBytes) {  // drop the oldest
            cached_ -= free_.front().first;
            std::free(free_.front().second);
            free_.pop_front();
          }
          return;
        }
      }
    }
    std::free(p);
  }

 private:
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;    // large blocks handed out
  std::deque<std::pair<size_t, void*>> free_;  // large blocks kept for reuse, oldest first
  size_t cached_ = 0;
};

// Never destroyed: buffers owned by other static objects may be freed during exit, after any
// function-local static would be gone; the OS reclaims the cached blocks.
BlockCache& blocks() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  void* malloc_bytes(size_t bytes) override {
    void* p = blocks().allocate(bytes);
    // TROUPE_POISON_ALLOCATIONS=1 (tests) fills every new buffer with NaN, so code that reads
    // memory it never wrote (fresh pages are zero, recycled blocks are not) fails loudly.
    static const bool poison = [] {
      const char* v = std::getenv("TROUPE_POISON_ALLOCATIONS");
      return v && *v && *v != '0';
    }();
    if (poison) {
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::fill_n(static_cast<float*>(p), bytes / sizeof(float), nan);
    }
    return p;
  }
  void free_bytes(void* p) override { blocks().release(p); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy(void* dst, const void* src, size_t n) override { std::memmove(dst, src, n); }
  void zero(void* p, size_t n) override { std::memset(p, 0, n); }
  void synchronize() override {}

  void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
            const float* B, int ldb, float beta, float* C, int ldc) override {
    cpu::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  size_t packed_weight_bytes(int N, int K) override {
    return cpu::packed_weight_floats(N, K) * sizeof(float);
  }
  void pack_weight(const float* W, int N, int K, void* packed) override {
    cpu::pack_weight(W, N, K, K, static_cast<float*>(packed));
  }
  void gemm_packed_weight(int M, int N, int K, float alpha, const float* A, int lda,
                          const void* packed, float beta, float* C, int ldc) override {
    cpu::gemm_packed(M, N, K, alpha, A, lda, static_cast<const float*>(packed), beta, C, ldc);
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
