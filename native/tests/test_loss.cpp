// Tests of native/cpu/loss.cpp: token_logprobs, ppo_loss, cross_entropy.
// References: hand-computed values (arithmetic in the comments), a float64 implementation of the
// same objective written out plainly below, and central finite differences of that float64 loss.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "harness.h"

namespace troupe::cpu::detail {
void fast_exp_array(const float* x, float* y, size_t n);  // test hook in loss.cpp
}

namespace {

using troupe::KlEstimator;
using troupe::PpoLossParams;
namespace cpu = troupe::cpu;

// ---------------------------------------------------------------- float64 reference
struct RefSoftmax {
  double logp, H;
  std::vector<double> p;
};

RefSoftmax ref_softmax(const double* x, int V, int y, double T) {
  double zmax = -INFINITY;
  for (int j = 0; j < V; ++j) zmax = std::max(zmax, x[j] / T);
  double s = 0.0;
  for (int j = 0; j < V; ++j) s += std::exp(x[j] / T - zmax);
  const double lse = zmax + std::log(s);
  RefSoftmax r;
  r.p.resize(V);
  r.H = 0.0;
  for (int j = 0; j < V; ++j) {
    const double lp = x[j] / T - lse;
    r.p[j] = std::exp(lp);
    if (r.p[j] > 0) r.H -= r.p[j] * lp;
  }
  r.logp = x[y] / T - lse;
  return r;
}

struct RefPpo {
  double loss, logp, H, ratio, pg, kl;
  int clip;
};

RefPpo ref_ppo(const double* x, int V, int y, double old, double ref, double A, double w,
               const PpoLossParams& p) {
  RefSoftmax s = ref_softmax(x, V, y, p.temperature);
  RefPpo o;
  o.logp = s.logp;
  o.H = s.H;
  const double C = p.log_ratio_clamp;
  const double delta = std::min(C, std::max(-C, s.logp - old));
  o.ratio = std::exp(delta);
  const double lo = 1.0 - p.clip_eps_low, hi = 1.0 + p.clip_eps_high;
  const double pg1 = -A * o.ratio, pg2 = -A * std::min(hi, std::max(lo, o.ratio));
  o.pg = std::max(pg1, pg2);
  bool dual = false;
  if (A < 0 && p.dual_clip_c > 1) {
    const double pg3 = -A * p.dual_clip_c;
    if (pg3 < o.pg) {
      dual = true;
      o.pg = pg3;
    }
  }
  o.clip = dual ? 3 : (pg2 > pg1 && o.ratio < lo) ? 1 : (pg2 > pg1 && o.ratio > hi) ? 2 : 0;
  const double d = s.logp - ref;
  switch (p.kl) {
    case KlEstimator::None: o.kl = 0; break;
    case KlEstimator::K1: o.kl = d; break;
    case KlEstimator::K2: o.kl = 0.5 * d * d; break;
    case KlEstimator::K3: o.kl = std::exp(-d) + d - 1; break;
  }
  const double klc = p.kl == KlEstimator::None ? 0.0 : p.kl_coef;
  o.loss = w * (o.pg + klc * o.kl - p.entropy_coef * o.H);
  return o;
}

// Central differences of the float64 loss with respect to each logit in `which`.
std::vector<double> fd_grad(const float* xf, int V, int y, double old, double ref, double A,
                            double w, const PpoLossParams& p, const std::vector<int>& which,
                            double h = 1e-4) {
  std::vector<double> x(xf, xf + V), g;
  for (int j : which) {
    const double x0 = x[j];
    x[j] = x0 + h;
    const double lp = ref_ppo(x.data(), V, y, old, ref, A, w, p).loss;
    x[j] = x0 - h;
    const double lm = ref_ppo(x.data(), V, y, old, ref, A, w, p).loss;
    x[j] = x0;
    g.push_back((lp - lm) / (2 * h));
  }
  return g;
}

std::vector<float> randn(std::mt19937_64& rng, size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// One token through ppo_loss; returns the stats row and fills dl (size V).
struct One {
  float stats[troupe::kTokenStatCols];
  std::vector<float> dl;
};
One ppo_one(const std::vector<float>& logits, int y, float old, float ref, float A, float w,
            const PpoLossParams& p) {
  One o;
  o.dl.assign(logits.size(), NAN);
  cpu::ppo_loss(logits.data(), 1, static_cast<int>(logits.size()), &y, &old, &ref, &A, &w, p,
                o.dl.data(), o.stats);
  return o;
}

// The hand-case row: logits [0, ln 3] give p = [1/4, 3/4]; target 1, so logp = ln(3/4).
const double kLogp = std::log(0.75);  // -0.2876820725
std::vector<float> hand_logits(double T = 1.0) {
  return {0.0f, static_cast<float>(T * std::log(3.0))};
}
float old_for_ratio(double r) { return static_cast<float>(kLogp - std::log(r)); }

}  // namespace

TEST(loss_fast_exp_within_2ulp) {
  // Dense grid over the whole domain the kernels use (softmax arguments are <= 0) and beyond.
  std::vector<float> x;
  for (double t = -87.3; t <= 88.0; t += 1.7e-4) x.push_back(static_cast<float>(t));
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 200000; ++i) x.push_back(u(rng) * 1e-3f);  // near 0: relative accuracy
  std::vector<float> y(x.size());
  troupe::cpu::detail::fast_exp_array(x.data(), y.data(), x.size());
  double worst = 0.0;
  float worst_x = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    const float reff = static_cast<float>(ref);
    const double ulp = std::nextafter(reff, INFINITY) - reff;
    const double err = std::fabs(y[i] - ref) / ulp;
    if (err > worst) {
      worst = err;
      worst_x = x[i];
    }
  }
  CHECK_MSG(worst <= 2.0, "max error " << worst << " ulp at x = " << worst_x);
  std::printf("    fast exp: max error %.3f ulp over %zu points\n", worst, x.size());
  // Flush and special values.
  float sx[4] = {-INFINITY, -100.0f, -87.4f, NAN}, sy[4];
  troupe::cpu::detail::fast_exp_array(sx, sy, 4);
  CHECK(sy[0] == 0.0f && sy[1] == 0.0f && sy[2] == 0.0f);
  CHECK(std::isnan(sy[3]));
}

