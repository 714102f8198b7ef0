// The CUDA implementation of the op interface (native/ops/backend.h). Device memory comes from
// cudaMalloc (never managed memory); every op is issued on the backend's one stream, so ops run in
// call order and host-visible results (download, sum_squares, dot, sample) synchronise that stream.
//
// Thread safety: several Piscina worker threads may drive the same backend. Every op takes the
// backend's mutex while it enqueues work (launches are asynchronous, so this is cheap); that keeps
// the shared scratch buffer and the cuBLAS handle consistent.
#pragma once
#include <string>

#include "ops/backend.h"

namespace troupe {

// Process-wide backend for one device (created on first use). Throws std::runtime_error when the
// device cannot be opened.
Backend* cuda_backend(int device = 0);

// True when a CUDA device can be used; otherwise false with the reason in *why (may be null).
bool cuda_available(std::string* why);

// How the CUDA backend's GEMM computes. All modes accumulate in fp32.
//  Fp32:        cuBLAS with full fp32 products (relative error ~1e-6 of the dot-product scale).
//  Tf32:        cuBLAS on tensor cores with inputs rounded to TF32 (10-bit mantissa); relative
//               error ~1e-3 of the dot-product scale. The default: several times faster than Fp32.
//  Bf16:        cuBLAS on tensor cores with inputs rounded to bf16 (7-bit mantissa); ~1e-2.
//  BuiltinFp32: the backend's own tiled shared-memory SGEMM (no cuBLAS); exact fp32 products.
// Without cuBLAS in the toolkit every mode runs BuiltinFp32.
enum class CudaGemmPrecision : int { Fp32 = 0, Tf32 = 1, Bf16 = 2, BuiltinFp32 = 3 };
void cuda_set_gemm_precision(CudaGemmPrecision p, int device = 0);
CudaGemmPrecision cuda_gemm_precision(int device = 0);
// Whether this build links cuBLAS.
bool cuda_has_cublas();

}  // namespace troupe
