// CPU GEMM: values against a float64 reference with an error bound derived from K, and the
// determinism contract (bitwise invariance to thread count, batch size and tile position).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/parallel.h"
#include "harness.h"

namespace {

using troupe::cpu::gemm;

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = float(int64_t(s >> 40) - (int64_t(1) << 23)) / float(1 << 23);  // [-1, 1)
  }
  return v;
}

// A problem with its storage: op(A) is [M,K], op(B) is [K,N], leading dims padded by `pad`.
struct Problem {
  bool ta, tb;
  int M, N, K, lda, ldb, ldc;
  std::vector<float> A, B, C;
  Problem(bool ta_, bool tb_, int M_, int N_, int K_, int pad, uint64_t seed)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_) {
    lda = (ta ? M : K) + pad;
    ldb = (tb ? K : N) + pad;
    ldc = N + pad;
    A = random_floats(size_t(ta ? K : M) * lda + 1, seed);
    B = random_floats(size_t(tb ? N : K) * ldb + 1, seed + 1);
    C = random_floats(size_t(M) * ldc + 1, seed + 2);
  }
  float a(int i, int k) const { return ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k]; }
  float b(int k, int j) const { return tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j]; }
  std::vector<float> run(float alpha, float beta, const std::vector<float>& c0) const {
    std::vector<float> c = c0;
    gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, c.data(), ldc);
    return c;
  }
};

// Checks every `stride`-th element of C against float64 math. A K-term fp32 dot product with
// fused multiply-adds errs by at most about K * 2^-24 * sum |a*b|; the epilogue adds a few ulps.
void check_against_reference(const Problem& p, float alpha, float beta, int stride = 1) {
  const std::vector<float> c0 = beta == 0.0f ? std::vector<float>(p.C.size(), std::nanf(""))
                                             : p.C;
  const std::vector<float> c = p.run(alpha, beta, c0);
  const double u = std::ldexp(1.0, -24);
  int bad = 0;
  size_t idx = 0;
  for (int i = 0; i < p.M; ++i)
    for (int j = 0; j < p.N; ++j, ++idx) {
      if (idx % stride) continue;
      double dot = 0, mag = 0;
      for (int k = 0; k < p.K; ++k) {
        const double t = double(p.a(i, k)) * p.b(k, j);
        dot += t;
        mag += std::fabs(t);
      }
      const double old = beta == 0.0f ? 0.0 : double(c0[size_t(i) * p.ldc + j]);
      const double ref = double(alpha) * dot + double(beta) * old;
      const double bound = (p.K + 4) * u * (std::fabs(alpha) * mag + std::fabs(beta * old)) + 1e-30;
      const double got = c[size_t(i) * p.ldc + j];
      if (!(std::fabs(got - ref) <= 2 * bound) && bad++ < 3)
        CHECK_MSG(false, "ta=" << p.ta << " tb=" << p.tb << " M=" << p.M << " N=" << p.N
                               << " K=" << p.K << " alpha=" << alpha << " beta=" << beta << " C["
                               << i << "][" << j << "] = " << got << " vs " << ref);
    }
  // The padding between rows of C (and past the end) is never written.
  for (int i = 0; i < p.M; ++i)
    for (int j = p.N; j < p.ldc; ++j) {
      const size_t q = size_t(i) * p.ldc + j;
      CHECK(std::memcmp(&c[q], &c0[q], sizeof(float)) == 0);
    }
  CHECK(std::memcmp(&c.back(), &c0.back(), sizeof(float)) == 0);
}

bool bitwise_equal(const float* x, const float* y) { return std::memcmp(x, y, sizeof(float)) == 0; }

struct ThreadScope {  // restores the caller's thread count when a test ends
  int saved = troupe::cpu::num_threads();
  ~ThreadScope() { troupe::cpu::set_thread_local_num_threads(saved); }
};

}  // namespace

TEST(gemm_matches_float64_reference_small_and_odd_shapes) {
  const int shapes[][3] = {{1, 1, 1},    {1, 37, 19},   {37, 1, 19},   {2, 3, 4},
                           {13, 17, 29}, {14, 32, 16},  {15, 33, 17},  {28, 64, 255},
                           {29, 65, 257}, {31, 47, 513}, {64, 96, 300}, {97, 131, 101},
                           {5, 200, 3}};
  const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 0.0f}, {1.0f, 1.0f}, {-1.5f, 0.25f}};
  uint64_t seed = 1;
  for (int t = 0; t < 4; ++t)
    for (auto& s : shapes)
      for (int pad : {0, 3})
        for (auto& x : ab) {
          Problem p(t & 1, t & 2, s[0], s[1], s[2], pad, seed++);
          check_against_reference(p, x[0], x[1]);
        }
}

