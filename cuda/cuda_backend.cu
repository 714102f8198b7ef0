// CudaBackend: device memory, transfers on the backend's stream, and forwarding of every op to
// the launchers in kernels.cuh. One backend (and one stream) per device, created on first use.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "kernels.cuh"

namespace troupe {
namespace {

using cuda::Ctx;

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) {
    int count = 0;
    TROUPE_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
      throw std::invalid_argument("cuda_backend: device " + std::to_string(device) +
                                  " out of range (" + std::to_string(count) + " devices)");
    ctx_.device = device;
    TROUPE_CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop{};
    TROUPE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    ctx_.num_sms = prop.multiProcessorCount;
    ctx_.smem_optin = prop.sharedMemPerBlockOptin;
    // A non-blocking stream: legacy default-stream work elsewhere in the process (another
    // library) does not serialise against ours.
    TROUPE_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
    gemm_ = cuda::gemm_engine_create(ctx_);
    name_ = std::string("cuda:") + std::to_string(device) + " (" + prop.name + ")";
  }
  ~CudaBackend() override {
    // Process-wide singletons die at exit, possibly after the CUDA runtime shut down: ignore
    // errors here rather than throw from a destructor.
    cudaSetDevice(ctx_.device);
    cuda::gemm_engine_destroy(gemm_);
    if (ctx_.scratch_ptr) cudaFree(ctx_.scratch_ptr);
    cudaStreamDestroy(ctx_.stream);
  }

  const char* name() const override { return name_.c_str(); }

  void set_precision(CudaGemmPrecision p) {
    Lock l(this);
    cuda::gemm_set_precision(gemm_, static_cast<int>(p));
  }
  CudaGemmPrecision precision() {
    Lock l(this);
    return static_cast<CudaGemmPrecision>(cuda::gemm_get_precision(gemm_));
  }

