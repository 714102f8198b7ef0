// CPU layer kernels (vector arithmetic, reductions, embedding, RMSNorm, q/k norm + rotary,
// SwiGLU) against float64 references written out here as plain loops, backward passes against
// central finite differences of those references, accumulate/overwrite semantics, and bitwise
// invariance to the thread count.
#include <cmath>
#include <limits>

#include "../cpu/kernels.h"
#include "../cpu/vec16.h"
#include "harness.h"
#include "layer_test_util.h"

namespace troupe::test {
namespace {

namespace cpu = ::troupe::cpu;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- float64 references ----

void rmsnorm_ref(const VecD& x, const VecD& w, int rows, int dim, double eps, VecD* y,
                 VecD* rstd) {
  y->assign(x.size(), 0.0);
  rstd->assign(rows, 0.0);
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int j = 0; j < dim; ++j) ss += x[r * dim + j] * x[r * dim + j];
    const double rs = 1.0 / std::sqrt(ss / dim + eps);
    (*rstd)[r] = rs;
    for (int j = 0; j < dim; ++j) (*y)[r * dim + j] = x[r * dim + j] * rs * w[j];
  }
}

struct QkShape {
  int T, Hq, Hkv, hd;
  int heads() const { return Hq + 2 * Hkv; }
  size_t size() const { return static_cast<size_t>(T) * heads() * hd; }
};

// HF Qwen3: q_norm/k_norm over head_dim, then q*cos + rotate_half(q)*sin.
void qk_norm_rope_ref(const QkShape& s, const VecD& x, const VecD& qw, const VecD& kw,
                      const std::vector<int32_t>& pos, const VecF& cos_t, const VecF& sin_t,
                      double eps, VecD* out, VecD* rstd) {
  const int half = s.hd / 2;
  out->assign(s.size(), 0.0);
  rstd->assign(static_cast<size_t>(s.T) * (s.Hq + s.Hkv), 0.0);
  VecD n(s.hd);
  for (int t = 0; t < s.T; ++t)
    for (int h = 0; h < s.heads(); ++h) {
      const size_t base = (static_cast<size_t>(t) * s.heads() + h) * s.hd;
      if (h >= s.Hq + s.Hkv) {
        for (int i = 0; i < s.hd; ++i) (*out)[base + i] = x[base + i];
        continue;
      }
      const VecD& w = h < s.Hq ? qw : kw;
      double ss = 0;
      for (int i = 0; i < s.hd; ++i) ss += x[base + i] * x[base + i];
      const double rs = 1.0 / std::sqrt(ss / s.hd + eps);
      (*rstd)[static_cast<size_t>(t) * (s.Hq + s.Hkv) + h] = rs;
      for (int i = 0; i < s.hd; ++i) n[i] = x[base + i] * rs * w[i];
      for (int i = 0; i < s.hd; ++i) {
        const size_t ti = static_cast<size_t>(pos[t]) * half + (i % half);
        const double c = cos_t[ti], sn = sin_t[ti];
        const double rot = i < half ? -n[i + half] : n[i - half];  // rotate_half
        (*out)[base + i] = n[i] * c + rot * sn;
      }
    }
}

VecD swiglu_ref(const VecD& gu, int T, int I) {
  VecD h(static_cast<size_t>(T) * I);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < I; ++i) {
      const size_t at = static_cast<size_t>(t) * 2 * I + i;
      const double g = gu[at], u = gu[at + I];
      h[static_cast<size_t>(t) * I + i] = g / (1.0 + std::exp(-g)) * u;
    }
  return h;
}

double project(const VecD& y, const VecD& R) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * R[i];
  return s;
}

// ---- the vector exp and horizontal reductions every kernel builds on ----

