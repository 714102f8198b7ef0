// The table of op cases. Each entry: a name (family/shape), the default tolerance of its outputs
// (elementwise |gpu - cpu| <= atol + rtol*|cpu|, optionally a bound on ||gpu - cpu|| / ||cpu||),
// the traffic/arithmetic of one call for the perf table, and a body written against Backend.
//
// Tolerances, and why:
//  - streaming elementwise ops: 1e-6 relative (FMA contraction may differ between compilers);
//  - reductions in double: 1e-10 relative (exact products, different summation order);
//  - row reductions in float (norms, softmax, attention): ~1e-5 relative, the spread of float
//    sums of a few thousand terms taken in different orders;
//  - GEMM, on ||err||/||ref|| with inputs in [-1, 1]: fp32 1e-5; TF32 3e-3 (inputs rounded to
//    10 mantissa bits, error ~4e-4 expected); bf16 2e-2 (8 bits, ~3e-3 expected); the built-in
//    kernel 1e-5. Elementwise bounds for the tensor-core modes are ~8x the expected error of a
//    K-term dot product.
//  - sampled tokens: exact.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <tuple>

#include "cuda_backend.h"
#include "op_harness.h"

namespace troupe::optest {
namespace {

using VecF = std::vector<float>;
using VecI = std::vector<int32_t>;

constexpr double kF = 4.0;  // bytes per float

// ---- GEMM ---------------------------------------------------------------------------------------
void add_gemm(std::vector<Case>& cs, const char* tag, int M, int N, int K, bool ta, bool tb,
              float alpha, float beta, int pad, CudaGemmPrecision prec) {
  const char* pname = prec == CudaGemmPrecision::Fp32 ? "fp32"
                      : prec == CudaGemmPrecision::Tf32 ? "tf32"
                      : prec == CudaGemmPrecision::Bf16 ? "bf16" : "builtin";
  double rel = prec == CudaGemmPrecision::Tf32 ? 3e-3 : prec == CudaGemmPrecision::Bf16 ? 2e-2 : 1e-5;
  // Per-element bound: ~8 sigma of a K-term sum of products with the mode's relative error.
  double sigma_prod = prec == CudaGemmPrecision::Tf32 ? 4e-4 : prec == CudaGemmPrecision::Bf16 ? 3e-3 : 1e-7;
  double atol = 8.0 * sigma_prod * std::sqrt((double)K) / 3.0 * std::fabs(alpha) + 1e-5;
  Case c;
  c.name = std::string("gemm/") + tag + "/" + (ta ? "T" : "N") + (tb ? "T" : "N") + "/" +
           std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + "/" + pname;
  c.tol = tol(atol, prec == CudaGemmPrecision::Fp32 || prec == CudaGemmPrecision::BuiltinFp32 ? 1e-5 : 0.0, rel);
  c.gemm_precision = static_cast<int>(prec);
  c.flops = 2.0 * M * N * K;
  c.bytes = kF * ((double)M * K + (double)K * N + (double)M * N * (beta != 0 ? 2 : 1));
  c.body = [=](Run& r) {
    const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    const size_t arows = ta ? K : M, brows = tb ? N : K;
    float* A = r.in(r.rng.vec(arows * lda));
    float* B = r.in(r.rng.vec(brows * ldb));
    float* C = beta != 0.0f ? r.inout("C", r.rng.vec((size_t)M * ldc)) : r.out("C", (size_t)M * ldc);
    // beta == 0 with padding: the pad columns keep their NaN poison on both backends, which the
    // comparison would flag; write them as zeros first instead.
    if (beta == 0.0f && pad) {
      VecF z((size_t)M * ldc, std::nanf(""));
      for (int i = 0; i < M; ++i)
        for (int j = N; j < ldc; ++j) z[(size_t)i * ldc + j] = 0.0f;
      r.be->upload(C, z.data(), z.size() * sizeof(float));
    }
    r.op([&] { r.be->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); });
  };
  cs.push_back(c);
}

// ---- rope tables as HF builds them: inv_freq_i = theta^(-2i/hd), angle = pos * inv_freq_i ---------
void rope_tables(int max_pos, int hd, double theta, VecF& cs, VecF& sn) {
  const int half = hd / 2;
  cs.resize((size_t)max_pos * half);
  sn.resize((size_t)max_pos * half);
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = p * std::pow(theta, -2.0 * i / hd);
      cs[(size_t)p * half + i] = (float)std::cos(a);
      sn[(size_t)p * half + i] = (float)std::sin(a);
    }
}

