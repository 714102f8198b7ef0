// Vector arithmetic, the deterministic double-precision reductions, and SwiGLU.
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

constexpr int kThreads = 256;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Grid size for a grid-stride loop over n items: enough blocks to fill the device a few times
// over, never more than the work needs.
unsigned grid_for(const Ctx& ctx, size_t n) {
  size_t want = (n + kThreads - 1) / kThreads;
  size_t cap = (size_t)ctx.num_sms * 8;
  return static_cast<unsigned>(want < cap ? (want ? want : 1) : cap);
}

// y = a*y + b*x in one kernel shape: add (a=1,b=1), axpy (a=1,b=alpha), scale (x=null, b=0).
// The float4 path runs when every pointer is 16-byte aligned; the scalar tail covers n % 4.
template <bool HasX>
__global__ void axpby_vec4(float4* __restrict__ y, const float4* __restrict__ x, float a, float b,
                           size_t n4) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
       i += (size_t)gridDim.x * blockDim.x) {
    float4 v = y[i];
    if (HasX) {
      float4 u = x[i];
      v.x = a * v.x + b * u.x; v.y = a * v.y + b * u.y;
      v.z = a * v.z + b * u.z; v.w = a * v.w + b * u.w;
    } else {
      v.x *= a; v.y *= a; v.z *= a; v.w *= a;
    }
    y[i] = v;
  }
}
template <bool HasX>
__global__ void axpby_scalar(float* __restrict__ y, const float* __restrict__ x, float a, float b,
                             size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] = HasX ? a * y[i] + b * x[i] : a * y[i];
}

// a == 1 gives y + b*x exactly (1*y is exact), matching the CPU's y += b*x.
void axpby(Ctx& ctx, float* y, const float* x, float a, float b, size_t n) {
  if (n == 0) return;
  require(y != nullptr, "elementwise: null y");
  const bool vec = aligned16(y) && (!x || aligned16(x));
  size_t n4 = vec ? n / 4 : 0, done = n4 * 4;
  if (n4) {
    if (x) axpby_vec4<true><<<grid_for(ctx, n4), kThreads, 0, ctx.stream>>>(
        reinterpret_cast<float4*>(y), reinterpret_cast<const float4*>(x), a, b, n4);
    else axpby_vec4<false><<<grid_for(ctx, n4), kThreads, 0, ctx.stream>>>(
        reinterpret_cast<float4*>(y), nullptr, a, b, n4);
    TROUPE_LAUNCH_CHECK("axpby_vec4");
  }
  if (done < n) {
    size_t rest = n - done;
    if (x) axpby_scalar<true><<<grid_for(ctx, rest), kThreads, 0, ctx.stream>>>(y + done, x + done, a, b, rest);
    else axpby_scalar<false><<<grid_for(ctx, rest), kThreads, 0, ctx.stream>>>(y + done, nullptr, a, b, rest);
    TROUPE_LAUNCH_CHECK("axpby_scalar");
  }
}

// ---- reductions: stage 1 writes one double per block, stage 2 sums those in one block. The
// grid size depends only on n, and each block's tree depends only on blockDim, so the result is
// bit-identical across runs. Products of two floats are exact in double.
constexpr int kRedBlocks = 1024;

template <bool Dot>
__global__ void reduce_stage1(const float* __restrict__ a, const float* __restrict__ b, size_t n,
                              double* __restrict__ partial) {
  __shared__ double red[32];
  double acc = 0.0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    double u = a[i];
    acc += u * (Dot ? (double)b[i] : u);
  }
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void reduce_stage2(const double* __restrict__ partial, int count,
                              double* __restrict__ out) {
  __shared__ double red[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) *out = acc;
}

double reduce(Ctx& ctx, const float* a, const float* b, size_t n) {
  if (n == 0) return 0.0;
  size_t want = (n + kThreads * 4 - 1) / (kThreads * 4);  // >= 4 items per thread
  int blocks = static_cast<int>(want < kRedBlocks ? want : kRedBlocks);
  double* ws = static_cast<double*>(ctx.scratch((blocks + 1) * sizeof(double)));
  if (b) reduce_stage1<true><<<blocks, kThreads, 0, ctx.stream>>>(a, b, n, ws + 1);
  else reduce_stage1<false><<<blocks, kThreads, 0, ctx.stream>>>(a, nullptr, n, ws + 1);
  TROUPE_LAUNCH_CHECK("reduce_stage1");
  reduce_stage2<<<1, 1024, 0, ctx.stream>>>(ws + 1, blocks, ws);
  TROUPE_LAUNCH_CHECK("reduce_stage2");
  double r = 0.0;
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(&r, ws, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream));
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return r;
}

// ---- SwiGLU: gu row t is [gate(I) | up(I)].
__global__ void swiglu_fwd_kernel(const float* __restrict__ gu, int T, int I,
                                  float* __restrict__ h) {
  const size_t total = (size_t)T * I;
  for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total;
       k += (size_t)gridDim.x * blockDim.x) {
    const size_t t = k / I, i = k % I;
    const float g = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i];
    h[k] = g / (1.f + expf(-g)) * u;
  }
}

__global__ void swiglu_bwd_kernel(const float* __restrict__ dh, const float* __restrict__ gu,
                                  int T, int I, float* __restrict__ dgu) {
  const size_t total = (size_t)T * I;
  for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < total;
       k += (size_t)gridDim.x * blockDim.x) {
    const size_t t = k / I, i = k % I;
    const float g = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i], d = dh[k];
    const float s = 1.f / (1.f + expf(-g));
    // d silu(g)/dg = s * (1 + g * (1 - s))
    dgu[t * 2 * I + i] = d * u * s * (1.f + g * (1.f - s));
    dgu[t * 2 * I + I + i] = d * g * s;
  }
}

}  // namespace

void add_inplace(Ctx& ctx, float* y, const float* x, size_t n) { axpby(ctx, y, x, 1.f, 1.f, n); }
void axpy(Ctx& ctx, float* y, const float* x, float a, size_t n) { axpby(ctx, y, x, 1.f, a, n); }
void scale_inplace(Ctx& ctx, float* x, float s, size_t n) { axpby(ctx, x, nullptr, s, 0.f, n); }
double sum_squares(Ctx& ctx, const float* x, size_t n) { return reduce(ctx, x, nullptr, n); }
double dot(Ctx& ctx, const float* a, const float* b, size_t n) { return reduce(ctx, a, b, n); }

void swiglu_forward(Ctx& ctx, const float* gu, int T, int I, float* h) {
  require(T >= 0 && I >= 0, "swiglu_forward: T and I must be >= 0");
  size_t n = (size_t)T * I;
  if (!n) return;
  swiglu_fwd_kernel<<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(gu, T, I, h);
  TROUPE_LAUNCH_CHECK("swiglu_fwd_kernel");
}

void swiglu_backward(Ctx& ctx, const float* dh, const float* gu, int T, int I, float* dgu) {
  require(T >= 0 && I >= 0, "swiglu_backward: T and I must be >= 0");
  size_t n = (size_t)T * I;
  if (!n) return;
  swiglu_bwd_kernel<<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(dh, gu, T, I, dgu);
  TROUPE_LAUNCH_CHECK("swiglu_bwd_kernel");
}

}  // namespace troupe::cuda