TEST(layers_vector_exp_and_reductions) {
  namespace vec = ::troupe::cpu::vec;
  double worst = 0;
  float worst_x = 0;
  for (double x0 = -87.3; x0 < 87.99; x0 += 0.0011) {
    float xs[vec::kLanes];
    for (int i = 0; i < vec::kLanes; ++i) xs[i] = static_cast<float>(x0 + i * 0.00007);
    const vec::f16v y = vec::vexp(vec::load(xs));
    for (int i = 0; i < vec::kLanes; ++i) {
      const double ref = std::exp(static_cast<double>(xs[i]));
      const double rel = std::fabs(y[i] - ref) / ref;
      if (rel > worst) worst = rel, worst_x = xs[i];
    }
  }
  CHECK_MSG(worst <= 1.2e-7, "vexp relative error " << worst << " at x = " << worst_x);
  // Masked scores (-inf) and deep underflow give exactly 0; the top of the range stays finite.
  float special[vec::kLanes] = {-INFINITY, -100.0f, -87.5f, 0.0f, 1e3f};
  const vec::f16v y = vec::vexp(vec::load(special));
  CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f && y[3] == 1.0f);
  CHECK(std::isfinite(y[4]) && y[4] > 1e38f);

  float a[vec::kLanes];
  double sum = 0;
  for (int i = 0; i < vec::kLanes; ++i) a[i] = 0.25f * ((i * 7) % 16) - 1.0f, sum += a[i];
  a[11] = 9.5f, sum += 9.5 - (0.25 * ((11 * 7) % 16) - 1.0);
  CHECK(vec::hsum(vec::load(a)) == static_cast<float>(sum));  // exact: quarter-integers
  CHECK(vec::hmax(vec::load(a)) == 9.5f);
}

// ---- vector arithmetic and reductions ----

TEST(layers_vector_arith) {
  Rng rng(1);
  const size_t n = 100003;  // several parallel chunks plus a ragged end
  VecF x = rng.vec(n), y = rng.vec(n);
  VecF a = y;
  cpu::add_inplace(a.data(), x.data(), n);
  VecF b = y;
  cpu::axpy(b.data(), x.data(), -0.37f, n);
  VecF c = y;
  cpu::scale_inplace(c.data(), 1.7f, n);
  VecD ra(n), rb(n), rc(n);
  for (size_t i = 0; i < n; ++i) {
    ra[i] = static_cast<double>(y[i]) + x[i];
    rb[i] = static_cast<double>(y[i]) - 0.37 * x[i];
    rc[i] = static_cast<double>(y[i]) * 1.7;
  }
  expect_close("add_inplace", a, ra, 1e-7, 1e-6);
  expect_close("axpy", b, rb, 1e-7, 1e-6);
  expect_close("scale_inplace", c, rc, 1e-7, 1e-6);
  cpu::add_inplace(nullptr, nullptr, 0);  // n = 0 is a no-op
}

TEST(layers_sum_squares_and_dot) {
  Rng rng(2);
  for (size_t n : {size_t(0), size_t(1), size_t(15), size_t(17), size_t(3 * 16384 + 77)}) {
    VecF x = rng.vec(n, -3, 3), y = rng.vec(n, -3, 3);
    long double ss = 0, dd = 0;
    for (size_t i = 0; i < n; ++i) {
      ss += static_cast<long double>(x[i]) * x[i];
      dd += static_cast<long double>(x[i]) * y[i];
    }
    CHECK_NEAR(cpu::sum_squares(x.data(), n), static_cast<double>(ss), 1e-12, 1e-12);
    CHECK_NEAR(cpu::dot(x.data(), y.data(), n), static_cast<double>(dd), 1e-9, 1e-12);
  }
}

// ---- embedding ----

TEST(layers_embedding) {
  Rng rng(3);
  const int V = 11, dim = 70, T = 40;
  VecF table = rng.vec(static_cast<size_t>(V) * dim);
  std::vector<int32_t> ids(T);
  for (auto& id : ids) id = rng.integer(0, V - 1);
  ids[3] = ids[7] = ids[20] = 5;  // repeated ids must accumulate
  VecF out(static_cast<size_t>(T) * dim, kNaN);
  cpu::embedding_forward(ids.data(), T, table.data(), dim, out.data());
  bool rows_match = true;
  for (int t = 0; t < T; ++t)
    rows_match &= std::memcmp(&out[t * dim], &table[ids[t] * dim], dim * sizeof(float)) == 0;
  CHECK(rows_match);

  VecF dout = rng.vec(out.size());
  VecF dtable = rng.vec(table.size());  // pre-filled: the backward accumulates
  VecD ref = to_double(dtable);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < dim; ++j) ref[ids[t] * dim + j] += dout[t * dim + j];
  cpu::embedding_backward(ids.data(), T, dout.data(), dim, dtable.data());
  expect_close("embedding_backward", dtable, ref, 1e-6, 1e-6);
}

