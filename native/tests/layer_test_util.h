// Helpers shared by test_layers.cpp and test_attention.cpp: seeded random tensors, comparison of
// a float32 kernel result with a float64 reference (one failure line naming the worst element),
// central finite differences of a float64 scalar function, and thread-count control.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../cpu/parallel.h"
#include "harness.h"

namespace troupe::test {

using VecF = std::vector<float>;
using VecD = std::vector<double>;

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); }
  VecF vec(size_t n, float lo = -1.0f, float hi = 1.0f) {
    VecF v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
};

inline VecD to_double(const VecF& v) { return VecD(v.begin(), v.end()); }

// Checks |got - ref| <= atol + rtol*|ref| everywhere; records one failure for the worst element.
inline void expect_close(const std::string& label, const float* got, const double* ref, size_t n,
                         double atol, double rtol) {
  size_t bad = 0, worst = 0;
  double worst_excess = -1.0;
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const double excess = err - (atol + rtol * std::fabs(ref[i]));
    if (!(excess <= 0.0)) ++bad;  // also catches NaN
    if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
  }
  CHECK_MSG(bad == 0, label << ": " << bad << " of " << n << " elements off; worst [" << worst
                            << "] got " << got[worst] << " want " << ref[worst]);
}
inline void expect_close(const std::string& label, const VecF& got, const VecD& ref, double atol,
                         double rtol) {
  CHECK_MSG(got.size() == ref.size(), label << ": size mismatch");
  expect_close(label, got.data(), ref.data(), std::min(got.size(), ref.size()), atol, rtol);
}

inline double max_abs(const VecD& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Central differences of f at x (in double, step h) for each coordinate in `coords`.
inline VecD fd_gradient(const VecF& x, const std::function<double(const VecD&)>& f,
                        const std::vector<size_t>& coords, double h = 1e-4) {
  VecD xd = to_double(x), fd(coords.size());
  for (size_t c = 0; c < coords.size(); ++c) {
    const size_t i = coords[c];
    const double x0 = xd[i];
    xd[i] = x0 + h;
    const double fp = f(xd);
    xd[i] = x0 - h;
    const double fm = f(xd);
    xd[i] = x0;
    fd[c] = (fp - fm) / (2 * h);
  }
  return fd;
}

// grad[coords[c]] against fd[c]. The absolute tolerance scales with the largest reference
// gradient so it is meaningful for any magnitude.
inline void expect_grad(const std::string& label, const float* grad,
                        const std::vector<size_t>& coords, const VecD& fd, double tol = 2e-4) {
  VecF got(coords.size());
  for (size_t c = 0; c < coords.size(); ++c) got[c] = grad[coords[c]];
  expect_close(label, got, fd, tol * std::max(1.0, max_abs(fd)), 2e-3);
}

// Gradient check of a float32 kernel's grad against finite differences of float64 f.
inline void expect_grad_fd(const std::string& label, const VecF& x, const float* grad,
                           const std::function<double(const VecD&)>& f,
                           const std::vector<size_t>& coords, double tol = 2e-4) {
  expect_grad(label, grad, coords, fd_gradient(x, f, coords), tol);
}

// Every coordinate of [0, n) when n <= limit, else `limit` distinct random ones (sorted).
inline std::vector<size_t> sample_coords(size_t n, size_t limit, Rng& rng) {
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  if (n <= limit) return all;
  std::shuffle(all.begin(), all.end(), rng.gen);
  all.resize(limit);
  std::sort(all.begin(), all.end());
  return all;
}

// Runs fn with the calling thread's native thread count set to n, restoring it afterwards.
inline void with_threads(int n, const std::function<void()>& fn) {
  const int before = cpu::num_threads();
  cpu::set_thread_local_num_threads(n);
  fn();
  cpu::set_thread_local_num_threads(before);
}

inline bool bitwise_equal(const VecF& a, const VecF& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Rotary tables [max_pos, hd/2] as the model builds them: inv_freq_i = theta^(-2i/hd).
inline void rope_tables(int max_pos, int hd, double theta, VecF* cos_t, VecF* sin_t) {
  const int half = hd / 2;
  cos_t->resize(static_cast<size_t>(max_pos) * half);
  sin_t->resize(cos_t->size());
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = p * std::pow(theta, -2.0 * i / hd);
      (*cos_t)[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(a));
      (*sin_t)[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(a));
    }
}

}  // namespace troupe::test
