// CPU fp32 GEMM, GotoBLAS/BLIS style: op(B) is packed a KC x NC block at a time (the transposes
// are absorbed by the packing), op(A) one MR x KC micro-panel at a time, and a register-blocked
// microkernel (gemm_microkernel.h) computes MR x NR tiles of C.
//
// Loop nest of one thread (innermost last):
//   jc over N in NC blocks
//     pc over K in KC blocks          pack B[pc:pc+KC, jc:jc+NC]   -> L2 (KC*NC*4 = 512 KiB)
//       ir over M in MR rows          pack A[ir:ir+MR, pc:pc+KC]   -> L1 (MR*KC*4 = 14 KiB)
//         jr over NC in NR columns    microkernel: A panel stays in L1, B panels stream from L2
// The first K block applies beta, later ones accumulate (beta = 1). KC is a constant, so the K
// blocks of C[i][j] are the same whatever the shape: one ingredient of the determinism rule.
//
// Threads: the output is split into one contiguous block of rows or of columns per thread, and
// each thread runs the loop nest above on its own block with its own thread_local buffers, so no
// barrier or shared packing is needed. The split direction is the one with the smaller estimated
// per-thread cost (thread_cost): tile rounding of each share, plus the packing every thread
// repeats for the operand that is not split.
#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "gemm_microkernel.h"
#include "kernels.h"
#include "parallel.h"