TEST(gemm_matches_float64_reference_model_shapes) {
  // Training-like shapes (a sample of elements is checked to keep the float64 reference cheap).
  ThreadScope scope;
  troupe::cpu::set_thread_local_num_threads(2);
  uint64_t seed = 100;
  check_against_reference(Problem(false, true, 300, 320, 384, 0, seed++), 1.0f, 0.0f, 7);
  check_against_reference(Problem(false, false, 257, 128, 768, 5, seed++), 1.0f, 0.0f, 7);
  check_against_reference(Problem(true, false, 384, 128, 600, 0, seed++), 1.0f, 1.0f, 7);
  check_against_reference(Problem(true, true, 130, 530, 70, 1, seed++), 2.0f, -1.0f, 7);
  check_against_reference(Problem(false, true, 64, 1100, 512, 0, seed++), 1.0f, 0.0f, 5);
}

TEST(gemm_empty_and_k_zero) {
  // M or N of 0: nothing is touched.
  std::vector<float> c(16, 7.0f);
  float a = 1.0f, b = 1.0f;
  gemm(false, false, 0, 4, 3, 1.0f, &a, 3, &b, 4, 0.0f, c.data(), 4);
  gemm(false, false, 4, 0, 3, 1.0f, &a, 3, &b, 0, 0.0f, c.data(), 0);
  for (float x : c) CHECK(x == 7.0f);
  // K of 0: C = beta * C, and beta == 0 clears C even if it holds NaN.
  gemm(false, false, 2, 4, 0, 1.0f, nullptr, 0, nullptr, 4, 0.5f, c.data(), 4);
  for (int i = 0; i < 8; ++i) CHECK(c[i] == 3.5f);
  for (int i = 8; i < 16; ++i) CHECK(c[i] == 7.0f);
  std::fill(c.begin(), c.end(), std::nanf(""));
  gemm(true, true, 4, 4, 0, 1.0f, nullptr, 4, nullptr, 0, 0.0f, c.data(), 4);
  for (float x : c) CHECK(x == 0.0f);
}

TEST(gemm_beta_zero_never_reads_c) {
  // C full of NaN and infinities: a read would poison the result.
  for (int t = 0; t < 4; ++t) {
    Problem p(t & 1, t & 2, 45, 70, 300, 2, 500 + t);
    std::vector<float> c0(p.C.size());
    for (size_t i = 0; i < c0.size(); ++i)
      c0[i] = i % 2 ? std::nanf("") : std::numeric_limits<float>::infinity();
    const std::vector<float> c = p.run(1.0f, 0.0f, c0);
    int nonfinite = 0;
    for (int i = 0; i < p.M; ++i)
      for (int j = 0; j < p.N; ++j) nonfinite += !std::isfinite(c[size_t(i) * p.ldc + j]);
    CHECK(nonfinite == 0);
  }
}

TEST(gemm_rejects_bad_arguments) {
  std::vector<float> x(64, 1.0f);
  CHECK_THROWS(gemm(false, false, -1, 2, 2, 1.0f, x.data(), 2, x.data(), 2, 0.0f, x.data(), 2));
  CHECK_THROWS(gemm(false, false, 2, 2, 3, 1.0f, x.data(), 2, x.data(), 2, 0.0f, x.data(), 2));
  CHECK_THROWS(gemm(true, false, 4, 2, 3, 1.0f, x.data(), 3, x.data(), 2, 0.0f, x.data(), 2));
  CHECK_THROWS(gemm(false, true, 2, 4, 3, 1.0f, x.data(), 3, x.data(), 2, 0.0f, x.data(), 4));
  CHECK_THROWS(gemm(false, false, 2, 4, 3, 1.0f, x.data(), 3, x.data(), 4, 0.0f, x.data(), 3));
  CHECK_THROWS(gemm(false, false, 2, 2, 2, 1.0f, nullptr, 2, x.data(), 2, 0.0f, x.data(), 2));
  CHECK_THROWS(gemm(false, false, 2, 2, 2, 1.0f, x.data(), 2, x.data(), 2, 0.0f, nullptr, 2));
}