TEST(loss_token_logprobs_vs_float64) {
  std::mt19937_64 rng(1);
  for (int V : {1, 2, 7, 16, 33, 320, 1000}) {
    for (float T : {1.0f, 0.7f, 1.9f}) {
      const int N = 9;
      std::vector<float> x = randn(rng, static_cast<size_t>(N) * V, 3.0f);
      std::vector<int32_t> y(N);
      for (int n = 0; n < N; ++n) y[n] = static_cast<int32_t>(rng() % V);
      std::vector<float> lp(N), H(N), lp2(N);
      cpu::token_logprobs(x.data(), N, V, y.data(), T, lp.data(), H.data());
      cpu::token_logprobs(x.data(), N, V, y.data(), T, lp2.data(), nullptr);
      for (int n = 0; n < N; ++n) {
        std::vector<double> xd(x.begin() + n * V, x.begin() + (n + 1) * V);
        RefSoftmax r = ref_softmax(xd.data(), V, y[n], T);
        CHECK_NEAR(lp[n], r.logp, 2e-6, 2e-6);
        CHECK_NEAR(H[n], r.H, 2e-6, 2e-6);
        CHECK(lp2[n] == lp[n]);
      }
    }
  }
}

TEST(loss_large_magnitude_logits_do_not_overflow) {
  // |logits| ~ 1e4: exp would overflow without the max subtraction; -inf logits (masked) too.
  std::mt19937_64 rng(2);
  const int N = 4, V = 50;
  std::vector<float> x = randn(rng, N * V, 1.0f);
  for (float& v : x) v = (v > 0 ? 1e4f : -1e4f) + v * 100.0f;
  x[3] = -INFINITY;
  x[V + 7] = -INFINITY;
  std::vector<int32_t> y = {0, 5, 9, 49};
  std::vector<float> lp(N), H(N);
  cpu::token_logprobs(x.data(), N, V, y.data(), 1.0f, lp.data(), H.data());
  for (int n = 0; n < N; ++n) {
    std::vector<double> xd(x.begin() + n * V, x.begin() + (n + 1) * V);
    RefSoftmax r = ref_softmax(xd.data(), V, y[n], 1.0);
    CHECK_NEAR(lp[n], r.logp, 1e-5, 1e-6);
    CHECK_NEAR(H[n], r.H, 1e-5, 1e-5);
  }
  PpoLossParams p;
  p.kl = KlEstimator::K3;
  p.kl_coef = 0.1f;
  p.entropy_coef = 0.01f;
  std::vector<float> old(N, -3.0f), ref(N, -2.0f), adv = {1.0f, -1.0f, 0.5f, -0.5f},
                     w(N, 0.25f), dl(N * V), st(N * 6), ce(N * V), lpc(N);
  cpu::ppo_loss(x.data(), N, V, y.data(), old.data(), ref.data(), adv.data(), w.data(), p,
                dl.data(), st.data());
  cpu::cross_entropy(x.data(), N, V, y.data(), w.data(), ce.data(), lpc.data());
  bool finite = true;
  for (float v : dl) finite &= std::isfinite(v);
  for (float v : ce) finite &= std::isfinite(v);
  for (float v : st) finite &= std::isfinite(v);
  CHECK(finite);
  for (int n = 0; n < N; ++n) CHECK(lpc[n] == lp[n]);
}