// ---- RMSNorm ----

TEST(layers_rmsnorm_forward) {
  Rng rng(4);
  for (int dim : {5, 37, 64, 512}) {
    const int rows = 9;
    VecF x = rng.vec(static_cast<size_t>(rows) * dim, -2, 2), w = rng.vec(dim, 0.5f, 1.5f);
    x[0] = 1e3f;  // a large entry in one row: the mean of squares must stay accurate
    VecF y(x.size(), kNaN), rstd(rows, kNaN);
    cpu::rmsnorm_forward(x.data(), w.data(), rows, dim, 1e-6f, y.data(), rstd.data());
    VecD ry, rr;
    rmsnorm_ref(to_double(x), to_double(w), rows, dim, double(1e-6f), &ry, &rr);
    expect_close("rmsnorm y dim " + std::to_string(dim), y, ry, 1e-6, 1e-5);
    expect_close("rmsnorm rstd dim " + std::to_string(dim), rstd, rr, 0, 1e-6);
  }
}

void check_rmsnorm_backward(int rows, int dim, uint64_t seed) {
  Rng rng(seed);
  const float eps = 1e-5f;
  VecF x = rng.vec(static_cast<size_t>(rows) * dim, -2, 2), w = rng.vec(dim, 0.5f, 1.5f);
  VecF R = rng.vec(x.size());
  VecF y(x.size()), rstd(rows);
  cpu::rmsnorm_forward(x.data(), w.data(), rows, dim, eps, y.data(), rstd.data());
  VecF dx(x.size(), 0.0f), dw(dim, 0.0f);
  cpu::rmsnorm_backward(R.data(), x.data(), w.data(), rstd.data(), rows, dim, dx.data(),
                        dw.data());
  const VecD Rd = to_double(R), xd = to_double(x), wd = to_double(w);
  const std::string tag = " rows " + std::to_string(rows) + " dim " + std::to_string(dim);
  auto loss_x = [&](const VecD& xv) {
    VecD yv, rv;
    rmsnorm_ref(xv, wd, rows, dim, eps, &yv, &rv);
    return project(yv, Rd);
  };
  auto loss_w = [&](const VecD& wv) {
    VecD yv, rv;
    rmsnorm_ref(xd, wv, rows, dim, eps, &yv, &rv);
    return project(yv, Rd);
  };
  expect_grad_fd("rmsnorm dx" + tag, x, dx.data(), loss_x, sample_coords(x.size(), 300, rng));
  expect_grad_fd("rmsnorm dw" + tag, w, dw.data(), loss_w, sample_coords(w.size(), 300, rng));

  // Both outputs accumulate: pre-filled buffers end up as prefill + gradient.
  VecF px = rng.vec(x.size()), pw = rng.vec(dim);
  VecF dx2 = px, dw2 = pw;
  cpu::rmsnorm_backward(R.data(), x.data(), w.data(), rstd.data(), rows, dim, dx2.data(),
                        dw2.data());
  VecD ex(x.size()), ew(dim);
  for (size_t i = 0; i < ex.size(); ++i) ex[i] = static_cast<double>(px[i]) + dx[i];
  for (int j = 0; j < dim; ++j) ew[j] = static_cast<double>(pw[j]) + dw[j];
  expect_close("rmsnorm dx accumulates" + tag, dx2, ex, 1e-6, 1e-6);
  expect_close("rmsnorm dw accumulates" + tag, dw2, ew, 1e-5, 1e-6);
}

TEST(layers_rmsnorm_backward_fd) {
  check_rmsnorm_backward(4, 37, 5);
  check_rmsnorm_backward(3, 64, 6);
  check_rmsnorm_backward(300, 96, 7);  // many weight-gradient partial blocks
}

