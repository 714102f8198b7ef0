// Row-level RMSNorm pieces shared by rmsnorm.cpp (hidden rows) and qk_norm_rope.cpp (per-head
// rows), plus the fixed-order reduction of weight-gradient partials both of them need.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"
#include "vec16.h"

namespace troupe::cpu::norm {

using vec::f16v;

// rstd = 1/sqrt(mean(x^2) + eps). The mean of squares accumulates in double: it costs nothing
// next to the row's memory traffic and keeps rstd exact to float rounding even for rows of large
// dynamic range.
inline float rstd_of(const float* x, int dim, float eps) {
  const double ms = vec::sumsq_f64(x, static_cast<size_t>(dim)) / dim;
  return static_cast<float>(1.0 / std::sqrt(ms + static_cast<double>(eps)));
}

// y = (x * rstd) * w (HF's order: normalise in float, then scale by the weight); returns rstd.
inline float row_forward(const float* x, const float* w, int dim, float eps, float* y) {
  const float r = rstd_of(x, dim, eps);
  int i = 0;
  for (; i + vec::kLanes <= dim; i += vec::kLanes)
    vec::store(y + i, vec::load(x + i) * r * vec::load(w + i));
  for (; i < dim; ++i) y[i] = x[i] * r * w[i];
  return r;
}

// Backward of y = x * r * w for one row, r = (mean(x^2) + eps)^-1/2 given:
//   dx = r * (dy*w) - x * r^3 * sum(dy*w*x) / dim     (written, or added when kAccumulate)
//   dw_partial += dy * (x * r)
template <bool kAccumulate>
inline void row_backward(const float* dy, const float* x, const float* w, float r, int dim,
                         float* dx, float* dw_partial) {
  f16v acc = {};
  int i = 0;
  for (; i + vec::kLanes <= dim; i += vec::kLanes)
    acc += vec::load(dy + i) * vec::load(w + i) * vec::load(x + i);
  float dot = vec::hsum(acc);
  for (int j = i; j < dim; ++j) dot += dy[j] * w[j] * x[j];
  const float c = dot * r * r * r / static_cast<float>(dim);
  for (i = 0; i + vec::kLanes <= dim; i += vec::kLanes) {
    const f16v d = vec::load(dy + i), xv = vec::load(x + i);
    f16v g = r * (d * vec::load(w + i)) - c * xv;
    if (kAccumulate) g += vec::load(dx + i);
    vec::store(dx + i, g);
    vec::store(dw_partial + i, vec::load(dw_partial + i) + d * (xv * r));
  }
  for (; i < dim; ++i) {
    const float g = r * (dy[i] * w[i]) - c * x[i];
    dx[i] = kAccumulate ? dx[i] + g : g;
    dw_partial[i] += dy[i] * (x[i] * r);
  }
}

// Rows per weight-gradient partial: a function of the row count only (never of the thread
// count), at least min_rows so partials stay cheap, and at most 512 partials.
inline int partial_block_rows(int rows, int min_rows) {
  return std::max(min_rows, (rows + 511) / 512);
}

// dst[j] += sum over blocks b, in block order, of partial[b*dim + j], accumulated in double.
// Threads split the columns, so every column's sum has the same order for any thread count.
inline void add_partials(const float* partial, int blocks, int dim, float* dst) {
  parallel_for(static_cast<size_t>(dim), 64, [&](size_t c0, size_t c1) {
    std::vector<double> acc(c1 - c0, 0.0);
    for (int b = 0; b < blocks; ++b) {
      const float* p = partial + static_cast<size_t>(b) * dim;
      for (size_t c = c0; c < c1; ++c) acc[c - c0] += p[c];
    }
    for (size_t c = c0; c < c1; ++c) dst[c] += static_cast<float>(acc[c - c0]);
  });
}

}  // namespace troupe::cpu::norm