namespace troupe::cpu {
namespace {

using gemm_detail::Index;
using gemm_detail::MR;
using gemm_detail::NR;

// KC: the K extent of one packed block; fixed (see the determinism note above). 256 keeps the A
// micro-panel (MR*KC floats = 14 KiB) in L1 beside the streaming B panel, while the C tile is
// revisited only K/256 times. NC: 512 columns make the packed B block 512 KiB, half the 1 MiB L2
// of a Zen 4 core.
constexpr int KC = 256;
constexpr int NC = 512;

// Below this many multiply-adds a call runs on one thread: waking a helper costs microseconds.
constexpr double kParallelMinFma = 1 << 18;

// A 64-byte aligned float buffer that only grows, one per thread and role, so steady-state calls
// allocate nothing. Sizes: A panel MR*KC floats (14 KiB), B block KC*NC floats (512 KiB).
class PackBuffer {
 public:
  ~PackBuffer() { std::free(p_); }
  float* get(size_t n) {
    if (n > cap_) {
      std::free(p_);
      p_ = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      if (!p_) {
        cap_ = 0;
        throw std::bad_alloc();
      }
      cap_ = n;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};
thread_local PackBuffer t_pack_a;
thread_local PackBuffer t_pack_b;

using KernelFn = void (*)(int, const float*, const float*, float*, Index, float, float, int);

// kernels[r - 1][v - 1]: microkernel for r rows and v vectors of columns.
template <size_t... R>
constexpr auto make_kernel_table(std::index_sequence<R...>) {
  struct Table {
    KernelFn fn[sizeof...(R)][2];
  } t{{{&gemm_detail::microkernel<int(R) + 1, 1>, &gemm_detail::microkernel<int(R) + 1, 2>}...}};
  return t;
}
const auto kKernels = make_kernel_table(std::make_index_sequence<MR>{});

// Prefetches rows [0, rows) x floats [0, cols) of a row-major matrix toward L2.
void prefetch_l2_rows(const float* src, Index ld, int rows, int cols) {
#if defined(__GNUC__)
  const int bytes = cols * int(sizeof(float));
  for (int r = 0; r < rows; ++r) {
    const char* row = reinterpret_cast<const char*>(src + r * ld);
    for (int off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 0, 2);
    __builtin_prefetch(row + bytes - 1, 0, 2);  // the last line when the row is unaligned
  }
#else
  (void)src, (void)ld, (void)rows, (void)cols;
#endif
}

// One thread's GEMM on its block: the loop nest described at the top of the file. With B_packed
// (pack_weight's layout, starting at this block's first panel) the B packing is skipped and the
// microkernels read the prepacked panels: the same floats in the same order, so the same bits.
void gemm_block(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                Index lda, const float* B, Index ldb, float beta, float* C, Index ldc,
                const float* B_packed = nullptr) {
  float* pa = t_pack_a.get(size_t(MR) * KC);
  float* pb = B_packed ? nullptr : t_pack_b.get(size_t(KC) * ((std::min(N, NC) + NR - 1) / NR * NR));
  for (int jc = 0; jc < N; jc += NC) {
    const int nc = std::min(NC, N - jc);
    const int panels = (nc + NR - 1) / NR;
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = std::min(KC, K - pc);
      // Panel p of this block: kc x NR floats, from the pack buffer or the prepacked weight.
      auto panel = [&](int p) -> const float* {
        if (B_packed) return B_packed + (size_t(jc / NR + p) * K + pc) * NR;
        return pb + size_t(p) * kc * NR;
      };
      for (int p = 0; p < panels && !B_packed; ++p) {
        const int j = jc + p * NR, nr = std::min(NR, N - j);
        float* dst = pb + size_t(p) * kc * NR;
        if (trans_b)
          gemm_detail::pack_b_cols(B + j * ldb + pc, ldb, nr, kc, dst);
        else
          gemm_detail::pack_b_rows(B + pc * ldb + j, ldb, nr, kc, dst);
      }
      const float beta_k = pc == 0 ? beta : 1.0f;
      for (int ir = 0; ir < M; ir += MR) {
        const int mr = std::min(MR, M - ir);
        if (trans_a)
          gemm_detail::pack_a_cols(A + pc * lda + ir, lda, mr, kc, pa);
        else
          gemm_detail::pack_a_rows(A + ir * lda + pc, lda, mr, kc, pa);
        // A streams from L3 or memory in MR separate rows (or KC separate k-slices), more streams
        // than the hardware prefetcher follows well: fetch the next micro-panel's source into L2
        // while the microkernels below run.
        if (ir + MR < M) {
          const int mr_next = std::min(MR, M - ir - MR);
          if (trans_a)
            prefetch_l2_rows(A + pc * lda + ir + MR, lda, kc, mr_next);
          else
            prefetch_l2_rows(A + (ir + MR) * lda + pc, lda, mr_next, kc);
        }
        for (int p = 0; p < panels; ++p) {
          const int j = jc + p * NR, nr = std::min(NR, N - j);
          const int vecs = (nr + gemm_detail::VL - 1) / gemm_detail::VL;  // skip all-padding halves
          kKernels.fn[mr - 1][vecs - 1](kc, pa, panel(p), C + ir * ldc + j, ldc, alpha, beta_k,
                                        nr);
        }
      }
    }
  }
}

// Cycles per unit of K that one thread spends on an m x n block: microkernel FMAs on padded
// tiles (one vector FMA per cycle) plus packing at ~0.5 cycle per element, A being repacked for
// every NC block of columns and B (unless prepacked) once.
double thread_cost(int m, int n, bool b_prepacked) {
  const double n_pad = double((n + NR - 1) / NR * NR);
  return m * n_pad / gemm_detail::VL + 0.5 * (double(m) * ((n + NC - 1) / NC) + (b_prepacked ? 0.0 : n_pad));
}

// Runs block(i0, i1, j0, j1) on the threads, one contiguous block of C's rows or columns each:
// whichever split gives the smaller estimated cost per thread (tile rounding differs: 256 rows
// are 19 row tiles, split 10/9, while 128 columns are 4 column tiles, split 2/2). Column blocks
// start on NR boundaries and row blocks on MR boundaries.
template <class Block>
void run_split(int M, int N, int K, bool b_prepacked, const Block& block) {
  const double fmas = double(M) * N * K;
  const int nt = fmas < kParallelMinFma ? 1 : num_threads();
  const int units_m = (M + MR - 1) / MR, units_n = (N + NR - 1) / NR;
  bool split_n = N >= M;
  if (nt > 1) {
    const int rows = std::min(M, (units_m + nt - 1) / nt * MR);
    const int cols = std::min(N, (units_n + nt - 1) / nt * NR);
    const double cost_n = thread_cost(M, cols, b_prepacked), cost_m = thread_cost(rows, N, b_prepacked);
    split_n = cost_n < cost_m || (cost_n == cost_m && N >= M);
  }
  const int units = split_n ? units_n : units_m;
  run_on_threads(
      [&](int tid, int threads) {
        const int per = (units + threads - 1) / threads;
        const int u0 = std::min(units, tid * per), u1 = std::min(units, (tid + 1) * per);
        if (u0 >= u1) return;
        if (split_n)
          block(0, M, u0 * NR, std::min(N, u1 * NR));
        else
          block(u0 * MR, std::min(M, u1 * MR), 0, N);
      },
      std::min(nt, units));
}

void check_arg(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("gemm: ") + what);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
  check_arg(M >= 0, "M must be >= 0");
  check_arg(N >= 0, "N must be >= 0");
  check_arg(K >= 0, "K must be >= 0");
  check_arg(lda >= (trans_a ? M : K) && lda >= 0, "lda is smaller than the row length of A");
  check_arg(ldb >= (trans_b ? K : N) && ldb >= 0, "ldb is smaller than the row length of B");
  check_arg(ldc >= N, "ldc is smaller than N");
  if (M == 0 || N == 0) return;
  check_arg(C != nullptr, "C is null");
  if (K == 0) {  // op(A) @ op(B) is zero; same epilogue formula as the microkernels
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        float& c = C[Index(i) * ldc + j];
        c = std::fma(alpha, 0.0f, beta != 0.0f ? beta * c : 0.0f);
      }
    return;
  }
  check_arg(A != nullptr, "A is null");
  check_arg(B != nullptr, "B is null");

