// Fused decoupled AdamW over n parameters, the arithmetic of native/cpu/adamw.cpp (torch.optim.
// AdamW, foreach=False): the per-step scalars are computed once on the host in double and
// rounded to float, then one elementwise pass reads p, g, m, v and writes p, m, v.
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

struct AdamScalars {
  float b1, one_m_b1, b2, one_m_b2, decay, step_size, bc2_sqrt, eps, grad_scale;
};

__device__ __forceinline__ void adam_one(float& p, float g, float& m, float& v,
                                         const AdamScalars& s) {
  g *= s.grad_scale;
  const float mi = s.b1 * m + s.one_m_b1 * g;
  const float vi = s.b2 * v + s.one_m_b2 * (g * g);
  m = mi;
  v = vi;
  const float denom = sqrtf(vi) / s.bc2_sqrt + s.eps;
  p = p * s.decay - s.step_size * (mi / denom);
}

__global__ void adamw_vec4(float4* __restrict__ p, const float4* __restrict__ g,
                           float4* __restrict__ m, float4* __restrict__ v, size_t n4,
                           AdamScalars s) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n4;
       i += (size_t)gridDim.x * blockDim.x) {
    float4 pp = p[i], mm = m[i], vv = v[i];
    const float4 gg = g[i];
    adam_one(pp.x, gg.x, mm.x, vv.x, s);
    adam_one(pp.y, gg.y, mm.y, vv.y, s);
    adam_one(pp.z, gg.z, mm.z, vv.z, s);
    adam_one(pp.w, gg.w, mm.w, vv.w, s);
    p[i] = pp;
    m[i] = mm;
    v[i] = vv;
  }
}

__global__ void adamw_scalar(float* __restrict__ p, const float* __restrict__ g,
                             float* __restrict__ m, float* __restrict__ v, size_t n,
                             AdamScalars s) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    adam_one(p[i], g[i], m[i], v[i], s);
}

bool aligned16(const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; }

unsigned grid_for(const Ctx& ctx, size_t n) {
  size_t want = (n + 255) / 256, cap = (size_t)ctx.num_sms * 8;
  return static_cast<unsigned>(want < cap ? (want ? want : 1) : cap);
}

}  // namespace

void adamw(Ctx& ctx, float* params, const float* grads, float* m, float* v, size_t n, float lr,
           float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale) {
  require(step >= 1, "adamw: step must be >= 1 (it is 1-based)");
  require(beta1 >= 0.0f && beta1 < 1.0f, "adamw: beta1 must be in [0, 1)");
  require(beta2 >= 0.0f && beta2 < 1.0f, "adamw: beta2 must be in [0, 1)");
  require(eps >= 0.0f && std::isfinite(eps), "adamw: eps must be finite and >= 0");
  require(std::isfinite(lr), "adamw: lr must be finite");
  require(std::isfinite(weight_decay), "adamw: weight_decay must be finite");
  require(std::isfinite(grad_scale), "adamw: grad_scale must be finite");
  if (n == 0) return;
  require(params && grads && m && v, "adamw: null params, grads, m or v");
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  AdamScalars s;
  s.b1 = beta1;
  s.b2 = beta2;
  s.one_m_b1 = static_cast<float>(1.0 - beta1);
  s.one_m_b2 = static_cast<float>(1.0 - beta2);
  s.decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  s.step_size = static_cast<float>(static_cast<double>(lr) / bc1);
  s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  s.eps = eps;
  s.grad_scale = grad_scale;
  const bool vec = aligned16(params) && aligned16(grads) && aligned16(m) && aligned16(v);
  const size_t n4 = vec ? n / 4 : 0, done = n4 * 4;
  if (n4) {
    adamw_vec4<<<grid_for(ctx, n4), 256, 0, ctx.stream>>>(
        reinterpret_cast<float4*>(params), reinterpret_cast<const float4*>(grads),
        reinterpret_cast<float4*>(m), reinterpret_cast<float4*>(v), n4, s);
    TROUPE_LAUNCH_CHECK("adamw_vec4");
  }
  if (done < n) {
    adamw_scalar<<<grid_for(ctx, n - done), 256, 0, ctx.stream>>>(params + done, grads + done,
                                                                  m + done, v + done, n - done, s);
    TROUPE_LAUNCH_CHECK("adamw_scalar");
  }
}

}  // namespace troupe::cuda
