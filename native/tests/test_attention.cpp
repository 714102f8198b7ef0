// CPU attention kernels against float64 references that materialise the full score matrix:
// forward (out, lse), backward (against central finite differences, and against the analytic
// float64 gradient for the larger head dims), kv-cache write + decode against the last row of
// the full forward, bitwise invariance to the thread count, and argument checks.
#include <cmath>
#include <limits>
#include <numeric>

#include "../cpu/kernels.h"
#include "harness.h"
#include "layer_test_util.h"

namespace troupe::test {
namespace {

namespace cpu = ::troupe::cpu;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct AttnShape {
  int Hq, Hkv, hd;
  std::vector<int> lens;
  std::vector<int32_t> cu() const {
    std::vector<int32_t> c(1, 0);
    for (int l : lens) c.push_back(c.back() + l);
    return c;
  }
  int T() const { return std::accumulate(lens.begin(), lens.end(), 0); }
  int max_len() const { return lens.empty() ? 0 : *std::max_element(lens.begin(), lens.end()); }
  int heads() const { return Hq + 2 * Hkv; }
  size_t row() const { return static_cast<size_t>(heads()) * hd; }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(hd)); }
};

// ---- float64 references ----

// One sequence: rows [0, L) of x (packed qkv rows of that sequence). out [L, Hq*hd], lse [L, Hq].
void attention_ref_seq(const AttnShape& s, const double* x, int L, VecD* out, VecD* lse) {
  const int group = s.Hq / s.Hkv, hd = s.hd;
  const size_t row = s.row();
  out->assign(static_cast<size_t>(L) * s.Hq * hd, 0.0);
  lse->assign(static_cast<size_t>(L) * s.Hq, 0.0);
  VecD sc(L);
  for (int h = 0; h < s.Hq; ++h) {
    const int g = h / group;
    for (int i = 0; i < L; ++i) {
      const double* q = x + i * row + h * hd;
      double m = -INFINITY;
      for (int j = 0; j <= i; ++j) {
        const double* k = x + j * row + (s.Hq + g) * hd;
        double d = 0;
        for (int e = 0; e < hd; ++e) d += q[e] * k[e];
        sc[j] = d * s.scale();
        m = std::max(m, sc[j]);
      }
      double sum = 0;
      for (int j = 0; j <= i; ++j) sum += std::exp(sc[j] - m);
      const double l = m + std::log(sum);
      (*lse)[static_cast<size_t>(i) * s.Hq + h] = l;
      double* o = out->data() + (static_cast<size_t>(i) * s.Hq + h) * hd;
      for (int j = 0; j <= i; ++j) {
        const double p = std::exp(sc[j] - l);
        const double* v = x + j * row + (s.Hq + s.Hkv + g) * hd;
        for (int e = 0; e < hd; ++e) o[e] += p * v[e];
      }
    }
  }
}

void attention_ref(const AttnShape& s, const VecD& qkv, VecD* out, VecD* lse) {
  out->assign(static_cast<size_t>(s.T()) * s.Hq * s.hd, 0.0);
  lse->assign(static_cast<size_t>(s.T()) * s.Hq, 0.0);
  const auto cu = s.cu();
  for (size_t q = 0; q < s.lens.size(); ++q) {
    VecD o, l;
    attention_ref_seq(s, qkv.data() + cu[q] * s.row(), s.lens[q], &o, &l);
    std::copy(o.begin(), o.end(), out->begin() + static_cast<size_t>(cu[q]) * s.Hq * s.hd);
    std::copy(l.begin(), l.end(), lse->begin() + static_cast<size_t>(cu[q]) * s.Hq);
  }
}

