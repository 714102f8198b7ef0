// CPU fp32 GEMM extras. The GEMM itself, troupe::cpu::gemm, is declared in kernels.h; its result
// for C[i][j] depends only on row i of op(A), column j of op(B), alpha, beta and the old C[i][j]
// (never on M, N, the row's position in the batch or the thread count): see gemm_microkernel.h.
#pragma once

namespace troupe::cpu {

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
