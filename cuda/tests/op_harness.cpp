// Runner of the cross-backend op table: `troupe_cuda_tests [--perf] [--reps N] [filter...]`.
// Each case runs on CUDA and on the CPU backend with the same seed; outputs are compared with
// the case's tolerances. --perf then times every selected case on CUDA (and prints a table and a
// JSON line). The last line is always "N passed, M failed"; the exit code is non-zero on failure
// (and when no GPU is present: the harness has nothing to check then).
#include "op_harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "cpu/cpu_backend.h"
#include "cuda_backend.h"

namespace troupe::optest {

Run::Run(Backend* b, uint64_t seed, Tol default_tol, int perf_reps)
    : be(b), rng(seed), default_tol_(default_tol), perf_reps_(perf_reps) {}

Run::~Run() {
  for (void* p : allocs_) be->free_bytes(p);
}

void* Run::alloc(size_t bytes) {
  void* p = be->malloc_bytes(bytes ? bytes : 4);
  allocs_.push_back(p);
  return p;
}

float* Run::in(const std::vector<float>& host) {
  auto* p = static_cast<float*>(alloc(host.size() * sizeof(float)));
  be->upload(p, host.data(), host.size() * sizeof(float));
  return p;
}
int32_t* Run::in_i(const std::vector<int32_t>& host) {
  auto* p = static_cast<int32_t*>(alloc(host.size() * sizeof(int32_t)));
  be->upload(p, host.data(), host.size() * sizeof(int32_t));
  return p;
}
float* Run::out(const std::string& name, size_t n) { return out(name, n, default_tol_); }
float* Run::out(const std::string& name, size_t n, Tol t) {
  return inout(name, std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()), t);
}
float* Run::inout(const std::string& name, const std::vector<float>& init) {
  return inout(name, init, default_tol_);
}
float* Run::inout(const std::string& name, const std::vector<float>& init, Tol t) {
  float* p = in(init);
  dev_outs_.push_back({outs_.size(), p, init.size()});
  outs_.push_back({name, t, {}});
  return p;
}
float* Run::scratch(size_t n) { return static_cast<float*>(alloc(n * sizeof(float))); }

double* Run::host_f64(const std::string& name, size_t n, Tol t) {
  host_f64_.emplace_back(n, std::numeric_limits<double>::quiet_NaN());
  host_outs_.push_back({outs_.size(), 0, host_f64_.size() - 1});
  outs_.push_back({name, t, {}});
  return host_f64_.back().data();
}
float* Run::host_f32(const std::string& name, size_t n, Tol t) {
  host_f32_.emplace_back(n, std::numeric_limits<float>::quiet_NaN());
  host_outs_.push_back({outs_.size(), 1, host_f32_.size() - 1});
  outs_.push_back({name, t, {}});
  return host_f32_.back().data();
}
int32_t* Run::host_i32(const std::string& name, size_t n) {
  host_i32_.emplace_back(n, -1);
  host_outs_.push_back({outs_.size(), 2, host_i32_.size() - 1});
  outs_.push_back({name, exact(), {}});
  return host_i32_.back().data();
}

bool Run::is_cuda() const { return std::strncmp(be->name(), "cuda", 4) == 0; }

void Run::op(const std::function<void()>& f) {
  f();
  be->synchronize();
  if (perf_reps_ <= 0) return;
  // Batches of back-to-back calls (launch gaps overlap with the previous call, as in real use),
  // one synchronisation per batch; the median batch gives ms per call.
  using clk = std::chrono::steady_clock;
  std::vector<double> ms;
  for (int batch = 0; batch < 5; ++batch) {
    auto t0 = clk::now();
    for (int r = 0; r < perf_reps_; ++r) f();
    be->synchronize();
    ms.push_back(std::chrono::duration<double, std::milli>(clk::now() - t0).count() / perf_reps_);
  }
  std::sort(ms.begin(), ms.end());
  ms_ = ms[ms.size() / 2];
}

