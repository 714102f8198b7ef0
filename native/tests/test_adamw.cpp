// Tests of native/cpu/adamw.cpp against torch.optim.AdamW's update written out in float64, and a
// hand-computed first step.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "harness.h"

namespace {
namespace cpu = troupe::cpu;

// torch.optim.AdamW (decoupled weight decay, bias-corrected), one step, in double.
void ref_adamw(std::vector<double>& p, const std::vector<float>& grad, std::vector<double>& m,
               std::vector<double>& v, double lr, double b1, double b2, double eps, double wd,
               int step, double grad_scale) {
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  for (size_t i = 0; i < p.size(); ++i) {
    const double g = grad[i] * grad_scale;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    p[i] *= 1 - lr * wd;
    p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

}  // namespace

TEST(adamw_hand_first_step) {
  // p = 1, grad = 2, grad_scale = 0.5 -> g = 1; lr = 0.1, wd = 0.1, betas (0.9, 0.999), eps 1e-8.
  // m = 0.1, v = 0.001; bc1 = 0.1, bc2 = 0.001 -> m_hat = 1, v_hat = 1.
  // p = 1 * (1 - 0.1*0.1) = 0.99, then p -= 0.1 * 1 / (1 + 1e-8) -> 0.89 (to 1e-9).
  float p = 1.0f, g = 2.0f, m = 0.0f, v = 0.0f;
  cpu::adamw(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 0.5f);
  // (betas arrive as floats: 1 - 0.9f = 0.10000002, 1 - 0.999f = 0.00099998713)
  CHECK_NEAR(m, 0.1, 1e-7, 0);
  CHECK_NEAR(v, 0.001, 0, 2e-5);
  CHECK_NEAR(p, 0.89, 1e-7, 0);
  // Second step with grad 0 (g = 0): m = 0.09, v = 0.000999; bc1 = 0.19, bc2 = 0.001999.
  // m_hat = 0.09/0.19 = 0.4736842, sqrt(v_hat) = sqrt(0.000999/0.001999) = 0.7069299;
  // p = 0.89 * 0.99 - 0.1 * 0.4736842 / 0.7069299 = 0.8811 - 0.0670058 = 0.8140942.
  g = 0.0f;
  cpu::adamw(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, 2, 0.5f);
  CHECK_NEAR(p, 0.8140942, 2e-7, 0);
}

TEST(adamw_matches_float64_torch_formula) {
  // Several steps (including a late step where bias correction is ~1), odd n so the vector loop
  // has a tail, grad_scale != 1 and weight decay.
  std::mt19937_64 rng(51);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t n = 100003;
  std::vector<float> p(n), m(n, 0.0f), v(n, 0.0f), g(n);
  for (float& x : p) x = nd(rng);
  std::vector<double> pd(p.begin(), p.end()), md(n, 0.0), vd(n, 0.0);
  const float lr = 2e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, gs = 0.37f;
  for (int step : {1, 2, 3, 4, 5, 6, 1000}) {
    for (float& x : g) x = nd(rng) * 3.0f;
    g[7] = 0.0f;  // a zero gradient element
    cpu::adamw(p.data(), g.data(), m.data(), v.data(), n, lr, b1, b2, eps, wd, step, gs);
    ref_adamw(pd, g, md, vd, lr, b1, b2, eps, wd, step, gs);
    double worst_p = 0, worst_m = 0, worst_v = 0;
    for (size_t i = 0; i < n; ++i) {
      // Errors relative to the value plus a floor at the typical magnitude (|p| ~ 1, |m| ~ 0.1):
      // float rounds each step by ~1e-7 of those, while a wrong bias correction, decay or
      // epsilon placement would be off by ~lr = 2e-3.
      worst_p = std::max(worst_p, std::fabs(p[i] - pd[i]) / (0.1 + std::fabs(pd[i])));
      worst_m = std::max(worst_m, std::fabs(m[i] - md[i]) / (0.1 + std::fabs(md[i])));
      worst_v = std::max(worst_v, std::fabs(v[i] - vd[i]) / (1e-9 + std::fabs(vd[i])));
    }
    CHECK_MSG(worst_p <= 2e-6, "step " << step << ": params off by " << worst_p);
    CHECK_MSG(worst_m <= 1e-6, "step " << step << ": m off by " << worst_m);
    CHECK_MSG(worst_v <= 1e-5, "step " << step << ": v off by " << worst_v);
    if (step == 1000)
      std::printf("    step %d: worst p %.1e, m %.1e, v %.1e\n", step, worst_p, worst_m, worst_v);
  }
}

TEST(adamw_thread_count_does_not_change_bits) {
  std::mt19937_64 rng(52);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const size_t n = (1 << 17) + 13;  // several parallel chunks and a tail
  std::vector<float> p0(n), g(n), m0(n), v0(n);
  for (size_t i = 0; i < n; ++i) {
    p0[i] = nd(rng);
    g[i] = nd(rng);
    m0[i] = nd(rng) * 0.1f;
    v0[i] = std::fabs(nd(rng)) * 0.01f;
  }
  const int saved = cpu::num_threads();
  std::vector<float> out[2];
  for (int t = 1; t <= 2; ++t) {
    cpu::set_thread_local_num_threads(t);
    std::vector<float> p = p0, m = m0, v = v0;
    cpu::adamw(p.data(), g.data(), m.data(), v.data(), n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.5f);
    out[t - 1] = p;
    out[t - 1].insert(out[t - 1].end(), m.begin(), m.end());
    out[t - 1].insert(out[t - 1].end(), v.begin(), v.end());
  }
  cpu::set_thread_local_num_threads(saved);
  CHECK(std::memcmp(out[0].data(), out[1].data(), out[0].size() * 4) == 0);
  // An element alone (scalar tail path) matches the same element inside the big call.
  for (size_t i : {size_t{0}, size_t{12345}, n - 1}) {
    float p = p0[i], m = m0[i], v = v0[i];
    cpu::adamw(&p, &g[i], &m, &v, 1, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.5f);
    CHECK(p == out[0][i] && m == out[0][n + i] && v == out[0][2 * n + i]);
  }
}

TEST(adamw_bad_input_throws) {
  float p = 1, g = 1, m = 0, v = 0;
  CHECK_THROWS(cpu::adamw(&p, &g, &m, &v, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0, 1.0f));
  CHECK_THROWS(cpu::adamw(&p, &g, &m, &v, 1, 1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f, 1, 1.0f));
  CHECK_THROWS(cpu::adamw(&p, &g, &m, &v, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, NAN));
  CHECK_THROWS(cpu::adamw(nullptr, &g, &m, &v, 1, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1, 1.0f));
}