TEST(gemm_bitwise_invariant_to_thread_count) {
  ThreadScope scope;
  for (int t = 0; t < 4; ++t)
    for (float beta : {0.0f, 1.0f}) {
      // Shapes that split along M (M > N) and along N, with edge tiles on both sides.
      for (auto s : {std::vector<int>{301, 75, 700}, std::vector<int>{45, 333, 520}}) {
        Problem p(t & 1, t & 2, s[0], s[1], s[2], 1, 900 + t);
        std::vector<float> ref;
        for (int threads : {1, 2, 3}) {
          troupe::cpu::set_thread_local_num_threads(threads);
          const std::vector<float> c = p.run(0.75f, beta, p.C);
          if (ref.empty()) {
            ref = c;
            continue;
          }
          CHECK_MSG(std::memcmp(c.data(), ref.data(), c.size() * sizeof(float)) == 0,
                    "threads=" << threads << " ta=" << p.ta << " tb=" << p.tb << " M=" << p.M);
        }
      }
    }
}

TEST(gemm_bitwise_invariant_to_batch_composition) {
  // Row i of C computed inside a big M, alone (M = 1) and inside a smaller batch starting at a
  // different offset; likewise column j inside a big N, alone, and in a narrower slice. All must
  // agree bit for bit. K spans several K blocks and a ragged tail.
  ThreadScope scope;
  troupe::cpu::set_thread_local_num_threads(2);
  const int M = 157, N = 203, K = 777;
  for (int t = 0; t < 4; ++t)
    for (float beta : {0.0f, 0.5f}) {
      Problem p(t & 1, t & 2, M, N, K, 3, 1300 + t);
      const std::vector<float> full = p.run(1.25f, beta, p.C);
      auto a_rows = [&](int i0) { return p.ta ? p.A.data() + i0 : p.A.data() + size_t(i0) * p.lda; };
      auto b_cols = [&](int j0) { return p.tb ? p.B.data() + size_t(j0) * p.ldb : p.B.data() + j0; };
      // Rows: alone, and as part of [i0, i0 + m).
      for (int i : {0, 13, 14, 100, 156}) {
        std::vector<float> c = p.C;
        float* ci = c.data() + size_t(i) * p.ldc;
        gemm(p.ta, p.tb, 1, N, K, 1.25f, a_rows(i), p.lda, p.B.data(), p.ldb, beta, ci, p.ldc);
        bool same = true;
        for (int j = 0; j < N; ++j) same &= bitwise_equal(&ci[j], &full[size_t(i) * p.ldc + j]);
        CHECK_MSG(same, "row " << i << " alone, ta=" << p.ta << " tb=" << p.tb);
      }
      for (int i0 : {3, 50}) {
        const int m = 37;
        std::vector<float> c = p.C;
        float* c0 = c.data() + size_t(i0) * p.ldc;
        gemm(p.ta, p.tb, m, N, K, 1.25f, a_rows(i0), p.lda, p.B.data(), p.ldb, beta, c0, p.ldc);
        bool same = true;
        for (int i = i0; i < i0 + m; ++i)
          for (int j = 0; j < N; ++j)
            same &= bitwise_equal(&c[size_t(i) * p.ldc + j], &full[size_t(i) * p.ldc + j]);
        CHECK_MSG(same, "rows from " << i0 << ", ta=" << p.ta << " tb=" << p.tb);
      }
      // Columns: alone, and as part of [j0, j0 + n).
      for (int j : {0, 31, 32, 150, 202}) {
        std::vector<float> c = p.C;
        gemm(p.ta, p.tb, M, 1, K, 1.25f, p.A.data(), p.lda, b_cols(j), p.ldb, beta, c.data() + j,
             p.ldc);
        bool same = true;
        for (int i = 0; i < M; ++i)
          same &= bitwise_equal(&c[size_t(i) * p.ldc + j], &full[size_t(i) * p.ldc + j]);
        CHECK_MSG(same, "column " << j << " alone, ta=" << p.ta << " tb=" << p.tb);
      }
      for (int j0 : {5, 77}) {
        const int n = 41;
        std::vector<float> c = p.C;
        gemm(p.ta, p.tb, M, n, K, 1.25f, p.A.data(), p.lda, b_cols(j0), p.ldb, beta,
             c.data() + j0, p.ldc);
        bool same = true;
        for (int i = 0; i < M; ++i)
          for (int j = j0; j < j0 + n; ++j)
            same &= bitwise_equal(&c[size_t(i) * p.ldc + j], &full[size_t(i) * p.ldc + j]);
        CHECK_MSG(same, "columns from " << j0 << ", ta=" << p.ta << " tb=" << p.tb);
      }
    }
}