// ---- attention ----------------------------------------------------------------------------------
struct AttnShape {
  std::vector<int> lens;
  int Hq, Hkv, hd;
};

void add_attention(std::vector<Case>& cs, const char* tag, AttnShape s, bool backward) {
  const int T = std::accumulate(s.lens.begin(), s.lens.end(), 0);
  const int H = s.Hq + 2 * s.Hkv;
  double pairs = 0;
  for (int L : s.lens) pairs += 0.5 * L * (L + 1.0);
  Case c;
  c.name = std::string(backward ? "attention_bwd/" : "attention_fwd/") + tag;
  c.tol = tol(2e-5, 1e-4);
  c.flops = (backward ? 5.0 : 2.0) * 2.0 * pairs * s.hd * s.Hq;  // fwd: QK^T, PV; bwd: +dV,dP,dQ,dK... recompute
  c.bytes = kF * ((double)T * H * s.hd + (double)T * s.Hq * s.hd * (backward ? 3 : 1));
  c.body = [=](Run& r) {
    VecI cu(s.lens.size() + 1, 0);
    int maxl = 0;
    for (size_t i = 0; i < s.lens.size(); ++i) {
      cu[i + 1] = cu[i] + s.lens[i];
      maxl = std::max(maxl, s.lens[i]);
    }
    const float scale = 1.0f / std::sqrt((float)s.hd);
    float* qkv = r.in(r.rng.gauss((size_t)T * H * s.hd, 1.0f));
    int32_t* cud = r.in_i(cu);
    const int ns = (int)s.lens.size();
    if (!backward) {
      float* out = r.out("out", (size_t)T * s.Hq * s.hd);
      float* lse = r.out("lse", (size_t)T * s.Hq, tol(1e-5, 1e-5));
      r.op([&] { r.be->attention_forward(qkv, cud, ns, maxl, T, s.Hq, s.Hkv, s.hd, scale, out, lse); });
    } else {
      float* out = r.scratch((size_t)T * s.Hq * s.hd);
      float* lse = r.scratch((size_t)T * s.Hq);
      r.be->attention_forward(qkv, cud, ns, maxl, T, s.Hq, s.Hkv, s.hd, scale, out, lse);
      float* dout = r.in(r.rng.gauss((size_t)T * s.Hq * s.hd, 1.0f));
      float* dqkv = r.out("dqkv", (size_t)T * H * s.hd, tol(1e-4, 1e-3, 1e-5));
      r.op([&] {
        r.be->attention_backward(dout, qkv, out, lse, cud, ns, maxl, T, s.Hq, s.Hkv, s.hd, scale, dqkv);
      });
    }
  };
  cs.push_back(c);
}

// ---- decode ---------------------------------------------------------------------------------------
void add_decode(std::vector<Case>& cs, const char* tag, int B, int Hq, int Hkv, int hd, int max_len,
                bool full_length) {
  Case c;
  c.name = std::string("decode_attention/") + tag;
  c.tol = tol(2e-5, 1e-4);
  const int slots_n = B + 2;
  c.bytes = kF * 2.0 * B * (full_length ? max_len : max_len / 2.0) * Hkv * hd;
  c.body = [=](Run& r) {
    const int H = Hq + 2 * Hkv;
    const size_t cache_n = (size_t)slots_n * max_len * Hkv * hd;
    float* kc = r.inout("k_cache", r.rng.vec(cache_n, -2.0f, 2.0f), exact());
    float* vc = r.inout("v_cache", r.rng.vec(cache_n, -2.0f, 2.0f), exact());
    float* qkv = r.in(r.rng.gauss((size_t)B * H * hd, 1.0f));
    VecI slots(B), lengths(B), pos(B);
    std::vector<int> perm(slots_n);
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = slots_n - 1; i > 0; --i) std::swap(perm[i], perm[r.rng.integer(0, i)]);
    for (int b = 0; b < B; ++b) {
      slots[b] = perm[b];
      lengths[b] = full_length ? max_len : r.rng.integer(1, max_len);
      pos[b] = lengths[b] - 1;
    }
    int32_t* sd = r.in_i(slots);
    int32_t* ld = r.in_i(lengths);
    int32_t* pd = r.in_i(pos);
    float* out = r.out("out", (size_t)B * Hq * hd);
    const float scale = 1.0f / std::sqrt((float)hd);
    r.be->kv_cache_write(qkv, sd, pd, B, Hq, Hkv, hd, max_len, kc, vc);
    r.op([&] { r.be->decode_attention(qkv, kc, vc, sd, ld, B, Hq, Hkv, hd, max_len, scale, out); });
  };
  cs.push_back(c);
}