void Run::finish() {
  be->synchronize();
  // The host vectors are reallocated while a body declares outputs, so copy at the end only.
  for (const DevOut& o : dev_outs_) {
    std::vector<float> h(o.n);
    be->download(h.data(), o.ptr, o.n * sizeof(float));
    outs_[o.index].values.assign(h.begin(), h.end());
  }
  for (const HostOut& o : host_outs_) {
    auto& v = outs_[o.index].values;
    if (o.kind == 0) v.assign(host_f64_[o.n].begin(), host_f64_[o.n].end());
    else if (o.kind == 1) v.assign(host_f32_[o.n].begin(), host_f32_[o.n].end());
    else v.assign(host_i32_[o.n].begin(), host_i32_[o.n].end());
  }
}

namespace {

struct Verdict {
  bool ok = true;
  std::string detail;
};

// Compares one output; the message names the worst element.
Verdict compare(const Output& got, const Output& ref) {
  Verdict v;
  std::ostringstream os;
  if (got.values.size() != ref.values.size()) {
    os << got.name << ": size " << got.values.size() << " vs " << ref.values.size();
    return {false, os.str()};
  }
  const Tol& t = ref.tol;
  size_t bad = 0, worst = 0;
  double worst_excess = -std::numeric_limits<double>::infinity(), max_err = 0.0;
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.values.size(); ++i) {
    const double a = got.values[i], b = ref.values[i];
    const double err = std::fabs(a - b);
    const double excess = t.exact ? (a == b ? -1.0 : 1.0) : err - (t.atol + t.rtol * std::fabs(b));
    if (!(excess <= 0.0)) ++bad;  // NaN counts as bad
    if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
    if (std::isfinite(err)) max_err = std::max(max_err, err);
    num += (a - b) * (a - b);
    den += b * b;
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool l2_ok = t.rel_l2 <= 0.0 || (rel <= t.rel_l2);
  v.ok = bad == 0 && l2_ok;
  os << got.name << ": max|err| " << max_err << ", rel_l2 " << rel;
  if (bad) {
    os << "; " << bad << "/" << ref.values.size() << " off, worst [" << worst << "] got "
       << got.values[worst] << " want " << ref.values[worst];
  }
  if (!l2_ok) os << "; rel_l2 over " << t.rel_l2;
  v.detail = os.str();
  return v;
}

bool matches(const std::string& name, const std::vector<std::string>& filters) {
  if (filters.empty()) return true;
  for (const auto& f : filters)
    if (name.find(f) != std::string::npos) return true;
  return false;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

}  // namespace
}  // namespace troupe::optest

