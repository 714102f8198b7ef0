// CPU stand-in for the slice of cuBLAS the backend uses (cublasGemmEx on fp32 data), for the
// emulator only. It implements the documented column-major contract independently of the
// backend's row-major mapping, so the emulated harness checks that mapping (all transposes,
// leading dimensions, alpha/beta) against the CPU backend. The FAST_TF32 / FAST_16BF compute
// types round the inputs to 10 / 7 mantissa bits first, as the tensor cores do.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

typedef struct emu_cublas* cublasHandle_t;
enum cublasStatus_t : int {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum cublasOperation_t : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasPointerMode_t : int { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
enum cudaDataType_t : int { CUDA_R_32F = 0 };
enum cublasComputeType_t : int {
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
enum cublasGemmAlgo_t : int { CUBLAS_GEMM_DEFAULT = -1 };

inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = reinterpret_cast<cublasHandle_t>(new char);
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete reinterpret_cast<char*>(h);
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetPointerMode(cublasHandle_t, cublasPointerMode_t) {
  return CUBLAS_STATUS_SUCCESS;
}

namespace emu {
// Keeps `bits` mantissa bits, rounding to nearest (ties away from zero for TF32, even for bf16).
inline float round_mantissa(float x, int bits, bool ties_even) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  const int drop = 23 - bits;
  const uint32_t half = 1u << (drop - 1), mask = (1u << drop) - 1;
  uint32_t r = u + half;
  if (ties_even && (u & mask) == half && !((u >> drop) & 1u)) r = u;  // exact tie, already even
  r &= ~mask;
  float y;
  std::memcpy(&y, &r, 4);
  return y;
}
}  // namespace emu

inline cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                   int m, int n, int k, const void* alpha, const void* A,
                                   cudaDataType_t, int lda, const void* B, cudaDataType_t, int ldb,
                                   const void* beta, void* C, cudaDataType_t, int ldc,
                                   cublasComputeType_t ct, cublasGemmAlgo_t) {
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
    return CUBLAS_STATUS_INVALID_VALUE;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const float* Am = static_cast<const float*>(A);
  const float* Bm = static_cast<const float*>(B);
  float* Cm = static_cast<float*>(C);
  auto rd = [ct](float x) {
    if (ct == CUBLAS_COMPUTE_32F_FAST_TF32) return emu::round_mantissa(x, 10, false);
    if (ct == CUBLAS_COMPUTE_32F_FAST_16BF) return emu::round_mantissa(x, 7, true);
    return x;
  };
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0.0;
      for (int l = 0; l < k; ++l) {
        const float av = ta == CUBLAS_OP_N ? Am[i + (size_t)l * lda] : Am[l + (size_t)i * lda];
        const float bv = tb == CUBLAS_OP_N ? Bm[l + (size_t)j * ldb] : Bm[j + (size_t)l * ldb];
        s += (double)rd(av) * rd(bv);
      }
      float& c = Cm[i + (size_t)j * ldc];
      c = b == 0.0f ? (float)(a * s) : (float)(a * s + (double)b * c);
    }
  return CUBLAS_STATUS_SUCCESS;
}