// ------------------------------------------------------------------ hand-computed cases
// Row logits [0, ln 3] -> p = [0.25, 0.75], target 1, logp = ln 0.75. old_logp = logp - ln r
// makes ratio = r. With w = 1, T = 1 and no entropy, dlogits = coef * (onehot - p) =
// coef * [-0.25, +0.25] where coef = dpg/dlogp (+ kl_coef * dkl/dlogp).
TEST(loss_ppo_hand_clip_sides) {
  PpoLossParams p;  // eps_low 0.2, eps_high 0.28, dual c 3, clamp 20
  struct Case {
    const char* name;
    double A, r;
    double pg, coef;
    int clip;
  };
  const Case cases[] = {
      // inside: pg1 = pg2 = -1.1 (tie -> pg1), dpg = -A r = -1.1
      {"A+ inside", 1.0, 1.1, -1.1, -1.1, 0},
      // high: pg1 = -1.5, pg2 = -1.28 -> pg = -1.28 (clipped), no gradient
      {"A+ high clipped", 1.0, 1.5, -1.28, 0.0, 2},
      // A>0 below the low bound is not clipped: pg1 = -0.5 > pg2 = -0.8, dpg = -0.5
      {"A+ low unclipped", 1.0, 0.5, -0.5, -0.5, 0},
      // low: pg1 = 0.5, pg2 = 0.8 -> pg = 0.8 (clipped), no gradient
      {"A- low clipped", -1.0, 0.5, 0.8, 0.0, 1},
      // A<0 above the high bound: pg1 = 1.5 > pg2 = 1.28, dual pg3 = 3 > 1.5 inactive; dpg = 1.5
      {"A- high unclipped", -1.0, 1.5, 1.5, 1.5, 0},
      // dual clip: pg1 = 4 > pg3 = 3 -> pg = 3, code 3, no gradient
      {"A- dual active", -1.0, 4.0, 3.0, 0.0, 3},
      // dual inactive: A = -2, r = 2: pg1 = 4, pg2 = 2.56, pg3 = 6 > 4 -> pg = 4, dpg = 4
      {"A- dual inactive", -2.0, 2.0, 4.0, 4.0, 0},
      // A = 0: everything 0
      {"A0", 0.0, 1.7, 0.0, 0.0, 0},
  };
  for (const Case& c : cases) {
    One o = ppo_one(hand_logits(), 1, old_for_ratio(c.r), 0.0f, static_cast<float>(c.A), 1.0f, p);
    CHECK_NEAR(o.stats[troupe::kStatLogp], kLogp, 1e-6, 0);
    CHECK_NEAR(o.stats[troupe::kStatEntropy], 0.5623351446, 1e-6, 0);
    CHECK_NEAR(o.stats[troupe::kStatRatio], c.r, 0, 1e-6);
    CHECK_MSG(std::fabs(o.stats[troupe::kStatPgLoss] - c.pg) <= 2e-6,
              c.name << ": pg " << o.stats[troupe::kStatPgLoss] << " vs " << c.pg);
    CHECK_MSG(o.stats[troupe::kStatClip] == c.clip,
              c.name << ": clip " << o.stats[troupe::kStatClip] << " vs " << c.clip);
    CHECK(o.stats[troupe::kStatKl] == 0.0f);
    CHECK_MSG(std::fabs(o.dl[0] - (-0.25 * c.coef)) <= 1e-6 &&
                  std::fabs(o.dl[1] - 0.25 * c.coef) <= 1e-6,
              c.name << ": dlogits " << o.dl[0] << ", " << o.dl[1] << " vs coef " << c.coef);
  }
  // Dual clip disabled (c = 1): A = -1, r = 4 -> pg = pg1 = 4, dpg = 4, code 0.
  PpoLossParams nd = p;
  nd.dual_clip_c = 1.0f;
  One o = ppo_one(hand_logits(), 1, old_for_ratio(4.0), 0.0f, -1.0f, 1.0f, nd);
  CHECK_NEAR(o.stats[troupe::kStatPgLoss], 4.0, 4e-6, 0);
  CHECK(o.stats[troupe::kStatClip] == 0.0f);
  CHECK_NEAR(o.dl[0], -1.0, 2e-6, 0);
  CHECK_NEAR(o.dl[1], 1.0, 2e-6, 0);
}

TEST(loss_ppo_hand_log_ratio_clamp) {
  PpoLossParams p;
  p.log_ratio_clamp = 0.5f;
  // delta = +1 clamped to 0.5: ratio = e^0.5 = 1.6487213; A = -1: pg1 = 1.6487 > pg2 = 1.28,
  // pg3 = 3 inactive -> pg = 1.6487213, code 0, but the clamp stops the gradient.
  One o = ppo_one(hand_logits(), 1, old_for_ratio(std::exp(1.0)), 0.0f, -1.0f, 1.0f, p);
  CHECK_NEAR(o.stats[troupe::kStatRatio], 1.6487212707, 0, 1e-6);
  CHECK_NEAR(o.stats[troupe::kStatPgLoss], 1.6487212707, 0, 1e-6);
  CHECK(o.stats[troupe::kStatClip] == 0.0f);
  CHECK(o.dl[0] == 0.0f && o.dl[1] == 0.0f);
  // delta = -1 clamped to -0.5: ratio = e^-0.5 = 0.6065307; A = +1: pg1 = -0.6065 > pg2 = -0.8
  // -> pg = -0.6065307, code 0, no gradient.
  o = ppo_one(hand_logits(), 1, old_for_ratio(std::exp(-1.0)), 0.0f, 1.0f, 1.0f, p);
  CHECK_NEAR(o.stats[troupe::kStatRatio], 0.6065306597, 0, 1e-6);
  CHECK_NEAR(o.stats[troupe::kStatPgLoss], -0.6065306597, 0, 1e-6);
  CHECK(o.stats[troupe::kStatClip] == 0.0f);
  CHECK(o.dl[0] == 0.0f && o.dl[1] == 0.0f);
  // delta = 0.4 (inside the clamp) with A = +1: ratio e^0.4 = 1.4918 clipped high -> code 2;
  // delta = 0.4 with A = -1: pg1 = 1.4918 selected, not clamped -> dpg = 1.4918247
  o = ppo_one(hand_logits(), 1, old_for_ratio(std::exp(0.4)), 0.0f, -1.0f, 1.0f, p);
  CHECK_NEAR(o.dl[1], 0.25 * 1.4918246976, 1e-6, 0);
}

