// `troupe_native_bench gemm [--preset tiny|small|medium|all] [--threads 1,2] [--seconds S]`
// Times the CPU GEMM on the linear-layer shapes of the model presets (forward y = x W^T, input
// grad dX = dY W, weight grad dW += dY^T X, and 64-row decode), at each thread count. Reports
// ms, GFLOP/s and % of two ceilings measured here: the GEMM peak (measure_gemm_peak, a large
// square GEMM at that thread count) and the FMA peak (independent FMAs in registers, no memory).
// Prints a human table, then one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace {

using clock_type = std::chrono::steady_clock;

struct Preset {
  const char* name;
  int hidden, mlp, heads, kv_heads, head_dim, vocab;
};
const Preset kPresets[] = {{"tiny", 128, 384, 4, 2, 32, 320},
                           {"small", 256, 768, 8, 4, 32, 320},
                           {"medium", 512, 1536, 8, 4, 64, 320}};
constexpr int kTokens = 2048;  // rows of a training micro-batch
constexpr int kDecodeRows = 64;

struct Shape {
  std::string preset, layer, pass;  // pass: fwd | dX | dW | decode
  bool ta, tb;
  int M, N, K;
  float beta;
};

std::vector<Shape> shapes_of(const Preset& p) {
  struct Linear {
    const char* name;
    int in, out;
  };
  const Linear linears[] = {{"qkv", p.hidden, (p.heads + 2 * p.kv_heads) * p.head_dim},
                            {"o", p.heads * p.head_dim, p.hidden},
                            {"gate_up", p.hidden, 2 * p.mlp},
                            {"down", p.mlp, p.hidden},
                            {"lm_head", p.hidden, p.vocab}};
  std::vector<Shape> out;
  for (const auto& l : linears) {
    out.push_back({p.name, l.name, "fwd", false, true, kTokens, l.out, l.in, 0.0f});
    out.push_back({p.name, l.name, "dX", false, false, kTokens, l.in, l.out, 0.0f});
    out.push_back({p.name, l.name, "dW", true, false, l.out, l.in, kTokens, 1.0f});
  }
  for (const auto& l : linears)
    out.push_back({p.name, l.name, "decode", false, true, kDecodeRows, l.out, l.in, 0.0f});
  return out;
}

// Median and best time of one GEMM shape over repeated calls lasting about `seconds`.
struct Timing {
  double median_ms, best_ms;
};
Timing time_shape(const Shape& s, double seconds) {
  const int a_rows = s.ta ? s.K : s.M, a_cols = s.ta ? s.M : s.K;
  const int b_rows = s.tb ? s.N : s.K, b_cols = s.tb ? s.K : s.N;
  std::vector<float> A(size_t(a_rows) * a_cols), B(size_t(b_rows) * b_cols), C(size_t(s.M) * s.N);
  for (size_t i = 0; i < A.size(); ++i) A[i] = float(int(i % 13) - 6) * 0.01f;
  for (size_t i = 0; i < B.size(); ++i) B[i] = float(int(i % 11) - 5) * 0.01f;
  auto call = [&] {
    troupe::cpu::gemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), a_cols, B.data(), b_cols, s.beta,
                      C.data(), s.N);
  };
  call();  // warm-up: page faults, packing buffers, thread pool
  std::vector<double> ms;
  const auto end = clock_type::now() + std::chrono::duration<double>(seconds);
  while (ms.size() < 5 || (clock_type::now() < end && ms.size() < 2000)) {
    const auto t0 = clock_type::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[0]};
}

// Register-only FMA throughput at the current thread count: the hardware ceiling.
double measure_fma_peak_gflops() {
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#if defined(__AVX512F__)
  using vec = __m512;
  constexpr int lanes = 16;
#define TROUPE_FMA_SET1 _mm512_set1_ps
#define TROUPE_FMA _mm512_fmadd_ps
#define TROUPE_FMA_STORE _mm512_storeu_ps
#else
  using vec = __m256;
  constexpr int lanes = 8;
#define TROUPE_FMA_SET1 _mm256_set1_ps
#define TROUPE_FMA _mm256_fmadd_ps
#define TROUPE_FMA_STORE _mm256_storeu_ps
#endif
  constexpr int chains = 12;  // > FMA latency x throughput on current x86 cores
  constexpr long iters = 200'000;  // ~1 ms per try: many short tries, best one, as for the GEMMs
  double best = 0;
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<float> sink(64 * 16);
    int used = 1;
    const auto t0 = clock_type::now();
    troupe::cpu::run_on_threads([&](int tid, int nt) {
      if (tid == 0) used = nt;
      vec acc[chains];
#pragma GCC unroll 16
      for (int c = 0; c < chains; ++c) acc[c] = TROUPE_FMA_SET1(float(c + tid));
      const vec x = TROUPE_FMA_SET1(0.999999f), y = TROUPE_FMA_SET1(1e-7f);
      for (long i = 0; i < iters; ++i)
#pragma GCC unroll 16
        for (int c = 0; c < chains; ++c) acc[c] = TROUPE_FMA(acc[c], x, y);
      for (int c = 1; c < chains; ++c) acc[0] = TROUPE_FMA(acc[c], x, acc[0]);
      TROUPE_FMA_STORE(sink.data() + 16 * (tid % 64), acc[0]);  // keeps the loop alive
    });
    const double sec = std::chrono::duration<double>(clock_type::now() - t0).count();
    best = std::max(best, 2.0 * lanes * chains * double(iters) * used / sec * 1e-9);
  }