TEST(gemm_decode_rows_match_prefill_rows) {
  // The sampler's case: y = x @ W^T for one sequence alone vs inside a batch of 64 (trans_b).
  ThreadScope scope;
  const int K = 512, N = 1536;
  std::vector<float> W = random_floats(size_t(N) * K, 77), X = random_floats(size_t(64) * K, 78);
  std::vector<float> batch(size_t(64) * N), one(N);
  troupe::cpu::set_thread_local_num_threads(2);
  gemm(false, true, 64, N, K, 1.0f, X.data(), K, W.data(), K, 0.0f, batch.data(), N);
  troupe::cpu::set_thread_local_num_threads(1);
  for (int r : {0, 17, 63}) {
    gemm(false, true, 1, N, K, 1.0f, X.data() + size_t(r) * K, K, W.data(), K, 0.0f, one.data(), N);
    CHECK(std::memcmp(one.data(), batch.data() + size_t(r) * N, N * sizeof(float)) == 0);
  }
}

TEST(gemm_peak_measurement_is_sane) {
  const troupe::cpu::GemmPeak peak = troupe::cpu::measure_gemm_peak(0.05);
  CHECK(peak.gflops > 0.0 && std::isfinite(peak.gflops));
  CHECK(peak.threads == troupe::cpu::num_threads());
  CHECK(peak.size > 0);
}

TEST(gemm_packed_weight_is_bitwise_gemm_with_transposed_b) {
  // The prepacked path (generation) must give exactly what the plain GEMM gives (training and
  // forward_logprobs), so sampled log-probs match recomputed ones bit for bit; the plain GEMM is
  // checked against float64 above. Shapes cover edge panels (N % 32), several K blocks
  // (K > 256, K % 256), splits along M and along N, and 1-3 threads.
  ThreadScope scope;
  const int shapes[][3] = {{1, 1, 1},    {13, 37, 19},  {64, 320, 256}, {29, 65, 257},
                           {64, 1100, 512}, {70, 33, 600}, {301, 75, 700}, {5, 200, 3}};
  uint64_t seed = 4000;
  for (auto& s : shapes)
    for (int threads : {1, 2, 3})
      for (float beta : {0.0f, 1.0f}) {
        troupe::cpu::set_thread_local_num_threads(threads);
        Problem p(false, true, s[0], s[1], s[2], 2, seed++);
        std::vector<float> packed(troupe::cpu::packed_weight_floats(p.N, p.K) + 16);
        float* dst = packed.data();
        while (reinterpret_cast<uintptr_t>(dst) % 64) ++dst;  // the contract asks for 64 bytes
        troupe::cpu::pack_weight(p.B.data(), p.N, p.K, p.ldb, dst);
        std::vector<float> c = p.C;
        troupe::cpu::gemm_packed(p.M, p.N, p.K, 0.75f, p.A.data(), p.lda, dst, beta, c.data(),
                                 p.ldc);
        const std::vector<float> ref = p.run(0.75f, beta, p.C);
        CHECK_MSG(std::memcmp(c.data(), ref.data(), c.size() * sizeof(float)) == 0,
                  "M=" << p.M << " N=" << p.N << " K=" << p.K << " threads=" << threads
                       << " beta=" << beta);
      }
  std::vector<float> w(64), out(64);
  CHECK_THROWS(troupe::cpu::pack_weight(w.data(), 0, 8, 8, out.data()));
  CHECK_THROWS(troupe::cpu::pack_weight(w.data(), 8, 8, 4, out.data()));
  CHECK_THROWS(troupe::cpu::gemm_packed(2, 8, 8, 1.0f, w.data(), 4, out.data(), 0.0f, w.data(), 8));
  CHECK(troupe::cpu::packed_weight_floats(0, 8) == 0);
}