TEST(loss_ppo_hand_kl_estimators) {
  // A = 0 so only the KL term acts. ref = logp - d.
  // d = 0.5:  k1 = 0.5, dk1 = 1;  k2 = 0.125, dk2 = 0.5;
  //           k3 = e^-0.5 + 0.5 - 1 = 0.1065306597, dk3 = 1 - e^-0.5 = 0.3934693403
  // d = -0.5: k3 = e^0.5 - 0.5 - 1 = 0.1487212707, dk3 = 1 - e^0.5 = -0.6487212707
  // kl_coef = 0.1, so dlogits = 0.1 * dk * [-0.25, 0.25].
  struct Case {
    KlEstimator k;
    double d, kl, dk;
  };
  const Case cases[] = {
      {KlEstimator::K1, 0.5, 0.5, 1.0},
      {KlEstimator::K2, 0.5, 0.125, 0.5},
      {KlEstimator::K3, 0.5, 0.1065306597, 0.3934693403},
      {KlEstimator::K1, -0.5, -0.5, 1.0},
      {KlEstimator::K2, -0.5, 0.125, -0.5},
      {KlEstimator::K3, -0.5, 0.1487212707, -0.6487212707},
  };
  for (const Case& c : cases) {
    PpoLossParams p;
    p.kl = c.k;
    p.kl_coef = 0.1f;
    One o = ppo_one(hand_logits(), 1, static_cast<float>(kLogp), static_cast<float>(kLogp - c.d),
                    0.0f, 1.0f, p);
    CHECK_NEAR(o.stats[troupe::kStatKl], c.kl, 1e-6, 1e-6);
    CHECK_NEAR(o.dl[0], -0.25 * 0.1 * c.dk, 1e-7, 1e-5);
    CHECK_NEAR(o.dl[1], 0.25 * 0.1 * c.dk, 1e-7, 1e-5);
  }
  // k3 keeps its relative precision for tiny differences (expm1): d = logp - ref ~ 1e-4 gives
  // k3 = e^-d + d - 1 ~ d^2/2 = 5e-9, which e^u - u - 1 in float would round to garbage.
  {
    PpoLossParams p;
    p.kl = KlEstimator::K3;
    p.kl_coef = 1.0f;
    const float ref = static_cast<float>(kLogp) - 1e-4f;
    One o = ppo_one(hand_logits(), 1, static_cast<float>(kLogp), ref, 0.0f, 1.0f, p);
    // logp - ref is exact in float (Sterbenz), so d is the kernel's own difference.
    const double d = static_cast<double>(o.stats[troupe::kStatLogp]) - ref;
    CHECK_NEAR(o.stats[troupe::kStatKl], std::exp(-d) + d - 1, 0, 1e-5);
  }
  // k3 exponent clamp: d = -25 (policy far below the reference): u = 25 is clamped to 20, so
  // k3 = e^20 - 25 - 1 = 485165169.4 and dk3 = 1 - e^20 = -485165194.4; with kl_coef = 1e-8 the
  // coefficient is -4.851651944 and dlogits = [+1.212912986, -1.212912986].
  {
    PpoLossParams p;
    p.kl = KlEstimator::K3;
    p.kl_coef = 1e-8f;
    One o = ppo_one(hand_logits(), 1, static_cast<float>(kLogp), static_cast<float>(kLogp + 25),
                    0.0f, 1.0f, p);
    CHECK_NEAR(o.stats[troupe::kStatKl], 485165169.4, 0, 2e-6);
    CHECK_NEAR(o.dl[0], 1.212912986, 0, 2e-6);
    CHECK_NEAR(o.dl[1], -1.212912986, 0, 2e-6);
  }
}