// Analytic float64 gradient of sum(dout * out) with respect to qkv, from the full matrices.
VecD attention_backward_ref(const AttnShape& s, const VecD& x, const VecD& dout) {
  const int group = s.Hq / s.Hkv, hd = s.hd;
  const size_t row = s.row(), orow = static_cast<size_t>(s.Hq) * hd;
  VecD dx(x.size(), 0.0), out, lse;
  attention_ref(s, x, &out, &lse);
  const auto cu = s.cu();
  for (size_t q = 0; q < s.lens.size(); ++q) {
    const int t0 = cu[q], L = s.lens[q];
    for (int h = 0; h < s.Hq; ++h) {
      const int g = h / group;
      const size_t qo = h * hd, ko = (s.Hq + g) * hd, vo = (s.Hq + s.Hkv + g) * hd;
      for (int i = 0; i < L; ++i) {
        const size_t ti = t0 + i;
        double D = 0;
        for (int e = 0; e < hd; ++e) D += dout[ti * orow + qo + e] * out[ti * orow + qo + e];
        for (int j = 0; j <= i; ++j) {
          const size_t tj = t0 + j;
          double sc = 0, dp = 0;
          for (int e = 0; e < hd; ++e) {
            sc += x[ti * row + qo + e] * x[tj * row + ko + e];
            dp += dout[ti * orow + qo + e] * x[tj * row + vo + e];
          }
          const double p = std::exp(sc * s.scale() - lse[ti * s.Hq + h]);
          const double ds = p * (dp - D);
          for (int e = 0; e < hd; ++e) {
            dx[ti * row + qo + e] += s.scale() * ds * x[tj * row + ko + e];
            dx[tj * row + ko + e] += s.scale() * ds * x[ti * row + qo + e];
            dx[tj * row + vo + e] += p * dout[ti * orow + qo + e];
          }
        }
      }
    }
  }
  return dx;
}

// ---- kernel runners ----

struct AttnRun {
  VecF out, lse, dqkv;
};

AttnRun run_forward(const AttnShape& s, const VecF& qkv) {
  const auto cu = s.cu();
  AttnRun r;
  r.out.assign(static_cast<size_t>(s.T()) * s.Hq * s.hd, kNaN);
  r.lse.assign(static_cast<size_t>(s.T()) * s.Hq, kNaN);
  cpu::attention_forward(qkv.data(), cu.data(), static_cast<int>(s.lens.size()), s.max_len(),
                         s.T(), s.Hq, s.Hkv, s.hd, static_cast<float>(s.scale()), r.out.data(),
                         r.lse.data());
  return r;
}

void run_backward(const AttnShape& s, const VecF& qkv, const VecF& dout, AttnRun* r) {
  const auto cu = s.cu();
  r->dqkv.assign(qkv.size(), kNaN);  // the backward overwrites: NaN must not survive
  cpu::attention_backward(dout.data(), qkv.data(), r->out.data(), r->lse.data(), cu.data(),
                          static_cast<int>(s.lens.size()), s.max_len(), s.T(), s.Hq, s.Hkv, s.hd,
                          static_cast<float>(s.scale()), r->dqkv.data());
}

std::string describe(const AttnShape& s) {
  std::string d = "Hq " + std::to_string(s.Hq) + " Hkv " + std::to_string(s.Hkv) + " hd " +
                  std::to_string(s.hd) + " lens";
  for (int l : s.lens) d += " " + std::to_string(l);
  return d;
}

// ---- tests ----

TEST(attention_forward_matches_reference) {
  const std::vector<int> mixed = {1, 5, 17, 64, 70, 130};
  const AttnShape shapes[] = {
      {4, 4, 8, mixed},   {4, 2, 20, mixed},   {8, 2, 64, mixed}, {16, 8, 128, mixed},
      {4, 1, 16, {3, 0, 9}},  // an empty sequence in the batch
      {2, 1, 64, {600}},      // many key blocks
  };
  uint64_t seed = 100;
  for (const AttnShape& s : shapes) {
    Rng rng(seed++);
    VecF qkv = rng.vec(static_cast<size_t>(s.T()) * s.row(), -2, 2);
    AttnRun r = run_forward(s, qkv);
    VecD ro, rl;
    attention_ref(s, to_double(qkv), &ro, &rl);
    expect_close("attention out " + describe(s), r.out, ro, 2e-5, 1e-4);
    expect_close("attention lse " + describe(s), r.lse, rl, 1e-5, 1e-5);
  }
}