// ---- q/k norm + rotary ----

struct QkCase {
  QkShape s;
  VecF x, qw, kw, cos_t, sin_t;
  std::vector<int32_t> pos;
};

QkCase make_qk_case(const QkShape& s, uint64_t seed) {
  Rng rng(seed);
  QkCase c{s, rng.vec(s.size(), -2, 2), rng.vec(s.hd, 0.5f, 1.5f), rng.vec(s.hd, 0.5f, 1.5f),
           {}, {}, std::vector<int32_t>(s.T)};
  const int max_pos = 300;
  rope_tables(max_pos, s.hd, 10000.0, &c.cos_t, &c.sin_t);
  for (auto& p : c.pos) p = rng.integer(0, max_pos - 1);
  c.pos[0] = 0;
  return c;
}

void qk_forward(const QkCase& c, float eps, VecF* out, VecF* rstd) {
  out->assign(c.s.size(), kNaN);
  rstd->assign(static_cast<size_t>(c.s.T) * (c.s.Hq + c.s.Hkv), kNaN);
  cpu::qk_norm_rope_forward(c.x.data(), c.qw.data(), c.kw.data(), c.pos.data(), c.cos_t.data(),
                            c.sin_t.data(), c.s.T, c.s.Hq, c.s.Hkv, c.s.hd, eps, out->data(),
                            rstd->data());
}

const QkShape kQkShapes[] = {{6, 4, 2, 8}, {5, 2, 1, 40}, {3, 16, 8, 128}, {100, 2, 1, 32}};

TEST(layers_qk_norm_rope_forward) {
  uint64_t seed = 10;
  for (const QkShape& s : kQkShapes) {
    QkCase c = make_qk_case(s, seed++);
    VecF out, rstd;
    qk_forward(c, 1e-6f, &out, &rstd);
    VecD ro, rr;
    qk_norm_rope_ref(s, to_double(c.x), to_double(c.qw), to_double(c.kw), c.pos, c.cos_t,
                     c.sin_t, double(1e-6f), &ro, &rr);
    const std::string tag = " hd " + std::to_string(s.hd);
    expect_close("qk_norm_rope out" + tag, out, ro, 2e-6, 1e-5);
    expect_close("qk_norm_rope rstd" + tag, rstd, rr, 0, 1e-6);
  }
}

TEST(layers_qk_norm_rope_backward_fd) {
  uint64_t seed = 20;
  const float eps = 1e-6f;
  for (const QkShape& s : kQkShapes) {
    QkCase c = make_qk_case(s, seed++);
    Rng rng(seed * 7);
    VecF out, rstd;
    qk_forward(c, eps, &out, &rstd);
    VecF R = rng.vec(out.size());
    VecF dx(c.x.size(), kNaN);  // overwritten, so NaN must not survive
    VecF pq = rng.vec(s.hd), pk = rng.vec(s.hd);  // accumulated into
    VecF dq = pq, dk = pk;
    cpu::qk_norm_rope_backward(R.data(), c.x.data(), c.qw.data(), c.kw.data(), c.pos.data(),
                               c.cos_t.data(), c.sin_t.data(), rstd.data(), s.T, s.Hq, s.Hkv,
                               s.hd, dx.data(), dq.data(), dk.data());
    for (int j = 0; j < s.hd; ++j) dq[j] -= pq[j], dk[j] -= pk[j];
    const VecD Rd = to_double(R), xd = to_double(c.x), qd = to_double(c.qw), kd = to_double(c.kw);
    auto loss = [&](const VecD& xv, const VecD& qv, const VecD& kv) {
      VecD o, r;
      qk_norm_rope_ref(s, xv, qv, kv, c.pos, c.cos_t, c.sin_t, eps, &o, &r);
      return project(o, Rd);
    };
    const std::string tag = " hd " + std::to_string(s.hd) + " T " + std::to_string(s.T);
    expect_grad_fd("qk_norm_rope dqkv" + tag, c.x, dx.data(),
                   [&](const VecD& v) { return loss(v, qd, kd); },
                   sample_coords(c.x.size(), 400, rng));
    // The subtraction of the prefill above costs one float rounding: hence the looser tol.
    expect_grad_fd("qk_norm_rope dq_norm_w" + tag, c.qw, dq.data(),
                   [&](const VecD& v) { return loss(xd, v, kd); }, sample_coords(s.hd, 200, rng),
                   1e-3);
    expect_grad_fd("qk_norm_rope dk_norm_w" + tag, c.kw, dk.data(),
                   [&](const VecD& v) { return loss(xd, qd, v); }, sample_coords(s.hd, 200, rng),
                   1e-3);
  }
}