TEST(loss_ppo_hand_entropy_temperature_weight) {
  // Entropy of [1/4, 3/4]: H = 0.25 ln 4 + 0.75 ln(4/3) = 0.3465736 + 0.2157616 = 0.5623351.
  // dH/dz_j = -p_j (ln p_j + H): j=0: -0.25 (-1.3862944 + 0.5623351) = +0.2059898,
  //                              j=1: -0.75 (-0.2876821 + 0.5623351) = -0.2059898.
  // A = 0, entropy_coef = 0.1: dL/dz = -0.1 dH/dz = [-0.02059898, +0.02059898].
  PpoLossParams p;
  p.entropy_coef = 0.1f;
  One o = ppo_one(hand_logits(), 1, static_cast<float>(kLogp), 0.0f, 0.0f, 1.0f, p);
  CHECK_NEAR(o.stats[troupe::kStatEntropy], 0.5623351446, 1e-6, 0);
  CHECK_NEAR(o.dl[0], -0.02059898, 2e-7, 0);
  CHECK_NEAR(o.dl[1], 0.02059898, 2e-7, 0);
  // Entropy plus a policy gradient: A = +1, r = 0.5 (coef -0.5), w = 0.5:
  // dL/dz = 0.5 * (-0.5 * [-0.25, 0.25] + [-0.02059898, 0.02059898])
  //       = 0.5 * [0.125 - 0.02059898, -0.125 + 0.02059898] = [0.05220051, -0.05220051]
  o = ppo_one(hand_logits(), 1, old_for_ratio(0.5), 0.0f, 1.0f, 0.5f, p);
  CHECK_NEAR(o.dl[0], 0.05220051, 3e-7, 0);
  CHECK_NEAR(o.dl[1], -0.05220051, 3e-7, 0);
  // Temperature 2 with logits [0, 2 ln 3]: z = [0, ln 3], the same p; dL/dlogits = dL/dz / 2.
  // A = +1, r = 0.5, no entropy: dL/dz = [0.125, -0.125] -> dlogits = [0.0625, -0.0625].
  PpoLossParams t2;
  t2.temperature = 2.0f;
  o = ppo_one(hand_logits(2.0), 1, old_for_ratio(0.5), 0.0f, 1.0f, 1.0f, t2);
  CHECK_NEAR(o.stats[troupe::kStatLogp], kLogp, 1e-6, 0);
  CHECK_NEAR(o.dl[0], 0.0625, 1e-7, 0);
  CHECK_NEAR(o.dl[1], -0.0625, 1e-7, 0);
  // Weight 0 (a prompt token): dlogits all zero, stats still filled.
  o = ppo_one(hand_logits(), 1, old_for_ratio(0.5), 0.0f, 1.0f, 0.0f, p);
  CHECK(o.dl[0] == 0.0f && o.dl[1] == 0.0f);
  CHECK_NEAR(o.stats[troupe::kStatPgLoss], -0.5, 1e-6, 0);
  CHECK_NEAR(o.stats[troupe::kStatLogp], kLogp, 1e-6, 0);
}

TEST(loss_ppo_hand_aggregation_weights) {
  // Two sequences: a prompt token (weight 0) then completions of 2 and 3 tokens. Every
  // completion row is [0, ln 3] with target 1 and old_logp = logp (ratio 1, inside the clip), so
  // pg = -A: sequence 0 has A = +1 (pg = -1), sequence 1 has A = -2 (pg = 2; pg3 = 6 inactive).
  // The gradient of each completion row is w * (-A) * [-0.25, 0.25].
  const int N = 7;
  const int seq_of[N] = {0, 0, 0, 1, 1, 1, 1};
  const bool prompt[N] = {true, false, false, true, false, false, false};
  const float Aseq[2] = {1.0f, -2.0f};
  struct Agg {
    const char* name;
    double w0, w1;  // per-token weight in sequence 0 and 1
    double loss;
  };
  const Agg aggs[] = {
      // token-mean: w = 1/5;                  loss = (2*(-1) + 3*2) / 5 = 0.8
      {"token-mean", 1.0 / 5, 1.0 / 5, 0.8},
      // seq-mean-token-mean: w = 1/(2*len):   loss = 2*(-1)/4 + 3*2/6 = -0.5 + 1 = 0.5
      {"seq-mean-token-mean", 1.0 / 4, 1.0 / 6, 0.5},
      // seq-mean-token-sum: w = 1/2:          loss = (2*(-1) + 3*2) / 2 = 2
      {"seq-mean-token-sum", 0.5, 0.5, 2.0},
      // constant normaliser C = 10: w = 1/10: loss = (2*(-1) + 3*2) / 10 = 0.4
      {"constant", 0.1, 0.1, 0.4},
  };
  for (const Agg& a : aggs) {
    std::vector<float> x, old(N, static_cast<float>(kLogp)), adv(N), w(N), dl(N * 2), st(N * 6);
    std::vector<int32_t> y(N, 1);
    for (int n = 0; n < N; ++n) {
      auto row = hand_logits();
      x.insert(x.end(), row.begin(), row.end());
      adv[n] = Aseq[seq_of[n]];
      w[n] = prompt[n] ? 0.0f : static_cast<float>(seq_of[n] == 0 ? a.w0 : a.w1);
    }
    PpoLossParams p;
    cpu::ppo_loss(x.data(), N, 2, y.data(), old.data(), nullptr, adv.data(), w.data(), p,
                  dl.data(), st.data());
    double loss = 0.0;
    for (int n = 0; n < N; ++n) loss += w[n] * st[n * 6 + troupe::kStatPgLoss];
    CHECK_MSG(std::fabs(loss - a.loss) <= 2e-6, a.name << ": loss " << loss << " vs " << a.loss);
    for (int n = 0; n < N; ++n) {
      const double g = prompt[n] ? 0.0 : w[n] * -Aseq[seq_of[n]];
      CHECK_MSG(std::fabs(dl[n * 2] + 0.25 * g) <= 1e-6 && std::fabs(dl[n * 2 + 1] - 0.25 * g) <= 1e-6,
                a.name << " row " << n << ": " << dl[n * 2] << ", " << dl[n * 2 + 1]);
    }
  }
}