TEST(attention_backward_fd) {
  const std::vector<int> lens = {1, 5, 17, 64, 70};
  const AttnShape shapes[] = {{4, 4, 8, lens}, {4, 2, 8, lens}, {8, 2, 8, lens}};  // GQA 1, 2, 4
  uint64_t seed = 200;
  for (const AttnShape& s : shapes) {
    Rng rng(seed++);
    VecF qkv = rng.vec(static_cast<size_t>(s.T()) * s.row(), -2, 2);
    VecF R = rng.vec(static_cast<size_t>(s.T()) * s.Hq * s.hd);
    AttnRun r = run_forward(s, qkv);
    run_backward(s, qkv, R, &r);
    const VecD analytic = attention_backward_ref(s, to_double(qkv), to_double(R));
    const auto cu = s.cu();
    // Each sequence's inputs only reach that sequence's outputs, so finite differences
    // re-evaluate one sequence at a time.
    for (size_t q = 0; q < s.lens.size(); ++q) {
      const int t0 = cu[q], L = s.lens[q];
      const size_t off = t0 * s.row(), n = L * s.row(), orow = static_cast<size_t>(s.Hq) * s.hd;
      const VecF x(qkv.begin() + off, qkv.begin() + off + n);
      const VecD Rs(R.begin() + t0 * orow, R.begin() + (t0 + L) * orow);
      auto loss = [&](const VecD& xv) {
        VecD o, l;
        attention_ref_seq(s, xv.data(), L, &o, &l);
        double sum = 0;
        for (size_t i = 0; i < o.size(); ++i) sum += o[i] * Rs[i];
        return sum;
      };
      const auto coords = sample_coords(n, 400, rng);
      const VecD fd = fd_gradient(x, loss, coords);
      const std::string tag = describe(s) + " seq " + std::to_string(q);
      expect_grad("attention dqkv " + tag, r.dqkv.data() + off, coords, fd);
      // The analytic reference used by the next test must itself agree with the differences.
      const VecF analytic_f(analytic.begin() + off, analytic.begin() + off + n);
      expect_grad("reference dqkv " + tag, analytic_f.data(), coords, fd, 1e-5);
    }
  }
}

TEST(attention_backward_matches_analytic_reference) {
  const std::vector<int> mixed = {1, 5, 17, 64, 70, 130};
  const AttnShape shapes[] = {{4, 2, 20, mixed}, {8, 2, 64, mixed}, {16, 8, 128, {1, 70, 130}},
                              {2, 1, 64, {300}}};
  uint64_t seed = 300;
  for (const AttnShape& s : shapes) {
    Rng rng(seed++);
    VecF qkv = rng.vec(static_cast<size_t>(s.T()) * s.row(), -2, 2);
    VecF dout = rng.vec(static_cast<size_t>(s.T()) * s.Hq * s.hd);
    AttnRun r = run_forward(s, qkv);
    run_backward(s, qkv, dout, &r);
    const VecD ref = attention_backward_ref(s, to_double(qkv), to_double(dout));
    expect_close("attention dqkv " + describe(s), r.dqkv, ref, 1e-4 * std::max(1.0, max_abs(ref)),
                 1e-3);
  }
}