// ---- loss heads ------------------------------------------------------------------------------------
struct LossCfg {
  int N, V;
  float logit_sd;
};

void add_ppo(std::vector<Case>& cs, const char* tag, LossCfg L, PpoLossParams p, bool alias) {
  Case c;
  c.name = std::string("ppo_loss/") + tag;
  c.tol = tol(1e-5, 1e-5);
  c.bytes = kF * 3.0 * L.N * L.V;
  c.body = [=](Run& r) {
    const size_t nv = (size_t)L.N * L.V;
    VecF logits = r.rng.gauss(nv, L.logit_sd);
    VecI tgt(L.N);
    for (auto& t : tgt) t = r.rng.integer(0, L.V - 1);
    // old/ref log-probs around the typical log p so the ratio crosses both clip bounds.
    const float typ = -std::log((float)L.V) - 0.5f * L.logit_sd * L.logit_sd / (p.temperature * p.temperature);
    VecF old = r.rng.vec(L.N, typ - 3.0f, typ + 3.0f), ref = r.rng.vec(L.N, typ - 3.0f, typ + 3.0f);
    VecF adv = r.rng.vec(L.N, -2.0f, 2.0f), w = r.rng.vec(L.N, 0.0f, 1.0f);
    for (int n = 0; n < L.N; n += 5) w[n] = 0.0f;    // prompt tokens
    for (int n = 2; n < L.N; n += 7) adv[n] = 0.0f;  // zero advantage
    int32_t* td = r.in_i(tgt);
    float* od = r.in(old);
    float* rd = r.in(ref);
    float* ad = r.in(adv);
    float* wd = r.in(w);
    float* stats = r.out("stats", (size_t)L.N * kTokenStatCols);
    const Tol gt = tol(1e-8, 2e-4);
    float* xd;
    float* dl;
    if (alias) {
      xd = dl = r.inout("dlogits", logits, gt);
    } else {
      xd = r.in(logits);
      dl = r.out("dlogits", nv, gt);
    }
    r.op([&] { r.be->ppo_loss(xd, L.N, L.V, td, od, p.kl != KlEstimator::None ? rd : nullptr, ad, wd, p, dl, stats); });
  };
  cs.push_back(c);
}

// ---- sampler -----------------------------------------------------------------------------------------
void add_sample(std::vector<Case>& cs, const char* tag, int B, int V, float sd, float quant,
                SampleParams p) {
  Case c;
  c.name = std::string("sample/") + tag;
  c.tol = tol(2e-5, 1e-5);
  c.bytes = kF * (double)B * V;
  c.body = [=](Run& r) {
    VecF logits = r.rng.gauss((size_t)B * V, sd);
    if (quant > 0)  // coarse logits: many exact ties, for the tie rules
      for (auto& x : logits) x = std::round(x / quant) * quant;
    std::vector<SampleRowKey> keys(B);
    for (auto& k : keys) {
      k.call_id = ((uint64_t)r.rng.integer(0, 1 << 30) << 32) ^ (uint64_t)r.rng.integer(0, 1 << 30);
      k.position = r.rng.integer(0, 4000);
      k.pad_ = 0;
    }
    float* xd = r.in(logits);
    int32_t* tok = r.host_i32("tokens", B);
    float* lp = r.host_f32("logp", B, tol(2e-5, 1e-5));
    r.op([&] { r.be->sample(xd, B, V, p, keys.data(), tok, lp); });
  };
  cs.push_back(c);
}

SampleParams sp(float T, int k, float top_p, bool greedy, uint64_t seed) {
  SampleParams p;
  p.temperature = T;
  p.top_k = k;
  p.top_p = top_p;
  p.greedy = greedy;
  p.seed = seed;
  return p;
}

}  // namespace