TEST(layers_qk_norm_rope_in_place) {
  QkCase c = make_qk_case({7, 4, 2, 64}, 25);
  Rng rng(26);
  VecF out, rstd;
  qk_forward(c, 1e-6f, &out, &rstd);
  VecF inplace = c.x, rstd2(rstd.size());
  cpu::qk_norm_rope_forward(inplace.data(), c.qw.data(), c.kw.data(), c.pos.data(), c.cos_t.data(),
                            c.sin_t.data(), 7, 4, 2, 64, 1e-6f, inplace.data(), rstd2.data());
  CHECK(bitwise_equal(inplace, out));
  const VecF dy = rng.vec(out.size());
  VecF dx(out.size()), dq(64, 0.0f), dk(64, 0.0f), dq2 = dq, dk2 = dk, d2 = dy;
  cpu::qk_norm_rope_backward(dy.data(), c.x.data(), c.qw.data(), c.kw.data(), c.pos.data(),
                             c.cos_t.data(), c.sin_t.data(), rstd.data(), 7, 4, 2, 64, dx.data(),
                             dq.data(), dk.data());
  cpu::qk_norm_rope_backward(d2.data(), c.x.data(), c.qw.data(), c.kw.data(), c.pos.data(),
                             c.cos_t.data(), c.sin_t.data(), rstd.data(), 7, 4, 2, 64, d2.data(),
                             dq2.data(), dk2.data());
  CHECK(bitwise_equal(d2, dx));
  CHECK(bitwise_equal(dq2, dq) && bitwise_equal(dk2, dk));
}

// ---- SwiGLU ----

TEST(layers_swiglu_forward) {
  Rng rng(30);
  for (int I : {5, 37, 64, 1536}) {
    const int T = 3;
    VecF gu = rng.vec(static_cast<size_t>(T) * 2 * I, -6, 6);
    gu[0] = -95.0f, gu[1] = 95.0f, gu[2] = -20.0f, gu[3] = 30.0f;  // the exponential's extremes
    VecF h(static_cast<size_t>(T) * I, kNaN);
    cpu::swiglu_forward(gu.data(), T, I, h.data());
    expect_close("swiglu I " + std::to_string(I), h, swiglu_ref(to_double(gu), T, I), 1e-6, 2e-6);
  }
}

TEST(layers_swiglu_backward_fd) {
  Rng rng(31);
  for (int I : {5, 37, 64}) {
    const int T = 3;
    VecF gu = rng.vec(static_cast<size_t>(T) * 2 * I, -6, 6);
    VecF R = rng.vec(static_cast<size_t>(T) * I);
    VecF dgu(gu.size(), kNaN);  // overwritten
    cpu::swiglu_backward(R.data(), gu.data(), T, I, dgu.data());
    const VecD Rd = to_double(R);
    expect_grad_fd("swiglu dgu I " + std::to_string(I), gu, dgu.data(),
                   [&](const VecD& v) { return project(swiglu_ref(v, T, I), Rd); },
                   sample_coords(gu.size(), 400, rng));
  }
}

// ---- thread-count invariance and argument checks ----