int main(int argc, char** argv) {
  using namespace troupe;
  using namespace troupe::optest;
  bool perf = false, verbose = false, cpu_only = false, determinism = true;
  int reps = 20;
  std::vector<std::string> filters;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--perf") perf = true;
    else if (a == "-v" || a == "--verbose") verbose = true;
    else if (a == "--cpu-only") cpu_only = true;
    else if (a == "--no-determinism") determinism = false;
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--list") {
      for (const Case& c : op_cases()) std::printf("%s\n", c.name.c_str());
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: %s [--perf] [--reps N] [-v] [--list] [--cpu-only] [--no-determinism]\n"
          "          [name-substring...]\n"
          "  every case also runs twice on the GPU and must give the same bits both times,\n"
          "  unless --no-determinism\n"
          "  --cpu-only: run every case twice on the CPU backend (no GPU needed): checks the\n"
          "              harness plumbing and that the CPU kernels are deterministic\n",
          argv[0]);
      return 0;
    } else filters.push_back(a);
  }

  std::string why;
  Backend* cpu = cpu_backend();
  Backend* gpu = cpu;
  if (!cpu_only) {
    if (!cuda_available(&why)) {
      std::printf("no CUDA device: %s\n0 passed, 1 failed\n", why.c_str());
      return 1;
    }
    gpu = cuda_backend(0);
  }
  std::printf("device %s, cuBLAS %s\n", gpu->name(), cuda_has_cublas() ? "yes" : "no");
  const CudaGemmPrecision default_prec = cpu_only ? CudaGemmPrecision::Tf32 : cuda_gemm_precision(0);
  const bool set_prec = !cpu_only;

  int passed = 0, failed = 0;
  struct PerfRow {
    std::string name;
    double ms, gbs, gflops;
  };
  std::vector<PerfRow> perf_rows;
  const std::vector<Case> cases = op_cases();
  uint64_t seed = 0x5eed;
  for (const Case& c : cases) {
    ++seed;
    if (!matches(c.name, filters)) continue;
    bool ok = true;
    std::vector<std::string> lines;
    auto t0 = std::chrono::steady_clock::now();
    try {
      if (set_prec && c.gemm_precision >= 0)
        cuda_set_gemm_precision(static_cast<CudaGemmPrecision>(c.gemm_precision), 0);
      Run rg(gpu, seed, c.tol, 0), rc(cpu, seed, c.tol, 0);
      c.body(rg);
      rg.finish();
      c.body(rc);
      rc.finish();
      auto& go = rg.outputs();
      auto& co = rc.outputs();
      if (go.size() != co.size() || go.empty()) {
        ok = false;
        lines.push_back("case declared different outputs on the two backends");
      }
      for (size_t i = 0; ok && i < go.size(); ++i) {
        Verdict v = compare(go[i], co[i]);
        ok = ok && v.ok;
        lines.push_back(v.detail);
      }
      // Same inputs, same bits: the kernels reduce in a fixed order (no float atomics).
      if (ok && determinism) {
        Run r2(gpu, seed, c.tol, 0);
        c.body(r2);
        r2.finish();
        for (size_t i = 0; i < go.size(); ++i) {
          const auto& a = go[i].values;
          const auto& b = r2.outputs()[i].values;
          if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double))) {
            ok = false;
            lines.push_back(go[i].name + ": a second run on the same inputs gave different bits");
          }
        }
      }
      if (perf) {
        Run rp(gpu, seed, c.tol, reps);
        c.body(rp);
        const double ms = rp.ms_per_call();
        perf_rows.push_back({c.name, ms, c.bytes > 0 ? c.bytes / (ms * 1e6) : 0.0,
                             c.flops > 0 ? c.flops / (ms * 1e6) : 0.0});
      }
    } catch (const std::exception& e) {
      ok = false;
      lines.push_back(std::string("exception: ") + e.what());
    }
    if (set_prec && c.gemm_precision >= 0) cuda_set_gemm_precision(default_prec, 0);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %s (%.0f ms)\n", ok ? "PASS" : "FAIL", c.name.c_str(), ms);
    if (!ok || verbose)
      for (const auto& l : lines) std::printf("    %s\n", l.c_str());
    std::fflush(stdout);
    (ok ? passed : failed)++;
  }

  if (perf && !perf_rows.empty()) {
    std::printf("\n%-44s %12s %10s %10s\n", "case (CUDA)", "ms/call", "GB/s", "GFLOP/s");
    for (const auto& r : perf_rows)
      std::printf("%-44s %12.4f %10.1f %10.1f\n", r.name.c_str(), r.ms, r.gbs, r.gflops);
    std::string js = "{\"device\":\"" + json_escape(gpu->name()) + "\",\"cases\":[";
    for (size_t i = 0; i < perf_rows.size(); ++i) {
      char buf[512];
      std::snprintf(buf, sizeof buf, "%s{\"name\":\"%s\",\"ms\":%.5f,\"gbs\":%.2f,\"gflops\":%.2f}",
                    i ? "," : "", json_escape(perf_rows[i].name).c_str(), perf_rows[i].ms,
                    perf_rows[i].gbs, perf_rows[i].gflops);
      js += buf;
    }
    js += "]}";
    std::printf("%s\n", js.c_str());
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