// Generation flow: prefill all but the last token of each sequence into its cache slot, write
// the last token separately, then decode it; the result must equal the last row of the full
// causal forward of that sequence.
void check_decode(const AttnShape& s, const std::vector<int32_t>& slot_of_seq, int max_len,
                  uint64_t seed) {
  Rng rng(seed);
  const int B = static_cast<int>(s.lens.size()), T = s.T();
  const int num_slots = *std::max_element(slot_of_seq.begin(), slot_of_seq.end()) + 1;
  VecF qkv = rng.vec(static_cast<size_t>(T) * s.row(), -2, 2);
  AttnRun full = run_forward(s, qkv);
  const size_t cache = static_cast<size_t>(num_slots) * max_len * s.Hkv * s.hd;
  VecF kc(cache, kNaN), vc(cache, kNaN);  // unwritten positions must never be read
  const auto cu = s.cu();
  std::vector<int32_t> slots, pos, last_rows;
  for (int q = 0; q < B; ++q)
    for (int i = 0; i + 1 < s.lens[q]; ++i) slots.push_back(slot_of_seq[q]), pos.push_back(i);
  VecF prefill;
  for (int q = 0; q < B; ++q)
    prefill.insert(prefill.end(), qkv.begin() + cu[q] * s.row(),
                   qkv.begin() + (cu[q + 1] - 1) * s.row());
  cpu::kv_cache_write(prefill.data(), slots.data(), pos.data(), static_cast<int>(slots.size()),
                      s.Hq, s.Hkv, s.hd, max_len, kc.data(), vc.data());
  VecF last;
  std::vector<int32_t> last_pos, lengths;
  for (int q = 0; q < B; ++q) {
    last.insert(last.end(), qkv.begin() + (cu[q + 1] - 1) * s.row(),
                qkv.begin() + cu[q + 1] * s.row());
    last_pos.push_back(s.lens[q] - 1);
    lengths.push_back(s.lens[q]);
  }
  cpu::kv_cache_write(last.data(), slot_of_seq.data(), last_pos.data(), B, s.Hq, s.Hkv, s.hd,
                      max_len, kc.data(), vc.data());
  VecF out(static_cast<size_t>(B) * s.Hq * s.hd, kNaN);
  cpu::decode_attention(last.data(), kc.data(), vc.data(), slot_of_seq.data(), lengths.data(), B,
                        s.Hq, s.Hkv, s.hd, max_len, static_cast<float>(s.scale()), out.data());
  VecD want_kernel, want_ref;
  VecD ro, rl;
  attention_ref(s, to_double(qkv), &ro, &rl);
  const size_t orow = static_cast<size_t>(s.Hq) * s.hd;
  for (int q = 0; q < B; ++q) {
    const size_t t = cu[q + 1] - 1;
    want_kernel.insert(want_kernel.end(), full.out.begin() + t * orow,
                       full.out.begin() + (t + 1) * orow);
    want_ref.insert(want_ref.end(), ro.begin() + t * orow, ro.begin() + (t + 1) * orow);
  }
  expect_close("decode vs attention_forward " + describe(s), out, want_kernel, 2e-5, 1e-4);
  expect_close("decode vs reference " + describe(s), out, want_ref, 2e-5, 1e-4);
}

TEST(attention_decode_matches_last_row) {
  check_decode({8, 2, 64, {1, 9, 37, 100}}, {2, 0, 3, 1}, 128, 400);
  check_decode({4, 4, 20, {5, 1, 64}}, {1, 2, 0}, 70, 401);
  check_decode({16, 8, 128, {130, 3}}, {0, 1}, 130, 402);
}

