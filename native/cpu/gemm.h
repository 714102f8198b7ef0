// CPU fp32 GEMM extras. The GEMM itself, troupe::cpu::gemm, is declared in kernels.h; its result
// for C[i][j] depends only on row i of op(A), column j of op(B), alpha, beta and the old C[i][j]
// (never on M, N, the row's position in the batch or the thread count): see gemm_microkernel.h.
#pragma once
#include <cstddef>

namespace troupe::cpu {

// Weights reused by many calls (every decode step of a generation) can be packed once into the
// microkernel's B layout: panels of NR output columns, each [K, NR]. gemm_packed then computes
// C[M,N] = alpha * A[M,K] @ W^T + beta * C bit-identically to gemm(false, true, ..., W, ...)
// (the same packed floats reach the same microkernels), minus the per-call packing.
size_t packed_weight_floats(int N, int K);                         // size of the packed W [N, K]
void pack_weight(const float* W, int N, int K, int ldw, float* dst);  // dst: 64-byte aligned
void gemm_packed(int M, int N, int K, float alpha, const float* A, int lda, const float* W_packed,
                 float beta, float* C, int ldc);

// Best GFLOP/s of a square GEMM at the calling thread's thread count: the denominator the
// benchmarks use for MFU on this machine.
struct GemmPeak {
  double gflops;  // 2*size^3 / best time
  int threads;    // num_threads() during the measurement
  int size;       // M = N = K
};
GemmPeak measure_gemm_peak(double seconds = 0.5);

// Name of the microkernel compiled in ("avx512", "avx2" or "scalar"), for reports.
const char* gemm_isa();

}  // namespace troupe::cpu