  // ---- memory ----
  void* malloc_bytes(size_t bytes) override {
    Lock l(this);
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error so the next call does not report it again
      throw std::bad_alloc();
    }
    TROUPE_CUDA_CHECK(e);
    return p;
  }
  void free_bytes(void* p) override {
    if (!p) return;
    Lock l(this);
    TROUPE_CUDA_CHECK(cudaFree(p));  // implicitly waits for work still using p
  }
  void upload(void* dst, const void* src_host, size_t bytes) override {
    if (!bytes) return;
    Lock l(this);
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    // From pageable memory the copy is staged before cudaMemcpyAsync returns, so the caller may
    // reuse src_host at once. Page-locked memory is read later by DMA: wait in that case.
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, src_host) != cudaSuccess) {
      cudaGetLastError();
      a.type = cudaMemoryTypeUnregistered;
    }
    if (a.type != cudaMemoryTypeUnregistered) TROUPE_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }
  void download(void* dst_host, const void* src, size_t bytes) override {
    if (!bytes) return;
    Lock l(this);
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (!bytes || dst == src) return;
    Lock l(this);
    TROUPE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream));
  }
  void zero(void* p, size_t bytes) override {
    if (!bytes) return;
    Lock l(this);
    TROUPE_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx_.stream));
  }
  void synchronize() override {
    Lock l(this);
    TROUPE_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
  }

  // ---- dense math ----
  void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
            const float* B, int ldb, float beta, float* C, int ldc) override {
    Lock l(this);
    cuda::gemm(ctx_, gemm_, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void add_inplace(float* y, const float* x, size_t n) override {
    Lock l(this);
    cuda::add_inplace(ctx_, y, x, n);
  }
  void axpy(float* y, const float* x, float a, size_t n) override {
    Lock l(this);
    cuda::axpy(ctx_, y, x, a, n);
  }
  void scale_inplace(float* x, float s, size_t n) override {
    Lock l(this);
    cuda::scale_inplace(ctx_, x, s, n);
  }
  double sum_squares(const float* x, size_t n) override {
    Lock l(this);
    return cuda::sum_squares(ctx_, x, n);
  }
  double dot(const float* a, const float* b, size_t n) override {
    Lock l(this);
    return cuda::dot(ctx_, a, b, n);
  }

  // ---- layers ----
  void embedding_forward(const int32_t* ids, int T, const float* table, int dim,
                         float* out) override {
    Lock l(this);
    cuda::embedding_forward(ctx_, ids, T, table, dim, out);
  }
  void embedding_backward(const int32_t* ids, int T, const float* dout, int dim,
                          float* dtable) override {
    Lock l(this);
    cuda::embedding_backward(ctx_, ids, T, dout, dim, dtable);
  }
  void rmsnorm_forward(const float* x, const float* w, int rows, int dim, float eps, float* y,
                       float* rstd) override {
    Lock l(this);
    cuda::rmsnorm_forward(ctx_, x, w, rows, dim, eps, y, rstd);
  }
  void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd,
                        int rows, int dim, float* dx, float* dw) override {
    Lock l(this);
    cuda::rmsnorm_backward(ctx_, dy, x, w, rstd, rows, dim, dx, dw);
  }
  void qk_norm_rope_forward(const float* qkv_in, const float* qw, const float* kw,
                            const int32_t* pos, const float* cs, const float* sn, int T, int Hq,
                            int Hkv, int hd, float eps, float* qkv_out, float* rstd) override {
    Lock l(this);
    cuda::qk_norm_rope_forward(ctx_, qkv_in, qw, kw, pos, cs, sn, T, Hq, Hkv, hd, eps, qkv_out,
                               rstd);
  }
  void qk_norm_rope_backward(const float* dout, const float* qkv_in, const float* qw,
                             const float* kw, const int32_t* pos, const float* cs, const float* sn,
                             const float* rstd, int T, int Hq, int Hkv, int hd, float* dqkv_in,
                             float* dqw, float* dkw) override {
    Lock l(this);
    cuda::qk_norm_rope_backward(ctx_, dout, qkv_in, qw, kw, pos, cs, sn, rstd, T, Hq, Hkv, hd,
                                dqkv_in, dqw, dkw);
  }
  void swiglu_forward(const float* gu, int T, int I, float* h) override {
    Lock l(this);
    cuda::swiglu_forward(ctx_, gu, T, I, h);
  }
  void swiglu_backward(const float* dh, const float* gu, int T, int I, float* dgu) override {
    Lock l(this);
    cuda::swiglu_backward(ctx_, dh, gu, T, I, dgu);
  }
  void attention_forward(const float* qkv, const int32_t* cu, int ns, int maxl, int T, int Hq,
                         int Hkv, int hd, float scale, float* out, float* lse) override {
    Lock l(this);
    cuda::attention_forward(ctx_, qkv, cu, ns, maxl, T, Hq, Hkv, hd, scale, out, lse);
  }
  void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse,
                          const int32_t* cu, int ns, int maxl, int T, int Hq, int Hkv, int hd,
                          float scale, float* dqkv) override {
    Lock l(this);
    cuda::attention_backward(ctx_, dout, qkv, out, lse, cu, ns, maxl, T, Hq, Hkv, hd, scale, dqkv);
  }
  void kv_cache_write(const float* qkv, const int32_t* slots, const int32_t* pos, int T, int Hq,
                      int Hkv, int hd, int max_len, float* kc, float* vc) override {
    Lock l(this);
    cuda::kv_cache_write(ctx_, qkv, slots, pos, T, Hq, Hkv, hd, max_len, kc, vc);
  }
  void decode_attention(const float* qkv, const float* kc, const float* vc, const int32_t* slots,
                        const int32_t* lengths, int B, int Hq, int Hkv, int hd, int max_len,
                        float scale, float* out) override {
    Lock l(this);
    cuda::decode_attention(ctx_, qkv, kc, vc, slots, lengths, B, Hq, Hkv, hd, max_len, scale, out);
  }

  // ---- heads ----
  void token_logprobs(const float* logits, int N, int V, const int32_t* targets, float temp,
                      float* logp, float* entropy) override {
    Lock l(this);
    cuda::token_logprobs(ctx_, logits, N, V, targets, temp, logp, entropy);
  }
  void ppo_loss(const float* logits, int N, int V, const int32_t* targets, const float* old_logp,
                const float* ref_logp, const float* adv, const float* weight,
                const PpoLossParams& p, float* dlogits, float* stats) override {
    Lock l(this);
    cuda::ppo_loss(ctx_, logits, N, V, targets, old_logp, ref_logp, adv, weight, p, dlogits, stats);
  }
  void cross_entropy(const float* logits, int N, int V, const int32_t* targets,
                     const float* weight, float* dlogits, float* logp) override {
    Lock l(this);
    cuda::cross_entropy(ctx_, logits, N, V, targets, weight, dlogits, logp);
  }
  void sample(const float* logits, int B, int V, const SampleParams& p, const SampleRowKey* keys,
              int32_t* tokens, float* logp) override {
    Lock l(this);
    cuda::sample(ctx_, logits, B, V, p, keys, tokens, logp);
  }

  // ---- optimizer ----
  void adamw(float* params, const float* grads, float* m, float* v, size_t n, float lr, float b1,
             float b2, float eps, float wd, int step, float gs) override {
    Lock l(this);
    cuda::adamw(ctx_, params, grads, m, v, n, lr, b1, b2, eps, wd, step, gs);
  }

 private:
  // Holds the backend mutex and makes the backend's device current for this thread (the
  // current device is per host thread, and callers may come from any thread).
  struct Lock {
    explicit Lock(CudaBackend* b) : g(b->mu_) { TROUPE_CUDA_CHECK(cudaSetDevice(b->ctx_.device)); }
    std::lock_guard<std::recursive_mutex> g;
  };

  std::recursive_mutex mu_;
  Ctx ctx_;
  cuda::GemmEngine* gemm_ = nullptr;
  std::string name_;
};

constexpr int kMaxDevices = 64;
std::mutex g_create_mu;
CudaBackend* g_backends[kMaxDevices] = {};

CudaBackend* backend_for(int device) {
  if (device < 0 || device >= kMaxDevices)
    throw std::invalid_argument("cuda_backend: device " + std::to_string(device) + " out of range");
  std::lock_guard<std::mutex> g(g_create_mu);
  // Intentionally leaked: destroying at static-destruction time races the CUDA runtime's own
  // teardown, and the driver reclaims everything at process exit anyway.
  if (!g_backends[device]) g_backends[device] = new CudaBackend(device);
  return g_backends[device];
}

}  // namespace

Backend* cuda_backend(int device) { return backend_for(device); }

bool cuda_available(std::string* why) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(e);
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  if (why) why->clear();
  return true;
}

void cuda_set_gemm_precision(CudaGemmPrecision p, int device) { backend_for(device)->set_precision(p); }
CudaGemmPrecision cuda_gemm_precision(int device) { return backend_for(device)->precision(); }
bool cuda_has_cublas() { return cuda::gemm_has_cublas(); }

}  // namespace troupe