std::vector<Case> op_cases() {
  std::vector<Case> cs;
  using P = CudaGemmPrecision;

  // ---- GEMM: every transpose combination, alpha/beta, padded leading dimensions, each mode.
  for (P prec : {P::Fp32, P::Tf32, P::Bf16, P::BuiltinFp32})
    for (int t = 0; t < 4; ++t) {
      add_gemm(cs, "odd", 37, 53, 29, t & 1, t & 2, 0.7f, 0.3f, 3, prec);
      add_gemm(cs, "beta0", 64, 96, 130, t & 1, t & 2, 1.0f, 0.0f, 1, prec);
    }
  add_gemm(cs, "k0", 5, 7, 0, false, false, 1.0f, 0.5f, 0, P::Tf32);
  add_gemm(cs, "k0", 5, 7, 0, false, false, 1.0f, 0.5f, 0, P::BuiltinFp32);
  // Training shapes (Qwen3-0.6B-like, 4096 tokens): forward x W^T, dX = dY W, dW = dY^T X.
  for (P prec : {P::Fp32, P::Tf32, P::Bf16, P::BuiltinFp32}) {
    add_gemm(cs, "proj", 4096, 3072, 1024, false, true, 1.0f, 0.0f, 0, prec);
    add_gemm(cs, "proj_dx", 4096, 1024, 3072, false, false, 1.0f, 1.0f, 0, prec);
    add_gemm(cs, "proj_dw", 3072, 1024, 4096, true, false, 1.0f, 1.0f, 0, prec);
  }
  add_gemm(cs, "lm_head", 256, 151936, 1024, false, true, 1.0f, 0.0f, 0, P::Tf32);

  // ---- elementwise and reductions.
  for (size_t n : {(size_t)1000003, (size_t)17}) {
    const std::string sz = std::to_string(n);
    cs.push_back({"add_inplace/" + sz, tol(1e-7, 1e-6), -1, 3 * kF * n, 0, [n](Run& r) {
      float* y = r.inout("y", r.rng.vec(n));
      float* x = r.in(r.rng.vec(n));
      r.op([&] { r.be->add_inplace(y, x, n); });
    }});
    cs.push_back({"axpy/" + sz, tol(1e-7, 1e-6), -1, 3 * kF * n, 0, [n](Run& r) {
      float* y = r.inout("y", r.rng.vec(n));
      float* x = r.in(r.rng.vec(n));
      r.op([&] { r.be->axpy(y, x, -0.37f, n); });
    }});
    cs.push_back({"scale_inplace/" + sz, tol(1e-7, 1e-6), -1, 2 * kF * n, 0, [n](Run& r) {
      float* x = r.inout("x", r.rng.vec(n));
      r.op([&] { r.be->scale_inplace(x, 1.7f, n); });
    }});
  }
  // Misaligned pointers take the scalar paths.
  cs.push_back({"axpy/misaligned", tol(1e-7, 1e-6), -1, 0, 0, [](Run& r) {
    const size_t n = 4099;
    float* y = r.inout("y", r.rng.vec(n + 1));
    float* x = r.in(r.rng.vec(n + 2));
    r.op([&] { r.be->axpy(y + 1, x + 2, 2.5f, n); });
  }});
  for (size_t n : {(size_t)3000001, (size_t)5}) {
    const std::string sz = std::to_string(n);
    cs.push_back({"sum_squares/" + sz, tol(0, 1e-10), -1, kF * n, 0, [n](Run& r) {
      float* x = r.in(r.rng.vec(n, -3.0f, 3.0f));
      double* s = r.host_f64("sum", 1, tol(0, 1e-10));
      r.op([&] { *s = r.be->sum_squares(x, n); });
    }});
    cs.push_back({"dot/" + sz, tol(1e-9, 1e-10), -1, 2 * kF * n, 0, [n](Run& r) {
      float* a = r.in(r.rng.vec(n));
      float* b = r.in(r.rng.vec(n));
      double* s = r.host_f64("dot", 1, tol(1e-9, 1e-10));
      r.op([&] { *s = r.be->dot(a, b, n); });
    }});
  }

  // ---- embedding.
  for (auto shape : {std::tuple{4096, 1024, 5000}, std::tuple{9, 33, 4}}) {
    const int T = std::get<0>(shape), dim = std::get<1>(shape), vocab = std::get<2>(shape);
    const std::string tag = std::to_string(T) + "x" + std::to_string(dim);
    cs.push_back({"embedding_fwd/" + tag, exact(), -1, 2 * kF * T * dim, 0, [=](Run& r) {
      VecI ids(T);
      for (auto& i : ids) i = r.rng.integer(0, vocab - 1);
      float* table = r.in(r.rng.vec((size_t)vocab * dim));
      int32_t* idd = r.in_i(ids);
      float* out = r.out("out", (size_t)T * dim);
      r.op([&] { r.be->embedding_forward(idd, T, table, dim, out); });
    }});
    // Few distinct ids: long runs of duplicates, the case atomics would get wrong-order sums on.
    cs.push_back({"embedding_bwd/" + tag, tol(1e-6, 1e-6), -1, 3 * kF * T * dim, 0, [=](Run& r) {
      VecI ids(T);
      for (auto& i : ids) i = r.rng.integer(0, std::min(vocab, 50) - 1);
      float* dt = r.inout("dtable", r.rng.vec((size_t)vocab * dim));
      float* dout = r.in(r.rng.vec((size_t)T * dim));
      int32_t* idd = r.in_i(ids);
      r.op([&] { r.be->embedding_backward(idd, T, dout, dim, dt); });
    }});
  }

  // ---- RMSNorm.
  // 3x13000: rows longer than 48 KB keep their dw partial in global memory.
  for (auto shape : {std::pair{4096, 1024}, std::pair{7, 100}, std::pair{300, 2560}, std::pair{3, 13000}}) {
    const int rows = shape.first, dim = shape.second;
    const std::string tag = std::to_string(rows) + "x" + std::to_string(dim);
    cs.push_back({"rmsnorm_fwd/" + tag, tol(1e-6, 1e-5), -1, 2 * kF * rows * dim, 0, [=](Run& r) {
      float* x = r.in(r.rng.gauss((size_t)rows * dim, 2.0f));
      float* w = r.in(r.rng.vec(dim, 0.5f, 1.5f));
      float* y = r.out("y", (size_t)rows * dim);
      float* rs = r.out("rstd", rows);
      r.op([&] { r.be->rmsnorm_forward(x, w, rows, dim, 1e-6f, y, rs); });
    }});
    cs.push_back({"rmsnorm_bwd/" + tag, tol(1e-5, 1e-4), -1, 4 * kF * rows * dim, 0, [=](Run& r) {
      VecF xh = r.rng.gauss((size_t)rows * dim, 2.0f);
      float* x = r.in(xh);
      float* w = r.in(r.rng.vec(dim, 0.5f, 1.5f));
      VecF rs(rows);
      for (int i = 0; i < rows; ++i) {
        double ss = 0;
        for (int j = 0; j < dim; ++j) ss += (double)xh[(size_t)i * dim + j] * xh[(size_t)i * dim + j];
        rs[i] = (float)(1.0 / std::sqrt(ss / dim + 1e-6));
      }
      float* rsd = r.in(rs);
      float* dy = r.in(r.rng.vec((size_t)rows * dim));
      float* dx = r.inout("dx", r.rng.vec((size_t)rows * dim));
      float* dw = r.inout("dw", r.rng.vec(dim), tol(1e-4, 1e-4));
      r.op([&] { r.be->rmsnorm_backward(dy, x, w, rsd, rows, dim, dx, dw); });
    }});
  }

  // ---- qk norm + rope.
  for (auto shape : {std::tuple{2048, 16, 8, 128}, std::tuple{5, 4, 2, 32}, std::tuple{64, 6, 2, 80}}) {
    const int T = std::get<0>(shape), Hq = std::get<1>(shape), Hkv = std::get<2>(shape),
              hd = std::get<3>(shape);
    const std::string tag = std::to_string(T) + "/" + std::to_string(Hq) + "-" + std::to_string(Hkv) + "/" + std::to_string(hd);
    const int H = Hq + 2 * Hkv;
    const double bytes = 2 * kF * T * H * hd;
    cs.push_back({"qk_norm_rope_fwd/" + tag, tol(1e-5, 1e-5), -1, bytes, 0, [=](Run& r) {
      VecF c, s;
      rope_tables(4096, hd, 1e6, c, s);
      VecI pos(T);
      for (auto& p : pos) p = r.rng.integer(0, 4095);
      float* x = r.in(r.rng.gauss((size_t)T * H * hd, 1.5f));
      float* qw = r.in(r.rng.vec(hd, 0.5f, 1.5f));
      float* kw = r.in(r.rng.vec(hd, 0.5f, 1.5f));
      int32_t* pd = r.in_i(pos);
      float* cd = r.in(c);
      float* sd = r.in(s);
      float* y = r.out("qkv_out", (size_t)T * H * hd);
      float* rs = r.out("rstd", (size_t)T * (Hq + Hkv));
      r.op([&] { r.be->qk_norm_rope_forward(x, qw, kw, pd, cd, sd, T, Hq, Hkv, hd, 1e-6f, y, rs); });
    }});
    cs.push_back({"qk_norm_rope_bwd/" + tag, tol(2e-5, 1e-4), -1, 3 * kF * T * H * hd, 0, [=](Run& r) {
      VecF c, s;
      rope_tables(4096, hd, 1e6, c, s);
      VecI pos(T);
      for (auto& p : pos) p = r.rng.integer(0, 4095);
      float* x = r.in(r.rng.gauss((size_t)T * H * hd, 1.5f));
      float* qw = r.in(r.rng.vec(hd, 0.5f, 1.5f));
      float* kw = r.in(r.rng.vec(hd, 0.5f, 1.5f));
      int32_t* pd = r.in_i(pos);
      float* cd = r.in(c);
      float* sd = r.in(s);
      float* y = r.scratch((size_t)T * H * hd);
      float* rs = r.scratch((size_t)T * (Hq + Hkv));
      r.be->qk_norm_rope_forward(x, qw, kw, pd, cd, sd, T, Hq, Hkv, hd, 1e-6f, y, rs);
      float* dy = r.in(r.rng.vec((size_t)T * H * hd));
      float* dx = r.out("dqkv_in", (size_t)T * H * hd);
      float* dqw = r.inout("dq_norm_w", r.rng.vec(hd), tol(2e-4, 1e-4));
      float* dkw = r.inout("dk_norm_w", r.rng.vec(hd), tol(2e-4, 1e-4));
      r.op([&] { r.be->qk_norm_rope_backward(dy, x, qw, kw, pd, cd, sd, rs, T, Hq, Hkv, hd, dx, dqw, dkw); });
    }});
  }

  // ---- SwiGLU.
  for (auto shape : {std::pair{4096, 3072}, std::pair{3, 5}}) {
    const int T = shape.first, I = shape.second;
    const std::string tag = std::to_string(T) + "x" + std::to_string(I);
    cs.push_back({"swiglu_fwd/" + tag, tol(1e-6, 1e-5), -1, 3 * kF * T * I, 0, [=](Run& r) {
      float* gu = r.in(r.rng.gauss((size_t)T * 2 * I, 3.0f));
      float* h = r.out("h", (size_t)T * I);
      r.op([&] { r.be->swiglu_forward(gu, T, I, h); });
    }});
    cs.push_back({"swiglu_bwd/" + tag, tol(1e-6, 1e-5), -1, 5 * kF * T * I, 0, [=](Run& r) {
      float* gu = r.in(r.rng.gauss((size_t)T * 2 * I, 3.0f));
      float* dh = r.in(r.rng.vec((size_t)T * I));
      float* dgu = r.out("dgu", (size_t)T * 2 * I);
      r.op([&] { r.be->swiglu_backward(dh, gu, T, I, dgu); });
    }});
  }

  // ---- attention (packed varlen, causal, GQA), forward and backward.
  const std::vector<std::pair<const char*, AttnShape>> attn = {
      {"hd32_gqa2_ragged", {{1, 5, 64, 65, 130}, 4, 2, 32}},
      {"hd64_mha", {{100, 257}, 8, 8, 64}},
      {"hd80_gqa3", {{33, 70}, 6, 2, 80}},
      {"hd64_gqa4_small", {{17, 90}, 8, 2, 64}},
      {"hd128_gqa2_small", {{70, 1, 33}, 4, 2, 128}},
      {"hd128_gqa2", {{1000, 24, 600}, 16, 8, 128}},
      {"hd128_gqa2_1024x2+512", {{1024, 1024, 512}, 16, 8, 128}},
  };
  for (const auto& [tag, s] : attn) {
    add_attention(cs, tag, s, false);
    add_attention(cs, tag, s, true);
  }

  // ---- KV cache and decode attention.
  add_decode(cs, "small_g4", 3, 4, 1, 32, 40, false);
  add_decode(cs, "g2_hd128_ragged", 8, 16, 8, 128, 1024, false);
  add_decode(cs, "g16_hd64", 4, 32, 2, 64, 300, false);
  add_decode(cs, "g2_hd128_small", 3, 4, 2, 128, 200, false);
  add_decode(cs, "g2_hd128_b16x2048", 16, 16, 8, 128, 2048, true);

  // ---- loss heads.
  const LossCfg big{64, 151936, 2.0f}, small{33, 1000, 1.5f}, odd{7, 1001, 1.5f};
  // 7x1001: rows not a multiple of 4 floats take the scalar path.
  for (auto shape : {std::pair{big, "64x151936"}, std::pair{small, "33x1000"}, std::pair{odd, "7x1001"}}) {
    const LossCfg L = shape.first;
    const std::string t = shape.second;
    cs.push_back({"token_logprobs/" + t, tol(1e-5, 1e-5), -1, kF * L.N * L.V, 0, [L](Run& r) {
      VecI tgt(L.N);
      float* x = r.in(r.rng.gauss((size_t)L.N * L.V, L.logit_sd));
      for (auto& v : tgt) v = r.rng.integer(0, L.V - 1);
      int32_t* td = r.in_i(tgt);
      float* lp = r.out("logp", L.N);
      float* ent = r.out("entropy", L.N);
      r.op([&] { r.be->token_logprobs(x, L.N, L.V, td, 0.7f, lp, ent); });
    }});
    cs.push_back({"token_logprobs_noent/" + t, tol(1e-5, 1e-5), -1, kF * L.N * L.V, 0, [L](Run& r) {
      VecI tgt(L.N);
      float* x = r.in(r.rng.gauss((size_t)L.N * L.V, L.logit_sd));
      for (auto& v : tgt) v = r.rng.integer(0, L.V - 1);
      int32_t* td = r.in_i(tgt);
      float* lp = r.out("logp", L.N);
      r.op([&] { r.be->token_logprobs(x, L.N, L.V, td, 1.0f, lp, nullptr); });
    }});
    for (bool alias : {false, true})
      cs.push_back({std::string("cross_entropy/") + t + (alias ? "/alias" : ""), tol(1e-5, 1e-5), -1,
                    3 * kF * L.N * L.V, 0, [L, alias](Run& r) {
        VecF logits = r.rng.gauss((size_t)L.N * L.V, L.logit_sd);
        VecI tgt(L.N);
        for (auto& v : tgt) v = r.rng.integer(0, L.V - 1);
        VecF w = r.rng.vec(L.N, 0.0f, 1.0f);
        w[0] = 0.0f;
        int32_t* td = r.in_i(tgt);
        float* wd = r.in(w);
        const Tol gt = tol(1e-8, 2e-4);
        float* xd;
        float* dl;
        if (alias) xd = dl = r.inout("dlogits", logits, gt);
        else { xd = r.in(logits); dl = r.out("dlogits", logits.size(), gt); }
        float* lp = r.out("logp", L.N);
        r.op([&] { r.be->cross_entropy(xd, L.N, L.V, td, wd, dl, lp); });
      }});
  }
  {
    PpoLossParams def;  // the paper's defaults: no KL, no entropy
    add_ppo(cs, "default/64x151936", big, def, false);
    add_ppo(cs, "default/33x1000", small, def, false);
    add_ppo(cs, "default/33x1000/alias", small, def, true);
    PpoLossParams k1 = def;
    k1.kl = KlEstimator::K1;
    k1.kl_coef = 0.1f;
    add_ppo(cs, "k1/33x1000", small, k1, false);
    PpoLossParams k2 = k1;
    k2.kl = KlEstimator::K2;
    k2.temperature = 0.7f;
    add_ppo(cs, "k2_t0.7/33x1000", small, k2, false);
    PpoLossParams k3 = k1;
    k3.kl = KlEstimator::K3;
    k3.entropy_coef = 0.01f;
    add_ppo(cs, "k3_entropy/33x1000", small, k3, false);
    add_ppo(cs, "k3_entropy/64x151936", big, k3, false);
    add_ppo(cs, "k3_entropy/33x1000/alias", small, k3, true);
    add_ppo(cs, "k3_entropy/7x1001", odd, k3, false);
    PpoLossParams tight = def;
    tight.log_ratio_clamp = 0.3f;  // clamps often: gradient must vanish there
    tight.dual_clip_c = 1.5f;
    add_ppo(cs, "clamp0.3_dual1.5/33x1000", small, tight, false);
  }

  // ---- sampler parity: same tokens as the CPU at several settings.
  const int Vq = 151936;
  add_sample(cs, "greedy/16x151936", 16, Vq, 3.0f, 0, sp(0.7f, 0, 1.0f, true, 11));
  add_sample(cs, "t0/16x151936", 16, Vq, 3.0f, 0, sp(0.0f, 0, 1.0f, false, 11));
  add_sample(cs, "t0.7/16x151936", 16, Vq, 3.0f, 0, sp(0.7f, 0, 1.0f, false, 12));
  add_sample(cs, "t0.7/256x151936", 256, Vq, 3.0f, 0, sp(0.7f, 0, 1.0f, false, 19));
  add_sample(cs, "t1_k50/16x151936", 16, Vq, 3.0f, 0, sp(1.0f, 50, 1.0f, false, 13));
  add_sample(cs, "t0.7_p0.9/16x151936", 16, Vq, 3.0f, 0, sp(0.7f, 0, 0.9f, false, 14));
  add_sample(cs, "t1.3_p0.5/16x151936", 16, Vq, 2.0f, 0, sp(1.3f, 0, 0.5f, false, 15));
  add_sample(cs, "t1_k200_p0.8/16x151936", 16, Vq, 3.0f, 0, sp(1.0f, 200, 0.8f, false, 16));
  add_sample(cs, "t1_p0.999/8x151936", 8, Vq, 1.0f, 0, sp(1.0f, 0, 0.999f, false, 17));
  add_sample(cs, "t1/64x1000", 64, 1000, 1.0f, 0, sp(1.0f, 0, 1.0f, false, 18));
  add_sample(cs, "t0.8/2x20000", 2, 20000, 2.0f, 0, sp(0.8f, 0, 1.0f, false, 27));  // split rows
  add_sample(cs, "greedy/2x20000", 2, 20000, 2.0f, 0, sp(1.0f, 0, 1.0f, true, 28));
  add_sample(cs, "ties_k10/64x1000", 64, 1000, 1.0f, 0.5f, sp(1.0f, 10, 1.0f, false, 21));
  add_sample(cs, "ties_p0.7/64x1000", 64, 1000, 1.0f, 0.5f, sp(0.8f, 0, 0.7f, false, 22));
  add_sample(cs, "ties_k7_p0.6/64x1000", 64, 1000, 1.0f, 1.0f, sp(1.0f, 7, 0.6f, false, 23));
  add_sample(cs, "ties_greedy/64x1000", 64, 1000, 1.0f, 1.0f, sp(1.0f, 0, 1.0f, true, 24));
  add_sample(cs, "k_v-1/8x1000", 8, 1000, 1.0f, 0, sp(1.0f, 999, 1.0f, false, 25));
  add_sample(cs, "tiny_p0.95/5x7", 5, 7, 1.0f, 0, sp(0.9f, 0, 0.95f, false, 26));

  // ---- AdamW.
  for (size_t n : {(size_t)4000003, (size_t)1001}) {
    cs.push_back({"adamw/" + std::to_string(n), tol(1e-7, 2e-6), -1, 7 * kF * n, 0, [n](Run& r) {
      float* p = r.inout("params", r.rng.vec(n));
      float* g = r.in(r.rng.gauss(n, 0.01f));
      float* m = r.inout("m", r.rng.gauss(n, 0.001f));
      VecF vh = r.rng.vec(n, 0.0f, 1e-4f);
      float* v = r.inout("v", vh);
      r.op([&] { r.be->adamw(p, g, m, v, n, 2e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, 7, 0.5f); });
    }});
  }
  cs.push_back({"adamw/misaligned", tol(1e-7, 2e-6), -1, 0, 0, [](Run& r) {
    const size_t n = 1001;
    float* p = r.inout("params", r.rng.vec(n + 1));
    float* g = r.in(r.rng.gauss(n + 1, 0.01f));
    float* m = r.inout("m", r.rng.gauss(n + 1, 0.001f));
    float* v = r.inout("v", r.rng.vec(n + 1, 0.0f, 1e-4f));
    r.op([&] { r.be->adamw(p + 1, g + 1, m + 1, v + 1, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1.0f); });
  }});
  return cs;
}

}  // namespace troupe::optest