// ------------------------------------------------------------ finite differences
// Every configuration: temperature 1 / 0.7 / 1.6, KL none/k1/k2/k3, entropy bonus on/off,
// log-ratio clamp 20 / 1, advantages +1.3 / -0.7 / -2.0, and ratios chosen inside and on both
// sides of the clip range (0.6, 1.05, 1.6, 4.5: |kinks at 0.8, 1.28, 3 and log-ratio +-1| are
// all > 0.15 away in log space, far beyond the 1e-4 FD step).
TEST(loss_ppo_dlogits_vs_finite_differences) {
  std::mt19937_64 rng(3);
  const int V = 37;
  const double ratios[] = {0.6, 1.05, 1.6, 4.5};
  const float advs[] = {1.3f, -0.7f, -2.0f};
  int rows_checked = 0;
  double worst = 0.0;
  for (float T : {1.0f, 0.7f, 1.6f})
    for (KlEstimator kl : {KlEstimator::None, KlEstimator::K1, KlEstimator::K2, KlEstimator::K3})
      for (float ec : {0.0f, 0.05f})
        for (float clamp : {20.0f, 1.0f}) {
          PpoLossParams p;
          p.temperature = T;
          p.kl = kl;
          p.kl_coef = kl == KlEstimator::None ? 0.0f : 0.3f;
          p.entropy_coef = ec;
          p.log_ratio_clamp = clamp;
          const int N = 12 + 1;  // 3 advantages x 4 ratios, plus one weight-0 row
          std::vector<float> x = randn(rng, N * V, 2.0f), old(N), ref(N), adv(N), w(N);
          std::vector<int32_t> y(N);
          std::uniform_real_distribution<float> uw(0.2f, 1.5f), ur(-1.5f, 1.5f);
          for (int n = 0; n < N; ++n) {
            y[n] = static_cast<int32_t>(rng() % V);
            std::vector<double> xd(x.begin() + n * V, x.begin() + (n + 1) * V);
            const double lp = ref_softmax(xd.data(), V, y[n], T).logp;
            old[n] = static_cast<float>(lp - std::log(ratios[n % 4]));
            ref[n] = static_cast<float>(lp - ur(rng));
            adv[n] = advs[(n / 4) % 3];
            w[n] = n == N - 1 ? 0.0f : uw(rng);
          }
          std::vector<float> dl(N * V), st(N * 6);
          cpu::ppo_loss(x.data(), N, V, y.data(), old.data(), ref.data(), adv.data(), w.data(),
                        p, dl.data(), st.data());
          std::vector<int> all(V);
          for (int j = 0; j < V; ++j) all[j] = j;
          for (int n = 0; n < N; ++n) {
            std::vector<double> xd(x.begin() + n * V, x.begin() + (n + 1) * V);
            RefPpo r = ref_ppo(xd.data(), V, y[n], old[n], ref[n], adv[n], w[n], p);
            const float* s = &st[n * 6];
            CHECK_NEAR(s[troupe::kStatLogp], r.logp, 3e-6, 2e-6);
            CHECK_NEAR(s[troupe::kStatEntropy], r.H, 3e-6, 2e-6);
            CHECK_NEAR(s[troupe::kStatRatio], r.ratio, 0, 1e-5);
            CHECK_NEAR(s[troupe::kStatPgLoss], r.pg, 1e-6, 1e-5);
            CHECK_NEAR(s[troupe::kStatKl], r.kl, 1e-6, 1e-5);
            CHECK(s[troupe::kStatClip] == r.clip);
            std::vector<double> g = fd_grad(&x[n * V], V, y[n], old[n], ref[n], adv[n], w[n], p, all);
            double scale = 1e-3;
            for (double v : g) scale = std::max(scale, std::fabs(v));
            for (int j = 0; j < V; ++j) {
              const double err = std::fabs(dl[n * V + j] - g[j]) / scale;
              worst = std::max(worst, err);
              CHECK_MSG(err <= 5e-5, "T=" << T << " kl=" << static_cast<int>(kl) << " ec=" << ec
                                          << " clamp=" << clamp << " row " << n << " j " << j
                                          << ": " << dl[n * V + j] << " vs fd " << g[j]);
            }
            ++rows_checked;
          }
        }
  std::printf("    %d rows, worst |dlogits - fd| / max|fd| = %.2e\n", rows_checked, worst);
}