TEST(attention_thread_invariance) {
  const AttnShape s = {8, 2, 64, {1, 5, 17, 64, 70, 130, 200, 3}};
  Rng rng(500);
  VecF qkv = rng.vec(static_cast<size_t>(s.T()) * s.row(), -2, 2);
  VecF dout = rng.vec(static_cast<size_t>(s.T()) * s.Hq * s.hd);
  const int B = static_cast<int>(s.lens.size()), max_len = 256;
  std::vector<int32_t> slots(s.T()), pos(s.T()), row_slot(B), lengths(B);
  const auto cu = s.cu();
  for (int q = 0; q < B; ++q) {
    row_slot[q] = B - 1 - q;
    lengths[q] = s.lens[q];
    for (int i = 0; i < s.lens[q]; ++i) slots[cu[q] + i] = row_slot[q], pos[cu[q] + i] = i;
  }
  VecF last;
  for (int q = 0; q < B; ++q)
    last.insert(last.end(), qkv.begin() + (cu[q + 1] - 1) * s.row(),
                qkv.begin() + cu[q + 1] * s.row());
  auto run_all = [&]() {
    AttnRun r = run_forward(s, qkv);
    run_backward(s, qkv, dout, &r);
    const size_t cache = static_cast<size_t>(B) * max_len * s.Hkv * s.hd;
    VecF kc(cache, 0.0f), vc(cache, 0.0f), dec(static_cast<size_t>(B) * s.Hq * s.hd);
    cpu::kv_cache_write(qkv.data(), slots.data(), pos.data(), s.T(), s.Hq, s.Hkv, s.hd, max_len,
                        kc.data(), vc.data());
    cpu::decode_attention(last.data(), kc.data(), vc.data(), row_slot.data(), lengths.data(), B,
                          s.Hq, s.Hkv, s.hd, max_len, static_cast<float>(s.scale()), dec.data());
    return std::vector<VecF>{r.out, r.lse, r.dqkv, kc, vc, dec};
  };
  std::vector<VecF> one, two, three;
  with_threads(1, [&] { one = run_all(); });
  with_threads(2, [&] { two = run_all(); });
  with_threads(3, [&] { three = run_all(); });
  for (size_t i = 0; i < one.size(); ++i) {
    CHECK_MSG(bitwise_equal(one[i], two[i]), "output " << i << " differs at 2 threads");
    CHECK_MSG(bitwise_equal(one[i], three[i]), "output " << i << " differs at 3 threads");
  }
}

TEST(attention_bad_arguments) {
  VecF buf(1 << 14, 0.0f);
  float* b = buf.data();
  const std::vector<int32_t> cu_ok = {0, 3, 5}, cu_bad_end = {0, 3, 4}, cu_decreasing = {0, 4, 3},
                             cu_bad_start = {1, 3, 5};
  CHECK_THROWS(cpu::attention_forward(b, cu_ok.data(), 2, 3, 5, 3, 2, 8, 1.0f, b, b));  // 3 % 2
  CHECK_THROWS(cpu::attention_forward(b, cu_bad_end.data(), 2, 3, 5, 2, 1, 8, 1.0f, b, b));
  CHECK_THROWS(cpu::attention_forward(b, cu_decreasing.data(), 2, 4, 3, 2, 1, 8, 1.0f, b, b));
  CHECK_THROWS(cpu::attention_forward(b, cu_bad_start.data(), 2, 3, 5, 2, 1, 8, 1.0f, b, b));
  CHECK_THROWS(cpu::attention_forward(b, cu_ok.data(), 2, 2, 5, 2, 1, 8, 1.0f, b, b));  // max_len
  CHECK_THROWS(cpu::attention_backward(b, b, b, b, cu_bad_end.data(), 2, 3, 5, 2, 1, 8, 1.0f, b));
  const std::vector<int32_t> slots = {0, 1}, bad_slots = {0, -1}, pos = {0, 8}, len_ok = {1, 8},
                             len_zero = {0, 1}, len_long = {1, 9};
  CHECK_THROWS(cpu::kv_cache_write(b, slots.data(), pos.data(), 2, 2, 1, 8, 8, b, b));  // pos 8
  CHECK_THROWS(cpu::kv_cache_write(b, bad_slots.data(), len_ok.data(), 2, 2, 1, 8, 9, b, b));
  const int32_t* sl = slots.data();
  CHECK_THROWS(cpu::decode_attention(b, b, b, sl, len_zero.data(), 2, 2, 1, 8, 8, 1.0f, b));
  CHECK_THROWS(cpu::decode_attention(b, b, b, sl, len_long.data(), 2, 2, 1, 8, 8, 1.0f, b));
  CHECK_THROWS(cpu::decode_attention(b, b, b, bad_slots.data(), len_ok.data(), 2, 2, 1, 8, 8, 1.0f,
                                     b));
  // Valid calls still work with the same buffers.
  cpu::attention_forward(b, cu_ok.data(), 2, 3, 5, 2, 1, 8, 1.0f, b + 4096, b + 8192);
  cpu::decode_attention(b, b, b, slots.data(), len_ok.data(), 2, 2, 1, 8, 8, 1.0f, b + 4096);
}

}  // namespace
}  // namespace troupe::test
