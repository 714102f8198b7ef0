// Vector arithmetic, reductions, embedding and SwiGLU (contracts in native/ops/backend.h).
// Element-wise ops split [0, n) over threads; every element is computed the same way whichever
// chunk it falls in, so results are bitwise independent of the thread count. Reductions sum
// fixed-size blocks and then the block partials in block order for the same reason.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernel_args.h"
#include "kernels.h"
#include "parallel.h"
#include "vec16.h"

namespace troupe::cpu {
namespace {

using vec::f16v;

// Elements per parallel chunk of a streaming op: large enough that the pool's hand-off (a few
// microseconds) is amortised, small enough that 2-16 threads all get work on hidden-size arrays.
constexpr size_t kStreamGrain = 1 << 14;
// Elements per partial of sum_squares / dot. Fixed, so the summation order is a property of n.
constexpr size_t kReduceBlock = 1 << 14;

template <typename BlockFn>
double blocked_sum(size_t n, BlockFn block_sum) {
  const size_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks <= 1) return n == 0 ? 0.0 : block_sum(0, n);
  std::vector<double> partial(blocks);
  parallel_for(blocks, 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; ++b) {
      const size_t begin = b * kReduceBlock;
      partial[b] = block_sum(begin, std::min(n, begin + kReduceBlock) - begin);
    }
  });
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

void check_buffers(const char* op, size_t n, const void* a, const void* b) {
  require(n == 0 || (a != nullptr && b != nullptr), op, "null buffer with n > 0");
}

}  // namespace

void add_inplace(float* y, const float* x, size_t n) {
  check_buffers("add_inplace", n, y, x);
  parallel_for(n, kStreamGrain, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void axpy(float* y, const float* x, float a, size_t n) {
  check_buffers("axpy", n, y, x);
  parallel_for(n, kStreamGrain, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += a * x[i];
  });
}

void scale_inplace(float* x, float s, size_t n) {
  check_buffers("scale_inplace", n, x, x);
  parallel_for(n, kStreamGrain, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] *= s;
  });
}

double sum_squares(const float* x, size_t n) {
  check_buffers("sum_squares", n, x, x);
  return blocked_sum(n, [&](size_t b, size_t len) { return vec::sumsq_f64(x + b, len); });
}

double dot(const float* a, const float* b, size_t n) {
  check_buffers("dot", n, a, b);
  return blocked_sum(n, [&](size_t i, size_t len) { return vec::dot_f64(a + i, b + i, len); });
}

// ---- embedding ----

void embedding_forward(const int32_t* ids, int T, const float* table, int dim, float* out) {
  const char* op = "embedding_forward";
  require(T >= 0, op, "T must be >= 0");
  require(dim > 0, op, "dim must be > 0");
  // The vocabulary size is not part of the contract, so only negative ids can be rejected.
  for (int t = 0; t < T; ++t) require(ids[t] >= 0, op, "ids must be >= 0");
  const size_t row = static_cast<size_t>(dim);
  parallel_for(static_cast<size_t>(T), std::max<size_t>(1, kStreamGrain / row),
               [&](size_t b, size_t e) {
                 for (size_t t = b; t < e; ++t)
                   std::memcpy(out + t * row, table + static_cast<size_t>(ids[t]) * row,
                               row * sizeof(float));
               });
}

void embedding_backward(const int32_t* ids, int T, const float* dout, int dim, float* dtable) {
  const char* op = "embedding_backward";
  require(T >= 0, op, "T must be >= 0");
  require(dim > 0, op, "dim must be > 0");
  for (int t = 0; t < T; ++t) require(ids[t] >= 0, op, "ids must be >= 0");
  const size_t row = static_cast<size_t>(dim);
  // Threads own disjoint column ranges (whole 64-byte lines, no false sharing) and each walks
  // the tokens in order, so a repeated id accumulates in the same order for any thread count.
  parallel_for(row, 16, [&](size_t c0, size_t c1) {
    for (int t = 0; t < T; ++t) {
      float* dst = dtable + static_cast<size_t>(ids[t]) * row;
      const float* src = dout + static_cast<size_t>(t) * row;
      for (size_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  });
}

// ---- SwiGLU ----
// PyTorch's silu is x / (1 + exp(-x)); the same form is used here so results track HF's.

namespace {

inline f16v silu_times(f16v g, f16v u) { return g / (1.0f + vec::vexp(-g)) * u; }

// dg = dh * u * silu'(g), du = dh * silu(g), with s = sigmoid(g), silu'(g) = s * (1 + g(1 - s)).
inline void swiglu_grad(f16v g, f16v u, f16v dh, f16v* dg, f16v* du) {
  const f16v s = 1.0f / (1.0f + vec::vexp(-g));
  *dg = dh * u * (s * (1.0f + g * (1.0f - s)));
  *du = dh * (g * s);
}

void check_swiglu(const char* op, int T, int I) {
  require(T >= 0, op, "T must be >= 0");
  require(I > 0, op, "I must be > 0");
}

}  // namespace

void swiglu_forward(const float* gu, int T, int I, float* h) {
  check_swiglu("swiglu_forward", T, I);
  const size_t n = static_cast<size_t>(I);
  parallel_for(static_cast<size_t>(T), std::max<size_t>(1, kStreamGrain / n),
               [&](size_t t0, size_t t1) {
                 for (size_t t = t0; t < t1; ++t) {
                   const float* g = gu + t * 2 * n;
                   const float* u = g + n;
                   float* out = h + t * n;
                   size_t i = 0;
                   for (; i + vec::kLanes <= n; i += vec::kLanes)
                     vec::store(out + i, silu_times(vec::load(g + i), vec::load(u + i)));
                   // The tail goes through the same vector code, zero-padded.
                   if (const int r = static_cast<int>(n - i))
                     vec::store_partial(out + i,
                                        silu_times(vec::load_partial(g + i, r),
                                                   vec::load_partial(u + i, r)),
                                        r);
                 }
               });
}

void swiglu_backward(const float* dh, const float* gu, int T, int I, float* dgu) {
  check_swiglu("swiglu_backward", T, I);
  const size_t n = static_cast<size_t>(I);
  parallel_for(static_cast<size_t>(T), std::max<size_t>(1, kStreamGrain / n),
               [&](size_t t0, size_t t1) {
                 for (size_t t = t0; t < t1; ++t) {
                   const float* g = gu + t * 2 * n;
                   const float* u = g + n;
                   const float* d = dh + t * n;
                   float* dg = dgu + t * 2 * n;
                   float* du = dg + n;
                   f16v a, b;
                   size_t i = 0;
                   for (; i + vec::kLanes <= n; i += vec::kLanes) {
                     swiglu_grad(vec::load(g + i), vec::load(u + i), vec::load(d + i), &a, &b);
                     vec::store(dg + i, a);
                     vec::store(du + i, b);
                   }
                   if (const int r = static_cast<int>(n - i)) {
                     swiglu_grad(vec::load_partial(g + i, r), vec::load_partial(u + i, r),
                                 vec::load_partial(d + i, r), &a, &b);
                     vec::store_partial(dg + i, a, r);
                     vec::store_partial(du + i, b, r);
                   }
                 }
               });
}

}  // namespace troupe::cpu
