// RMSNorm forward and backward over rows of length dim.
//
// Backward's dw is a sum over all rows. Without float atomics: a fixed number of blocks (a
// function of `rows` only, not of the device) each take a fixed, strided set of rows and keep a
// per-column partial (each thread owns its columns, so no races); a second kernel adds the
// partials in block order. Same inputs, same bits, on every run and every GPU.
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

int threads_for(int dim) { return dim <= 256 ? 64 : dim <= 1024 ? 128 : 256; }

__global__ void rmsnorm_fwd_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                   int rows, int dim, float eps, float* __restrict__ y,
                                   float* __restrict__ rstd) {
  __shared__ double red[32];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + (size_t)r * dim;
    // Mean of squares in double, as the CPU kernel: rstd is then exact to float rounding.
    double ss = 0.0;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) ss += (double)xr[c] * xr[c];
    ss = block_sum(ss, red);
    const float rs = (float)(1.0 / sqrt(ss / dim + (double)eps));
    float* yr = y + (size_t)r * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) yr[c] = xr[c] * rs * w[c];
    if (threadIdx.x == 0 && rstd) rstd[r] = rs;
  }
}

// dx += rs * (g - n * mean(g * n)), with g = dy * w and n = x * rs;
// partial_dw[block][c] = sum over this block's rows of dy * n.
__global__ void rmsnorm_bwd_kernel(const float* __restrict__ dy, const float* __restrict__ x,
                                   const float* __restrict__ w, const float* __restrict__ rstd,
                                   int rows, int dim, float* __restrict__ dx,
                                   float* __restrict__ partial_dw, bool smem_acc) {
  extern __shared__ float acc_smem[];
  __shared__ float red[32];
  float* acc = smem_acc ? acc_smem : partial_dw + (size_t)blockIdx.x * dim;
  for (int c = threadIdx.x; c < dim; c += blockDim.x) acc[c] = 0.f;
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* dyr = dy + (size_t)r * dim;
    const float* xr = x + (size_t)r * dim;
    const float rs = rstd[r];
    float s = 0.f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) s = fmaf(dyr[c] * w[c], xr[c] * rs, s);
    const float mean_gn = block_sum(s, red) / dim;
    float* dxr = dx + (size_t)r * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
      const float n = xr[c] * rs, g = dyr[c] * w[c];
      dxr[c] += rs * (g - n * mean_gn);
      acc[c] = fmaf(dyr[c], n, acc[c]);
    }
  }
  if (smem_acc)
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
      partial_dw[(size_t)blockIdx.x * dim + c] = acc[c];
}

__global__ void sum_partials_kernel(const float* __restrict__ partial, int nparts, int dim,
                                    float* __restrict__ dw) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  float s = 0.f;
  for (int b = 0; b < nparts; ++b) s += partial[(size_t)b * dim + c];
  dw[c] += s;
}

}  // namespace

void rmsnorm_forward(Ctx& ctx, const float* x, const float* w, int rows, int dim, float eps,
                     float* y, float* rstd) {
  require(rows >= 0 && dim > 0, "rmsnorm_forward: rows must be >= 0 and dim > 0");
  if (!rows) return;
  unsigned grid = rows < 65535 ? rows : 65535;
  rmsnorm_fwd_kernel<<<grid, threads_for(dim), 0, ctx.stream>>>(x, w, rows, dim, eps, y, rstd);
  TROUPE_LAUNCH_CHECK("rmsnorm_fwd_kernel");
}

void rmsnorm_backward(Ctx& ctx, const float* dy, const float* x, const float* w,
                      const float* rstd, int rows, int dim, float* dx, float* dw) {
  require(rows >= 0 && dim > 0, "rmsnorm_backward: rows must be >= 0 and dim > 0");
  if (!rows) return;
  const int nparts = rows < 1024 ? rows : 1024;  // depends on rows only: device-independent bits
  float* partial = static_cast<float*>(ctx.scratch((size_t)nparts * dim * sizeof(float)));
  const size_t smem = (size_t)dim * sizeof(float);
  const bool smem_acc = smem <= 48 * 1024;
  rmsnorm_bwd_kernel<<<nparts, threads_for(dim), smem_acc ? smem : 0, ctx.stream>>>(
      dy, x, w, rstd, rows, dim, dx, partial, smem_acc);
  TROUPE_LAUNCH_CHECK("rmsnorm_bwd_kernel");
  sum_partials_kernel<<<ceil_div(dim, 256), 256, 0, ctx.stream>>>(partial, nparts, dim, dw);
  TROUPE_LAUNCH_CHECK("sum_partials_kernel");
}

}  // namespace troupe::cuda
