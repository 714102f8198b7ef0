// GEMM: C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major (contract in ops/backend.h).
//
// cuBLAS is column-major. A row-major matrix X with leading dimension ld is, read column-major,
// X^T with the same ld. So the row-major product C = op(A) op(B) is computed as the column-major
// product C^T = op(B)^T op(A)^T: swap the operands (B first), swap M and N, and keep each
// operand's own transpose flag (B not transposed in row-major means B^T is exactly the
// column-major view, i.e. CUBLAS_OP_N).
//
// Without cuBLAS (or in BuiltinFp32 mode) a tiled shared-memory SGEMM runs instead: 64x64 output
// tiles, 16-deep K slices, 256 threads each owning a 4x4 strided micro-tile. It is exact fp32
// (products and sums in fp32, FMA contracted) and a few times slower than cuBLAS' fp32 path.
#include "kernels.cuh"

#if defined(TROUPE_HAVE_CUBLAS)
#include <cublas_v2.h>
#endif

#include <string>

namespace troupe::cuda {

namespace {

constexpr int kPrecFp32 = 0, kPrecTf32 = 1, kPrecBf16 = 2, kPrecBuiltin = 3;

constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4;  // 16x16 threads, 4x4 outputs each

// TA/TB: whether A/B are stored transposed. The tile loaders pick the index order that makes
// consecutive threads read consecutive addresses for each storage order.
template <bool TA, bool TB>
__global__ void __launch_bounds__(256) sgemm_tiled(int M, int N, int K, float alpha,
                                                   const float* __restrict__ A, int lda,
                                                   const float* __restrict__ B, int ldb,
                                                   float beta, float* __restrict__ C, int ldc) {
  // +1 padding: the column-wise stores of the non-transposed loaders hit distinct banks.
  __shared__ float As[BK][BM + 1];
  __shared__ float Bs[BK][BN + 1];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  float acc[TM][TN] = {};

  for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int r = 0; r < (BM * BK) / 256; ++r) {
      const int l = tid + 256 * r;
      int m, k;
      if (TA) { k = l / BM; m = l % BM; } else { m = l / BK; k = l % BK; }
      const int gm = m0 + m, gk = k0 + k;
      float v = 0.f;
      if (gm < M && gk < K) v = TA ? A[(size_t)gk * lda + gm] : A[(size_t)gm * lda + gk];
      As[k][m] = v;
    }
#pragma unroll
    for (int r = 0; r < (BN * BK) / 256; ++r) {
      const int l = tid + 256 * r;
      int n, k;
      if (TB) { n = l / BK; k = l % BK; } else { k = l / BN; n = l % BN; }
      const int gn = n0 + n, gk = k0 + k;
      float v = 0.f;
      if (gn < N && gk < K) v = TB ? B[(size_t)gn * ldb + gk] : B[(size_t)gk * ldb + gn];
      Bs[k][n] = v;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n >= N) continue;
      float* c = C + (size_t)m * ldc + n;
      *c = beta == 0.f ? alpha * acc[i][j] : fmaf(beta, *c, alpha * acc[i][j]);
    }
  }
}

// K == 0: C = beta * C, and beta == 0 must not read C (it may hold NaN).
__global__ void scale_matrix(int M, int N, float beta, float* C, int ldc) {
  const size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (i >= (size_t)M * N) return;
  float* c = C + (i / N) * (size_t)ldc + i % N;
  *c = beta == 0.f ? 0.f : beta * *c;
}

void builtin_gemm(Ctx& ctx, bool ta, bool tb, int M, int N, int K, float alpha, const float* A,
                  int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  dim3 grid(ceil_div(N, BN), ceil_div(M, BM));
  auto k = ta ? (tb ? sgemm_tiled<true, true> : sgemm_tiled<true, false>)
              : (tb ? sgemm_tiled<false, true> : sgemm_tiled<false, false>);
  require(grid.y <= 65535, "gemm: M too large for the built-in kernel's grid");
  k<<<grid, 256, 0, ctx.stream>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  TROUPE_LAUNCH_CHECK("sgemm_tiled");
}

#if defined(TROUPE_HAVE_CUBLAS)
const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}
#define TROUPE_CUBLAS_CHECK(expr)                                                        \
  do {                                                                                   \
    cublasStatus_t s_ = (expr);                                                          \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                     \
      throw std::runtime_error(std::string(#expr) + " failed: " + cublas_status_name(s_)); \
  } while (0)
#endif

}  // namespace

struct GemmEngine {
  int precision = kPrecTf32;
#if defined(TROUPE_HAVE_CUBLAS)
  cublasHandle_t handle = nullptr;
#endif
};

bool gemm_has_cublas() {
#if defined(TROUPE_HAVE_CUBLAS)
  return true;
#else
  return false;
#endif
}

GemmEngine* gemm_engine_create(Ctx& ctx) {
  auto* g = new GemmEngine();
#if defined(TROUPE_HAVE_CUBLAS)
  try {
    TROUPE_CUBLAS_CHECK(cublasCreate(&g->handle));
    TROUPE_CUBLAS_CHECK(cublasSetStream(g->handle, ctx.stream));
    // Scalars (alpha, beta) are host values.
    TROUPE_CUBLAS_CHECK(cublasSetPointerMode(g->handle, CUBLAS_POINTER_MODE_HOST));
  } catch (...) {
    if (g->handle) cublasDestroy(g->handle);
    delete g;
    throw;
  }
#else
  (void)ctx;
  g->precision = kPrecBuiltin;
#endif
  return g;
}

void gemm_engine_destroy(GemmEngine* g) {
  if (!g) return;
#if defined(TROUPE_HAVE_CUBLAS)
  if (g->handle) cublasDestroy(g->handle);
#endif
  delete g;
}

void gemm_set_precision(GemmEngine* g, int precision) {
  require(precision == kPrecFp32 || precision == kPrecTf32 || precision == kPrecBf16 ||
              precision == kPrecBuiltin,
          "gemm precision: unknown mode");
  g->precision = gemm_has_cublas() ? precision : kPrecBuiltin;
}
int gemm_get_precision(const GemmEngine* g) { return g->precision; }

void gemm(Ctx& ctx, GemmEngine* g, bool ta, bool tb, int M, int N, int K, float alpha,
          const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  require(M >= 0 && N >= 0 && K >= 0, "gemm: M, N, K must be >= 0");
  if (M == 0 || N == 0) return;
  require(ldc >= N, "gemm: ldc must be >= N");
  if (K == 0) {
    scale_matrix<<<ceil_div((size_t)M * N, 256), 256, 0, ctx.stream>>>(M, N, beta, C, ldc);
    TROUPE_LAUNCH_CHECK("scale_matrix");
    return;
  }
  require(lda >= (ta ? M : K), "gemm: lda too small for op(A)");
  require(ldb >= (tb ? K : N), "gemm: ldb too small for op(B)");
  require(A && B && C, "gemm: null matrix pointer");
#if defined(TROUPE_HAVE_CUBLAS)
  if (g->precision != kPrecBuiltin) {
    cublasComputeType_t ct = g->precision == kPrecBf16   ? CUBLAS_COMPUTE_32F_FAST_16BF
                             : g->precision == kPrecTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                         : CUBLAS_COMPUTE_32F;
    TROUPE_CUBLAS_CHECK(cublasGemmEx(g->handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                                     CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F,
                                     ldc, ct, CUBLAS_GEMM_DEFAULT));
    return;
  }
#else
  (void)g;
#endif
  builtin_gemm(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace troupe::cuda