#undef TROUPE_FMA_SET1
#undef TROUPE_FMA
#undef TROUPE_FMA_STORE
  return best;
#else
  return 0.0;
#endif
}

}  // namespace

int gemm_bench_main(int argc, char** argv) {
  std::string preset = "all";
  std::vector<int> threads = {1, 2};
  double seconds = 0.25;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--preset" && i + 1 < argc) {
      preset = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      threads.clear();
      for (const char* p = argv[++i]; *p;) {
        threads.push_back(std::max(1, std::atoi(p)));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    }
  }
  std::vector<Shape> shapes;
  for (const auto& p : kPresets)
    if (preset == "all" || preset == p.name) {
      auto s = shapes_of(p);
      shapes.insert(shapes.end(), s.begin(), s.end());
    }
  if (shapes.empty()) {
    std::fprintf(stderr, "gemm bench: unknown preset '%s' (tiny, small, medium, all)\n",
                 preset.c_str());
    return 2;
  }

  // Rates are given for the median and for the best call; percentages use the best call, the
  // same statistic as the peaks, which keeps them meaningful on a machine shared with other work.
  const int saved_threads = troupe::cpu::num_threads();
  std::string json = std::string("{\"bench\":\"gemm\",\"isa\":\"") + troupe::cpu::gemm_isa() +
                     "\",\"runs\":[";
  for (size_t ti = 0; ti < threads.size(); ++ti) {
    troupe::cpu::set_thread_local_num_threads(threads[ti]);
    const troupe::cpu::GemmPeak peak = troupe::cpu::measure_gemm_peak(0.5);
    const double fma_peak = measure_fma_peak_gflops();
    std::printf("\nthreads=%d  isa=%s  GEMM peak %.1f GFLOP/s (%d^3, best of 0.5 s)  "
                "FMA peak %.1f GFLOP/s\n",
                peak.threads, troupe::cpu::gemm_isa(), peak.gflops, peak.size, fma_peak);
    std::printf("%-7s %-8s %-6s %5s %5s %5s %9s %9s %8s %8s %7s %7s\n", "preset", "layer",
                "pass", "M", "N", "K", "ms(med)", "ms(best)", "GF(med)", "GF(best)", "%gemm",
                "%fma");
    char buf[640];
    std::snprintf(buf, sizeof buf,
                  "%s{\"threads\":%d,\"gemm_peak_gflops\":%.2f,\"fma_peak_gflops\":%.2f,"
                  "\"shapes\":[",
                  ti ? "," : "", peak.threads, peak.gflops, fma_peak);
    json += buf;
    std::string last_preset;
    double sum_flops = 0, sum_med = 0, sum_best = 0;  // training passes of one preset
    auto print_total = [&] {
      if (sum_best > 0) {
        const double gf = sum_flops / sum_best * 1e-6;
        std::printf("%-7s %-8s %-6s %17s %9.3f %9.3f %8.1f %8.1f %6.1f%% %6.1f%%\n",
                    last_preset.c_str(), "total", "train", "", sum_med, sum_best,
                    sum_flops / sum_med * 1e-6, gf, 100.0 * gf / peak.gflops,
                    fma_peak > 0 ? 100.0 * gf / fma_peak : 0.0);
      }
      sum_flops = sum_med = sum_best = 0;
    };
    for (size_t si = 0; si < shapes.size(); ++si) {
      const Shape& s = shapes[si];
      if (s.preset != last_preset) {
        print_total();
        last_preset = s.preset;
      }
      const Timing t = time_shape(s, seconds);
      const double flops = 2.0 * s.M * s.N * double(s.K);
      const double gf_med = flops / t.median_ms * 1e-6, gf_best = flops / t.best_ms * 1e-6;
      if (s.pass != "decode") {
        sum_flops += flops;
        sum_med += t.median_ms;
        sum_best += t.best_ms;
      }
      std::printf("%-7s %-8s %-6s %5d %5d %5d %9.3f %9.3f %8.1f %8.1f %6.1f%% %6.1f%%\n",
                  s.preset.c_str(), s.layer.c_str(), s.pass.c_str(), s.M, s.N, s.K, t.median_ms,
                  t.best_ms, gf_med, gf_best, 100.0 * gf_best / peak.gflops,
                  fma_peak > 0 ? 100.0 * gf_best / fma_peak : 0.0);
      std::snprintf(buf, sizeof buf,
                    "%s{\"preset\":\"%s\",\"layer\":\"%s\",\"pass\":\"%s\",\"trans_a\":%s,"
                    "\"trans_b\":%s,\"M\":%d,\"N\":%d,\"K\":%d,\"ms\":%.4f,\"best_ms\":%.4f,"
                    "\"gflops\":%.2f,\"best_gflops\":%.2f,\"pct_gemm_peak\":%.1f}",
                    si ? "," : "", s.preset.c_str(), s.layer.c_str(), s.pass.c_str(),
                    s.ta ? "true" : "false", s.tb ? "true" : "false", s.M, s.N, s.K,
                    t.median_ms, t.best_ms, gf_med, gf_best, 100.0 * gf_best / peak.gflops);
      json += buf;
    }
    print_total();
    json += "]}";
  }
  troupe::cpu::set_thread_local_num_threads(saved_threads);
  json += "]}";
  std::printf("%s\n", json.c_str());
  return 0;
}
