// Cross-backend op harness (in the style of ggml's test-backend-ops): one table of cases
// (op_cases.cpp); each case body is written once against the Backend interface and run on the
// CUDA backend and on the CPU backend with identical random inputs; every output the body
// declares is compared, CPU as the reference, with the tolerance stated in the table.
//
// A body draws its inputs from Run::rng (same seed on both backends, so the same numbers),
// uploads them with in(), declares outputs with out() (poisoned with NaN first, so an element a
// kernel forgets to write fails) or inout() (accumulating outputs start from given values), and
// wraps the op call in op() (run once to compare; timed repeatedly in perf mode).
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/backend.h"

namespace troupe::optest {

// |got - ref| <= atol + rtol*|ref| elementwise, and ||got - ref|| / ||ref|| <= rel_l2 when
// rel_l2 > 0. exact: integer outputs (tokens, clip codes) must match exactly.
struct Tol {
  double atol = 1e-6, rtol = 1e-5, rel_l2 = 0.0;
  bool exact = false;
};
inline Tol tol(double atol, double rtol, double rel_l2 = 0.0) { return Tol{atol, rtol, rel_l2, false}; }
inline Tol exact() { return Tol{0, 0, 0, true}; }

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen); }
  float normal(float sd) { return std::normal_distribution<float>(0.0f, sd)(gen); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); }
  std::vector<float> vec(size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
  std::vector<float> gauss(size_t n, float sd) {
    std::vector<float> v(n);
    for (auto& x : v) x = normal(sd);
    return v;
  }
};

struct Output {
  std::string name;
  Tol tol;
  std::vector<double> values;  // filled after the body ran
};

// One execution of a case body on one backend.
class Run {
 public:
  Run(Backend* be, uint64_t seed, Tol default_tol, int perf_reps);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  Backend* be;
  Rng rng;

  float* in(const std::vector<float>& host);
  int32_t* in_i(const std::vector<int32_t>& host);
  float* out(const std::string& name, size_t n);
  float* out(const std::string& name, size_t n, Tol t);
  float* inout(const std::string& name, const std::vector<float>& init);
  float* inout(const std::string& name, const std::vector<float>& init, Tol t);
  float* scratch(size_t n);  // device buffer that is neither input nor compared output
  // Results that live in host memory (sum_squares, dot, sample).
  double* host_f64(const std::string& name, size_t n, Tol t);
  float* host_f32(const std::string& name, size_t n, Tol t);
  int32_t* host_i32(const std::string& name, size_t n);

  // Runs f once; in perf mode also times it (ms per call, median of batches).
  void op(const std::function<void()>& f);

  bool is_cuda() const;
  void finish();  // download the outputs
  std::vector<Output>& outputs() { return outs_; }
  double ms_per_call() const { return ms_; }

 private:
  struct DevOut {
    size_t index;
    float* ptr;
    size_t n;
  };
  struct HostOut {
    size_t index;
    int kind;  // 0 f64, 1 f32, 2 i32
    size_t n;
  };
  void* alloc(size_t bytes);
  Tol default_tol_;
  int perf_reps_;
  double ms_ = 0.0;
  std::vector<void*> allocs_;
  std::vector<DevOut> dev_outs_;
  std::vector<HostOut> host_outs_;
  std::vector<std::vector<double>> host_f64_;
  std::vector<std::vector<float>> host_f32_;
  std::vector<std::vector<int32_t>> host_i32_;
  std::vector<Output> outs_;
};

struct Case {
  std::string name;
  Tol tol;                 // default for the case's outputs
  int gemm_precision = -1; // a CudaGemmPrecision for GEMM cases, -1 = leave the default
  double bytes = 0;        // minimal device traffic of one call (perf: GB/s), 0 = not reported
  double flops = 0;        // arithmetic of one call (perf: GFLOP/s), 0 = not reported
  std::function<void(Run&)> body;
};

std::vector<Case> op_cases();

}  // namespace troupe::optest
