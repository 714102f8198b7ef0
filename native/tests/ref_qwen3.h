// An independent float64 Qwen3 forward, written as plainly as possible from the Hugging Face
// definition (no shared code with native/model), used to check the optimized model's forward
// and, through finite differences, its backward.
#pragma once
#include <cmath>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace troupe::test {

struct RefModel {
  ModelConfig c;
  WeightLayout L;
  std::vector<double> p;  // flat parameters, same layout as the policy

  const double* at(size_t off) const { return p.data() + off; }

  static void rmsnorm(const double* x, const double* w, int n, double eps, double* y) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += x[i] * x[i];
    double r = 1.0 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
  }
  // y[o] = sum_i W[o, i] x[i]  (W row-major [out, in])
  static void linear(const double* W, const double* x, int out, int in, double* y) {
    for (int o = 0; o < out; ++o) {
      double s = 0;
      for (int i = 0; i < in; ++i) s += W[static_cast<size_t>(o) * in + i] * x[i];
      y[o] = s;
    }
  }
  void rope(double* v, int pos) const {
    const int hd = c.head_dim, half = hd / 2;
    for (int i = 0; i < half; ++i) {
      double inv = std::pow(c.rope_theta, -2.0 * i / hd);
      double a = pos * inv, cs = std::cos(a), sn = std::sin(a);
      double x1 = v[i], x2 = v[i + half];
      v[i] = x1 * cs - x2 * sn;
      v[i + half] = x2 * cs + x1 * sn;
    }
  }

  // logits [T, V] for one sequence.
  std::vector<double> forward_seq(const std::vector<int>& toks) const {
    const int T = static_cast<int>(toks.size()), D = c.hidden_size, hd = c.head_dim;
    const int Hq = c.num_heads, Hkv = c.num_kv_heads, I = c.intermediate_size, V = c.vocab_size;
    std::vector<double> x(static_cast<size_t>(T) * D);
    for (int t = 0; t < T; ++t)
      for (int d = 0; d < D; ++d) x[t * D + d] = at(L.embed)[static_cast<size_t>(toks[t]) * D + d];
    std::vector<double> h(D), q(Hq * hd), k(static_cast<size_t>(T) * Hkv * hd),
        v(static_cast<size_t>(T) * Hkv * hd), qs(static_cast<size_t>(T) * Hq * hd), o(Hq * hd),
        tmp(D), g(I), u(I);
    for (int l = 0; l < c.num_layers; ++l) {
      const LayerOffsets& lo = L.layers[l];
      const double* Wq = at(lo.qkv);
      const double* Wk = Wq + static_cast<size_t>(Hq) * hd * D;
      const double* Wv = Wk + static_cast<size_t>(Hkv) * hd * D;
      for (int t = 0; t < T; ++t) {
        rmsnorm(&x[t * D], at(lo.input_norm), D, c.rms_norm_eps, h.data());
        linear(Wq, h.data(), Hq * hd, D, &qs[static_cast<size_t>(t) * Hq * hd]);
        linear(Wk, h.data(), Hkv * hd, D, &k[static_cast<size_t>(t) * Hkv * hd]);
        linear(Wv, h.data(), Hkv * hd, D, &v[static_cast<size_t>(t) * Hkv * hd]);
        for (int hh = 0; hh < Hq; ++hh) {
          double* qh = &qs[(static_cast<size_t>(t) * Hq + hh) * hd];
          std::vector<double> n(hd);
          rmsnorm(qh, at(lo.q_norm), hd, c.rms_norm_eps, n.data());
          for (int i = 0; i < hd; ++i) qh[i] = n[i];
          rope(qh, t);
        }
        for (int hh = 0; hh < Hkv; ++hh) {
          double* kh = &k[(static_cast<size_t>(t) * Hkv + hh) * hd];
          std::vector<double> n(hd);
          rmsnorm(kh, at(lo.k_norm), hd, c.rms_norm_eps, n.data());
          for (int i = 0; i < hd; ++i) kh[i] = n[i];
          rope(kh, t);
        }
      }
      std::vector<double> xn(x);
      for (int t = 0; t < T; ++t) {
        for (int hh = 0; hh < Hq; ++hh) {
          const int kvh = hh / (Hq / Hkv);
          const double* qh = &qs[(static_cast<size_t>(t) * Hq + hh) * hd];
          std::vector<double> sc(t + 1);
          double mx = -1e300;
          for (int j = 0; j <= t; ++j) {
            double s = 0;
            for (int i = 0; i < hd; ++i) s += qh[i] * k[(static_cast<size_t>(j) * Hkv + kvh) * hd + i];
            sc[j] = s / std::sqrt(static_cast<double>(hd));
            mx = std::max(mx, sc[j]);
          }
          double z = 0;
          for (int j = 0; j <= t; ++j) z += (sc[j] = std::exp(sc[j] - mx));
          for (int i = 0; i < hd; ++i) {
            double s = 0;
            for (int j = 0; j <= t; ++j) s += sc[j] / z * v[(static_cast<size_t>(j) * Hkv + kvh) * hd + i];
            o[hh * hd + i] = s;
          }
        }
        linear(at(lo.o_proj), o.data(), D, Hq * hd, tmp.data());
        for (int d = 0; d < D; ++d) xn[t * D + d] += tmp[d];
      }
      x = xn;
      const double* Wg = at(lo.gate_up);
      const double* Wu = Wg + static_cast<size_t>(I) * D;
      for (int t = 0; t < T; ++t) {
        rmsnorm(&x[t * D], at(lo.post_norm), D, c.rms_norm_eps, h.data());
        linear(Wg, h.data(), I, D, g.data());
        linear(Wu, h.data(), I, D, u.data());
        for (int i = 0; i < I; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
        linear(at(lo.down), g.data(), D, I, tmp.data());
        for (int d = 0; d < D; ++d) x[t * D + d] += tmp[d];
      }
    }
    std::vector<double> logits(static_cast<size_t>(T) * V);
    for (int t = 0; t < T; ++t) {
      rmsnorm(&x[t * D], at(L.final_norm), D, c.rms_norm_eps, h.data());
      linear(at(L.lm_head), h.data(), V, D, &logits[static_cast<size_t>(t) * V]);
    }
    return logits;
  }
};

}  // namespace troupe::test