  run_split(M, N, K, false, [&](int i0, int i1, int j0, int j1) {
    const float* Ai = trans_a ? A + i0 : A + Index(i0) * lda;
    const float* Bj = trans_b ? B + Index(j0) * ldb : B + j0;
    gemm_block(trans_a, trans_b, i1 - i0, j1 - j0, K, alpha, Ai, lda, Bj, ldb, beta,
               C + Index(i0) * ldc + j0, ldc);
  });
}

size_t packed_weight_floats(int N, int K) {
  if (N <= 0 || K <= 0) return 0;
  return size_t((N + NR - 1) / NR) * NR * size_t(K);
}

void pack_weight(const float* W, int N, int K, int ldw, float* dst) {
  check_arg(N > 0 && K > 0, "pack_weight: N and K must be > 0");
  check_arg(ldw >= K, "pack_weight: ldw is smaller than K");
  check_arg(W != nullptr && dst != nullptr, "pack_weight: null pointer");
  const int panels = (N + NR - 1) / NR;
  // Panel p holds columns [p*NR, p*NR + NR) of W^T for all K, as consecutive KC blocks, each
  // exactly what gemm_block would pack for that (panel, K block).
  parallel_for(size_t(panels), 1, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      const int j = int(p) * NR, nr = std::min(NR, N - j);
      for (int pc = 0; pc < K; pc += KC)
        gemm_detail::pack_b_cols(W + Index(j) * ldw + pc, ldw, nr, std::min(KC, K - pc),
                                 dst + (p * size_t(K) + pc) * NR);
    }
  });
}

void gemm_packed(int M, int N, int K, float alpha, const float* A, int lda, const float* W_packed,
                 float beta, float* C, int ldc) {
  check_arg(M >= 0 && N > 0 && K > 0, "gemm_packed: M must be >= 0, N and K > 0");
  check_arg(lda >= K, "gemm_packed: lda is smaller than K");
  check_arg(ldc >= N, "gemm_packed: ldc is smaller than N");
  if (M == 0) return;
  check_arg(A != nullptr && W_packed != nullptr && C != nullptr, "gemm_packed: null pointer");
  run_split(M, N, K, true, [&](int i0, int i1, int j0, int j1) {
    gemm_block(false, true, i1 - i0, j1 - j0, K, alpha, A + Index(i0) * lda, lda, nullptr, 0,
               beta, C + Index(i0) * ldc + j0, ldc, W_packed + size_t(j0 / NR) * K * NR);
  });
}

const char* gemm_isa() { return gemm_detail::kIsaName; }

GemmPeak measure_gemm_peak(double seconds) {
  // 1024^3: packing is ~1% of the work, and one call takes ~10-20 ms, so the best of several
  // calls still finds an undisturbed run on a machine shared with other work.
  constexpr int n = 1024;
  std::vector<float> a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = float(int(i % 7) - 3) * 0.25f;
    b[i] = float(int(i % 5) - 2) * 0.5f;
  }
  using clock = std::chrono::steady_clock;
  gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
  double best = 1e30;
  const auto end = clock::now() + std::chrono::duration<double>(seconds);
  for (int rep = 0; rep < 2 || clock::now() < end; ++rep) {
    const auto t0 = clock::now();
    gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
  }
  return GemmPeak{2.0 * n * n * double(n) / best * 1e-9, num_threads(), n};
}

}  // namespace troupe::cpu