TEST(layers_thread_invariance) {
  Rng rng(40);
  const int rows = 333, dim = 200, I = 700;
  const size_t n = 200001;
  VecF x = rng.vec(static_cast<size_t>(rows) * dim), w = rng.vec(dim), dy = rng.vec(x.size());
  VecF big = rng.vec(n), big2 = rng.vec(n);
  VecF gu = rng.vec(static_cast<size_t>(rows) * 2 * I, -5, 5);
  VecF dh = rng.vec(static_cast<size_t>(rows) * I);
  std::vector<int32_t> ids(rows);
  for (auto& id : ids) id = rng.integer(0, 9);
  QkCase qc = make_qk_case({rows, 4, 2, 64}, 41);
  VecF qdy = rng.vec(qc.x.size());

  auto run_all = [&]() {
    std::vector<VecF> r;
    VecF a = big, b = big, c = big;
    cpu::add_inplace(a.data(), big2.data(), n);
    cpu::axpy(b.data(), big2.data(), 0.3f, n);
    cpu::scale_inplace(c.data(), 0.9f, n);
    double ss = cpu::sum_squares(big.data(), n), dd = cpu::dot(big.data(), big2.data(), n);
    r.push_back(a), r.push_back(b), r.push_back(c);
    VecF sums(4);  // the two doubles' bits, so the comparison below is bitwise too
    std::memcpy(sums.data(), &ss, sizeof ss);
    std::memcpy(sums.data() + 2, &dd, sizeof dd);
    r.push_back(sums);
    VecF emb(static_cast<size_t>(rows) * dim), dtab(10 * dim, 0.5f);
    cpu::embedding_forward(ids.data(), rows, x.data(), dim, emb.data());
    cpu::embedding_backward(ids.data(), rows, dy.data(), dim, dtab.data());
    r.push_back(emb), r.push_back(dtab);
    VecF y(x.size()), rstd(rows), dx(x.size(), 0.25f), dw(dim, 0.5f);
    cpu::rmsnorm_forward(x.data(), w.data(), rows, dim, 1e-6f, y.data(), rstd.data());
    cpu::rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), rows, dim, dx.data(),
                          dw.data());
    r.push_back(y), r.push_back(rstd), r.push_back(dx), r.push_back(dw);
    VecF qo, qr;
    qk_forward(qc, 1e-6f, &qo, &qr);
    VecF qdx(qc.x.size()), dqw(64, 0.0f), dkw(64, 0.0f);
    cpu::qk_norm_rope_backward(qdy.data(), qc.x.data(), qc.qw.data(), qc.kw.data(), qc.pos.data(),
                               qc.cos_t.data(), qc.sin_t.data(), qr.data(), rows, 4, 2, 64,
                               qdx.data(), dqw.data(), dkw.data());
    r.push_back(qo), r.push_back(qr), r.push_back(qdx), r.push_back(dqw), r.push_back(dkw);
    VecF h(static_cast<size_t>(rows) * I), dgu(gu.size());
    cpu::swiglu_forward(gu.data(), rows, I, h.data());
    cpu::swiglu_backward(dh.data(), gu.data(), rows, I, dgu.data());
    r.push_back(h), r.push_back(dgu);
    return r;
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

TEST(layers_bad_arguments) {
  VecF buf(4096, 0.0f), cos_t(64, 1.0f), sin_t(64, 0.0f);
  std::vector<int32_t> ids = {0, -1}, pos = {0, -3};
  CHECK_THROWS(cpu::embedding_forward(ids.data(), 2, buf.data(), 4, buf.data() + 100));
  CHECK_THROWS(cpu::embedding_backward(ids.data(), 2, buf.data(), 4, buf.data() + 100));
  CHECK_THROWS(cpu::rmsnorm_forward(buf.data(), buf.data(), 2, 0, 1e-6f, buf.data(), buf.data()));
  CHECK_THROWS(cpu::swiglu_forward(buf.data(), -1, 4, buf.data()));
  // odd head dim, then a negative position
  float* b = buf.data();
  CHECK_THROWS(cpu::qk_norm_rope_forward(b, b, b, ids.data(), cos_t.data(), sin_t.data(), 1, 1, 1,
                                         7, 1e-6f, b + 2048, b + 3000));
  CHECK_THROWS(cpu::qk_norm_rope_forward(b, b, b, pos.data(), cos_t.data(), sin_t.data(), 2, 1, 1,
                                         8, 1e-6f, b + 2048, b + 3000));
}

}  // namespace
}  // namespace troupe::test
