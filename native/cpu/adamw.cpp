// Decoupled AdamW, step for step the arithmetic of torch.optim.AdamW (foreach=False, fp32):
//   g = grad * grad_scale
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
//   p *= 1 - lr*wd                               (decay before the Adam update, as torch does)
//   p -= (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps)),  bc1 = 1 - b1^step, bc2 = 1 - b2^step
// The per-step scalars are computed in double and rounded once, as torch computes them in
// Python floats. (torch updates m with lerp, m + (1-b1)*(g - m); the product form differs by an
// ulp, not in meaning.) Elementwise and memory-bound: a plain loop the compiler vectorises
// (build with -fno-math-errno, as CMakeLists does, so sqrt vectorises), split over threads.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "parallel.h"

namespace troupe::cpu {
namespace {

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("adamw: " + what); }

void adamw_range(float* __restrict params, const float* __restrict grads, float* __restrict m,
                 float* __restrict v, size_t n, float b1, float one_m_b1, float b2, float one_m_b2,
                 float decay, float step_size, float bc2_sqrt, float eps, float grad_scale) {
  for (size_t i = 0; i < n; ++i) {
    const float g = grads[i] * grad_scale;
    const float mi = b1 * m[i] + one_m_b1 * g;
    const float vi = b2 * v[i] + one_m_b2 * (g * g);
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bc2_sqrt + eps;
    params[i] = params[i] * decay - step_size * (mi / denom);
  }
}

}  // namespace

void adamw(float* params, const float* grads, float* m, float* v, size_t n, float lr, float beta1,
           float beta2, float eps, float weight_decay, int step, float grad_scale) {
  if (step < 1) bad("step = " + std::to_string(step) + " must be >= 1 (it is 1-based)");
  if (!(beta1 >= 0.0f && beta1 < 1.0f)) bad("beta1 = " + std::to_string(beta1) + " not in [0, 1)");
  if (!(beta2 >= 0.0f && beta2 < 1.0f)) bad("beta2 = " + std::to_string(beta2) + " not in [0, 1)");
  if (!(eps >= 0.0f) || !std::isfinite(eps)) bad("eps = " + std::to_string(eps) + " must be >= 0");
  if (!std::isfinite(lr)) bad("lr must be finite");
  if (!std::isfinite(weight_decay)) bad("weight_decay must be finite");
  if (!std::isfinite(grad_scale)) bad("grad_scale must be finite");
  if (n == 0) return;
  if (!params) bad("params is null");
  if (!grads) bad("grads is null");
  if (!m) bad("m is null");
  if (!v) bad("v is null");

  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), step);
  const float step_size = static_cast<float>(static_cast<double>(lr) / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const float one_m_b1 = static_cast<float>(1.0 - beta1);
  const float one_m_b2 = static_cast<float>(1.0 - beta2);
  // Chunks are multiples of 64 elements so each thread's slice starts cache-line aligned for
  // 64-byte aligned buffers (no false sharing at the seams).
  parallel_for(n, size_t{1} << 15, [&](size_t b, size_t e) {
    adamw_range(params + b, grads + b, m + b, v + b, e - b, beta1, one_m_b1, beta2, one_m_b2,
                decay, step_size, bc2_sqrt, eps, grad_scale);
  });
}

}  // namespace troupe::cpu