TEST(loss_ppo_in_place_matches_out_of_place) {
  // dlogits may alias logits: the result must be bit-identical to the out-of-place call, on the
  // parked-exp path (no entropy), the entropy path, and weight-0 rows.
  std::mt19937_64 rng(4);
  const int N = 20, V = 333;
  for (float ec : {0.0f, 0.02f}) {
    PpoLossParams p;
    p.entropy_coef = ec;
    p.kl = KlEstimator::K3;
    p.kl_coef = 0.05f;
    p.temperature = 0.8f;
    std::vector<float> x = randn(rng, N * V, 2.0f), old = randn(rng, N, 1.0f),
                       ref = randn(rng, N, 1.0f), adv = randn(rng, N, 1.0f), w(N);
    std::vector<int32_t> y(N);
    for (int n = 0; n < N; ++n) {
      y[n] = static_cast<int32_t>(rng() % V);
      old[n] -= 6.0f;
      ref[n] -= 6.0f;
      w[n] = n % 5 == 0 ? 0.0f : 0.1f * n;
    }
    std::vector<float> dl(N * V), st(N * 6), inplace = x, st2(N * 6);
    cpu::ppo_loss(x.data(), N, V, y.data(), old.data(), ref.data(), adv.data(), w.data(), p,
                  dl.data(), st.data());
    cpu::ppo_loss(inplace.data(), N, V, y.data(), old.data(), ref.data(), adv.data(), w.data(), p,
                  inplace.data(), st2.data());
    CHECK(std::memcmp(dl.data(), inplace.data(), dl.size() * 4) == 0);
    CHECK(std::memcmp(st.data(), st2.data(), st.size() * 4) == 0);
  }
  // Same for cross_entropy.
  std::vector<float> x = randn(rng, N * V, 2.0f), w(N, 0.3f), dl(N * V), lp(N), lp2(N);
  w[3] = 0.0f;
  std::vector<int32_t> y(N, 5);
  std::vector<float> inplace = x;
  cpu::cross_entropy(x.data(), N, V, y.data(), w.data(), dl.data(), lp.data());
  cpu::cross_entropy(inplace.data(), N, V, y.data(), w.data(), inplace.data(), lp2.data());
  CHECK(std::memcmp(dl.data(), inplace.data(), dl.size() * 4) == 0);
  CHECK(std::memcmp(lp.data(), lp2.data(), lp.size() * 4) == 0);
}

TEST(loss_results_do_not_depend_on_threads_or_batch) {
  // Each row alone, and the batch on 1 and on 2 threads: bit-identical rows. (300 rows of 320
  // make 3 chunks of rows, so the 2-thread run really splits the batch.)
  std::mt19937_64 rng(5);
  const int N = 300, V = 320;
  PpoLossParams p;
  p.entropy_coef = 0.01f;
  std::vector<float> x = randn(rng, N * V, 2.0f), old = randn(rng, N, 1.0f), adv = randn(rng, N, 1.0f),
                     w(N, 0.01f);
  for (float& o : old) o -= 6.0f;
  std::vector<int32_t> y(N);
  for (int n = 0; n < N; ++n) y[n] = static_cast<int32_t>(rng() % V);
  auto run = [&](int threads) {
    cpu::set_thread_local_num_threads(threads);
    std::vector<float> dl(N * V), st(N * 6);
    cpu::ppo_loss(x.data(), N, V, y.data(), old.data(), nullptr, adv.data(), w.data(), p,
                  dl.data(), st.data());
    dl.insert(dl.end(), st.begin(), st.end());
    return dl;
  };
  const int saved = cpu::num_threads();
  std::vector<float> a = run(1), b = run(2);
  cpu::set_thread_local_num_threads(saved);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
  for (int n : {0, 17, 150, 299}) {
    std::vector<float> dl(V), st(6);
    cpu::ppo_loss(&x[n * V], 1, V, &y[n], &old[n], nullptr, &adv[n], &w[n], p, dl.data(), st.data());
    CHECK(std::memcmp(dl.data(), &a[n * V], V * 4) == 0);
    CHECK(std::memcmp(st.data(), &a[N * V + n * 6], 6 * 4) == 0);
  }
}

TEST(loss_cross_entropy_vs_float64) {
  // loss = sum_n w_n * -logp_n; dlogits = w (p - onehot), checked analytically in double and by
  // finite differences of the double loss.
  std::mt19937_64 rng(6);
  for (int V : {3, 16, 129}) {
    const int N = 6;
    std::vector<float> x = randn(rng, N * V, 2.5f), w = {0.5f, 1.0f, 0.0f, 2.0f, 0.125f, 1.5f};
    std::vector<int32_t> y(N);
    for (int n = 0; n < N; ++n) y[n] = static_cast<int32_t>(rng() % V);
    std::vector<float> dl(N * V), lp(N);
    cpu::cross_entropy(x.data(), N, V, y.data(), w.data(), dl.data(), lp.data());
    for (int n = 0; n < N; ++n) {
      std::vector<double> xd(x.begin() + n * V, x.begin() + (n + 1) * V);
      RefSoftmax r = ref_softmax(xd.data(), V, y[n], 1.0);
      CHECK_NEAR(lp[n], r.logp, 2e-6, 2e-6);
      const double h = 1e-4;
      for (int j = 0; j < V; ++j) {
        const double analytic = w[n] * (r.p[j] - (j == y[n] ? 1.0 : 0.0));
        std::vector<double> xp = xd, xm = xd;
        xp[j] += h;
        xm[j] -= h;
        const double fd = w[n] * (-ref_softmax(xp.data(), V, y[n], 1.0).logp +
                                  ref_softmax(xm.data(), V, y[n], 1.0).logp) / (2 * h);
        CHECK_NEAR(dl[n * V + j], analytic, 1e-6, 1e-5);
        CHECK_NEAR(dl[n * V + j], fd, 1e-6, 1e-5);
      }
    }
  }
}

