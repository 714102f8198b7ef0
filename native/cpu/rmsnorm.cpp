// RMSNorm over hidden rows (contract in native/ops/backend.h), as Qwen3RMSNorm computes it.
#include <algorithm>
#include <vector>

#include "kernel_args.h"
#include "kernels.h"
#include "norm_common.h"
#include "parallel.h"

namespace troupe::cpu {
namespace {

void check_shape(const char* op, int rows, int dim) {
  require(rows >= 0, op, "rows must be >= 0");
  require(dim > 0, op, "dim must be > 0");
}

// Rows per parallel chunk: about 16K elements, so short rows do not pay a hand-off each.
size_t row_grain(int dim) { return std::max<size_t>(1, (1u << 14) / static_cast<size_t>(dim)); }

}  // namespace

void rmsnorm_forward(const float* x, const float* w, int rows, int dim, float eps, float* y,
                     float* rstd) {
  check_shape("rmsnorm_forward", rows, dim);
  require(eps >= 0.0f, "rmsnorm_forward", "eps must be >= 0");
  const size_t d = static_cast<size_t>(dim);
  parallel_for(static_cast<size_t>(rows), row_grain(dim), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) rstd[r] = norm::row_forward(x + r * d, w, dim, eps, y + r * d);
  });
}

void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd,
                      int rows, int dim, float* dx, float* dw) {
  check_shape("rmsnorm_backward", rows, dim);
  if (rows == 0) return;
  const size_t d = static_cast<size_t>(dim);
  // dw sums over all rows: each fixed block of rows writes its own partial (rows in order), and
  // the partials are added in block order, so the sum is independent of the thread count.
  const int block_rows = norm::partial_block_rows(rows, 32);
  const int blocks = (rows + block_rows - 1) / block_rows;
  std::vector<float> partial(static_cast<size_t>(blocks) * d, 0.0f);
  parallel_for(static_cast<size_t>(blocks), 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; ++b) {
      const size_t r_end = std::min<size_t>(rows, (b + 1) * block_rows);
      for (size_t r = b * block_rows; r < r_end; ++r)
        norm::row_backward<true>(dy + r * d, x + r * d, w, rstd[r], dim, dx + r * d,
                                 partial.data() + b * d);
    }
  });
  norm::add_partials(partial.data(), blocks, dim, dw);
}

}  // namespace troupe::cpu