TEST(loss_qwen3_vocab_row) {
  // V = 151936 (Qwen3): token_logprobs, ppo_loss stats and dlogits at selected entries.
  std::mt19937_64 rng(7);
  const int N = 3, V = 151936;
  std::vector<float> x = randn(rng, static_cast<size_t>(N) * V, 2.0f);
  x[12345] += 15.0f;  // a peaked row
  x[V + 77] = -INFINITY;
  std::vector<int32_t> y = {12345, 99999, 151935};
  std::vector<float> lp(N), H(N);
  cpu::token_logprobs(x.data(), N, V, y.data(), 0.7f, lp.data(), H.data());
  PpoLossParams p;
  p.temperature = 0.7f;
  p.entropy_coef = 0.01f;
  p.kl = KlEstimator::K2;
  p.kl_coef = 0.2f;
  std::vector<float> old(N), ref(N), adv = {1.0f, -1.0f, 0.5f}, w = {0.5f, 1.0f, 2.0f};
  std::vector<std::vector<double>> xd(N);
  for (int n = 0; n < N; ++n) {
    xd[n].assign(x.begin() + static_cast<size_t>(n) * V, x.begin() + static_cast<size_t>(n + 1) * V);
    RefSoftmax r = ref_softmax(xd[n].data(), V, y[n], 0.7);
    CHECK_NEAR(lp[n], r.logp, 1e-5, 2e-6);
    CHECK_NEAR(H[n], r.H, 1e-5, 2e-6);
    old[n] = static_cast<float>(r.logp - 0.05);
    ref[n] = static_cast<float>(r.logp + 0.3);
  }
  std::vector<float> dl(static_cast<size_t>(N) * V), st(N * 6);
  cpu::ppo_loss(x.data(), N, V, y.data(), old.data(), ref.data(), adv.data(), w.data(), p,
                dl.data(), st.data());
  for (int n = 0; n < N; ++n) {
    RefPpo r = ref_ppo(xd[n].data(), V, y[n], old[n], ref[n], adv[n], w[n], p);
    CHECK_NEAR(st[n * 6 + troupe::kStatLogp], r.logp, 1e-5, 2e-6);
    CHECK_NEAR(st[n * 6 + troupe::kStatPgLoss], r.pg, 1e-5, 1e-5);
    std::vector<int> which = {y[n], 0, 1, 12345, 77, 70000, V - 1};
    std::vector<double> g = fd_grad(&x[static_cast<size_t>(n) * V], V, y[n], old[n], ref[n],
                                    adv[n], w[n], p, which, 1e-3);
    double scale = 0;
    for (double v : g) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < which.size(); ++i)
      CHECK_MSG(std::fabs(dl[static_cast<size_t>(n) * V + which[i]] - g[i]) <= 1e-4 * scale + 1e-9,
                "row " << n << " j " << which[i] << ": " << dl[static_cast<size_t>(n) * V + which[i]]
                       << " vs fd " << g[i]);
    double sum = 0, amax = 0;  // softmax gradients sum to zero over the vocabulary
    for (int j = 0; j < V; ++j) {
      sum += dl[static_cast<size_t>(n) * V + j];
      amax = std::max(amax, std::fabs(static_cast<double>(dl[static_cast<size_t>(n) * V + j])));
    }
    CHECK_NEAR(sum, 0.0, 1e-5 * amax, 0);
    CHECK(dl[V + 77] == 0.0f || n != 1);
  }
}

TEST(loss_bad_input_throws) {
  float x[4] = {0, 1, 2, 3}, lp, H, dl[4], st[6], w = 1, a = 1, o = 0;
  int32_t y = 4, y0 = 0;
  CHECK_THROWS(cpu::token_logprobs(x, 1, 4, &y, 1.0f, &lp, &H));       // target out of range
  CHECK_THROWS(cpu::token_logprobs(x, 1, 4, &y0, 0.0f, &lp, &H));      // temperature 0
  CHECK_THROWS(cpu::token_logprobs(x, 1, 0, &y0, 1.0f, &lp, &H));      // V 0
  PpoLossParams p;
  p.kl = KlEstimator::K1;
  CHECK_THROWS(cpu::ppo_loss(x, 1, 4, &y0, &o, nullptr, &a, &w, p, dl, st));  // no ref_logp
  PpoLossParams q;
  q.temperature = NAN;
  CHECK_THROWS(cpu::ppo_loss(x, 1, 4, &y0, &o, nullptr, &a, &w, q, dl, st));
  CHECK_THROWS(cpu::cross_entropy(x, 1, 4, &y, &w, dl, &lp));
  CHECK_THROWS(cpu::cross_entropy(x, 1, 4, &y0, nullptr, dl, &lp));
}
