// Fused log-softmax heads over [N, V] logits: token log-probs, the PPO/GRPO policy loss with its
// backward, and cross-entropy. The exact semantics (and their edge cases) are the spec the CUDA
// kernels must match; they are written out above ppo_scalars below.
//
// Layout of the work: rows are independent and split over threads. Inside a row everything is
// done in blocks of 16 floats with GCC/Clang vector extensions, counted from the start of the
// row, with the tail padded into one more block. So every element goes through the same
// instruction sequence and every row reduction has the same association order whatever the
// row's address, batch size or thread count: results are bit-for-bit reproducible.
// (A plain loop would not do: the compiler does not vectorise float sums without -ffast-math,
// and when it vectorises other loops it may peel a pointer-alignment-dependent prologue.)
//
// Per row: pass 1 takes the max, pass 2 sums exp(z - zmax) in double (and sum e*(z - zmax) for
// the entropy), pass 3 writes the gradient. In the default configuration (no entropy bonus)
// pass 2 parks exp(z - zmax) in the gradient row and pass 3 only rescales it, so each element
// costs one exp; with an entropy bonus pass 3 needs log p_j and recomputes the exp instead
// (dlogits may alias logits, so z is gone once the row is overwritten).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "parallel.h"
#include "vec16.h"

namespace troupe::cpu {
namespace {

constexpr int kW = 16;  // floats per block (one AVX-512 register; split by the compiler elsewhere)
typedef float f32v __attribute__((vector_size(64)));
typedef int32_t i32v __attribute__((vector_size(64)));
typedef double f64v __attribute__((vector_size(128)));

constexpr float kInf = std::numeric_limits<float>::infinity();

inline f32v splat(float a) { return f32v{} + a; }
inline f32v loadu(const float* p) {
  f32v v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void storeu(float* p, f32v v) { std::memcpy(p, &v, sizeof v); }
// The last, partial block: lanes >= n get `pad` (chosen so they contribute nothing).
inline f32v load_part(const float* p, int n, float pad) {
  f32v v = splat(pad);
  for (int i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
inline void store_part(float* p, f32v v, int n) {
  for (int i = 0; i < n; ++i) p[i] = v[i];
}
inline f32v vmax(f32v a, f32v b) { return a > b ? a : b; }
inline float hmax(f32v v) {
  float m = v[0];
  for (int i = 1; i < kW; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline double hsum(const f64v& v) {  // fixed lane order
  double s = 0;
  for (int i = 0; i < kW; ++i) s += v[i];
  return s;
}

// exp on 16 lanes: the project's vectorised Cephes expf (vec16.h, <= 2 ulp, 0 below FLT_MIN,
// NaN propagates). f32v and vec::f16v are the same vector type.
using vec::vexp;

struct RowSoftmax {
  float zmax;    // max_j z_j, z = x * inv_t
  double s;      // sum_j exp(z_j - zmax)            (>= 1: the max term is 1)
  double log_s;  // log(s); lse = zmax + log_s
  double ez;     // sum_j exp(z_j - zmax) * (z_j - zmax)   (entropy only)
  // H = -sum p log p = log_s - ez / s
  double entropy() const { return log_s - ez / s; }
};

// Passes 1 and 2. With kStore, e_j = exp(z_j - zmax) is written to e_out (which may be x).
template <bool kEntropy, bool kStore>
RowSoftmax softmax_row(const float* x, int V, float inv_t, float* e_out) {
  const int full = V / kW * kW, rem = V - full;
  f32v m0 = splat(-kInf), m1 = splat(-kInf);  // two chains hide the compare latency
  int j = 0;
  for (; j + 2 * kW <= full; j += 2 * kW) {
    m0 = vmax(m0, loadu(x + j));
    m1 = vmax(m1, loadu(x + j + kW));
  }
  if (j < full) m0 = vmax(m0, loadu(x + j));
  if (rem) m1 = vmax(m1, load_part(x + full, rem, -kInf));
  RowSoftmax r;
  r.zmax = hmax(vmax(m0, m1)) * inv_t;
  const float zmax = r.zmax;

  f64v s = {}, ez = {};
  auto block = [&](f32v xv, float* dst, int n) {
    f32v d = xv * inv_t - zmax;
    f32v e = vexp(d);
    if (kStore) {
      if (n == kW) storeu(dst, e); else store_part(dst, e, n);
    }
    s += __builtin_convertvector(e, f64v);
    if (kEntropy) {
      // e == 0 where z = -inf (masked token or tail padding): 0 * -inf would be NaN.
      f32v ed = e == 0.0f ? splat(0.0f) : e * d;
      ez += __builtin_convertvector(ed, f64v);
    }
  };
  for (j = 0; j < full; j += kW) block(loadu(x + j), kStore ? e_out + j : nullptr, kW);
  if (rem) block(load_part(x + full, rem, -kInf), kStore ? e_out + full : nullptr, rem);
  r.s = hsum(s);
  r.log_s = std::log(r.s);
  r.ez = kEntropy ? hsum(ez) : 0.0;
  return r;
}

// dst_j = e_j * a (dst holds e_j from softmax_row<..., true>), then dst[y] += b.
// For a gradient g * (onehot - p): a = -g / s, b = g.
void scale_row(float* dst, int V, float a, int y, float b) {
  const int full = V / kW * kW, rem = V - full;
  for (int j = 0; j < full; j += kW) storeu(dst + j, loadu(dst + j) * a);
  if (rem) store_part(dst + full, load_part(dst + full, rem, 0.0f) * a, rem);
  dst[y] += b;
}

// dst_j = g * (coef * (1[j==y] - p_j) + ent * p_j * (log p_j + H)); reads x first (may alias).
// This is d/dz of coef*logp - ent*H times g, with dH/dz_j = -p_j (log p_j + H).
void grad_row_entropy(const float* x, float* dst, int V, float inv_t, float zmax, float log_s,
                      float H, float coef, float ent, float g, int y) {
  const int full = V / kW * kW, rem = V - full;
  auto block = [&](f32v xv) {
    f32v lp = (xv * inv_t - zmax) - log_s;  // log p_j
    f32v p = vexp(lp);
    f32v t = p * ((lp + H) * ent - coef);
    t = p > 0.0f ? t : splat(0.0f);  // p == 0 for z = -inf, where (lp + H) is -inf
    return t * g;
  };
  for (int j = 0; j < full; j += kW) storeu(dst + j, block(loadu(x + j)));
  if (rem) store_part(dst + full, block(load_part(x + full, rem, -kInf)), rem);
  dst[y] += coef * g;
}

[[noreturn]] void bad(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

void check_rows(const char* op, const float* logits, int N, int V, const int32_t* targets) {
  if (N < 0) bad(op, "N = " + std::to_string(N) + " is negative");
  if (V <= 0) bad(op, "V = " + std::to_string(V) + " must be positive");
  if (N == 0) return;
  if (!logits) bad(op, "logits is null");
  if (!targets) bad(op, "targets is null");
  for (int n = 0; n < N; ++n)
    if (targets[n] < 0 || targets[n] >= V)
      bad(op, "targets[" + std::to_string(n) + "] = " + std::to_string(targets[n]) +
                  " is outside [0, V=" + std::to_string(V) + ")");
}

void check_temperature(const char* op, float t) {
  if (!(t > 0.0f) || !std::isfinite(t))
    bad(op, "temperature = " + std::to_string(t) + " must be finite and > 0");
}

// Rows per parallel chunk: enough elements (~32K) that a chunk outweighs waking a helper.
size_t row_grain(int V) { return static_cast<size_t>(std::max(1, 32768 / V)); }

}  // namespace

namespace detail {
// Test hook: the vectorised exp used by these kernels, applied elementwise (y may alias x).
void fast_exp_array(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + kW <= n; i += kW) storeu(y + i, vexp(loadu(x + i)));
  if (i < n) store_part(y + i, vexp(load_part(x + i, static_cast<int>(n - i), 0.0f)),
                        static_cast<int>(n - i));
}

// log sum_j exp(x_j * inv_t) as zmax + log(sum exp(z - zmax)), accumulated in double. Used by
// the sampler for its log-probabilities, so they are computed exactly as the loss computes them.
double row_logsumexp(const float* x, int V, float inv_t) {
  RowSoftmax r = softmax_row<false, false>(x, V, inv_t, nullptr);
  return static_cast<double>(r.zmax) + r.log_s;
}
}  // namespace detail

void token_logprobs(const float* logits, int N, int V, const int32_t* targets, float temperature,
                    float* logp, float* entropy) {
  const char* op = "token_logprobs";
  check_rows(op, logits, N, V, targets);
  check_temperature(op, temperature);
  if (N > 0 && !logp) bad(op, "logp is null");
  const float inv_t = 1.0f / temperature;
  parallel_for(static_cast<size_t>(N), row_grain(V), [&](size_t b, size_t e) {
    for (size_t n = b; n < e; ++n) {
      const float* x = logits + n * static_cast<size_t>(V);
      const int y = targets[n];
      RowSoftmax r = entropy ? softmax_row<true, false>(x, V, inv_t, nullptr)
                             : softmax_row<false, false>(x, V, inv_t, nullptr);
      logp[n] = static_cast<float>(static_cast<double>(x[y] * inv_t - r.zmax) - r.log_s);
      if (entropy) entropy[n] = static_cast<float>(r.entropy());
    }
  });
}

// The per-token objective (see backend.h for the contract). With z = logits / T,
// logp = log_softmax(z)[y], A = adv, w = weight:
//   delta = clamp(logp - old_logp, -C, C) with C = log_ratio_clamp; ratio = exp(delta)
//   pg1 = -A*ratio, pg2 = -A*clamp(ratio, 1-eps_low, 1+eps_high), pg = max(pg1, pg2)
//   dual clip (A < 0 and c > 1): pg3 = -A*c, pg = min(pg, pg3)
//   dpg/dlogp = -A*ratio if pg1 is the selected value (pg1 >= pg2: ties go to pg1, and the dual
//   clip is not active) and delta was not clamped (|logp - old_logp| <= C); else 0.
//   KL to the reference (r = ref_logp), value / d/dlogp:
//     k1 = logp - r / 1;   k2 = (logp - r)^2 / 2 / (logp - r);
//     k3 = e^u - u - 1 / 1 - e^u with u = r - logp. The exponent is clamped to [-20, 20] in both
//     the value and the gradient so one wild token cannot overflow the loss: below -20 this
//     changes nothing measurable (e^-20 = 2e-9); above +20 the value is under-estimated and the
//     gradient saturates at 1 - e^20 = -4.9e8 (still pulling logp up, towards the reference),
//     instead of flipping to the +1 a derivative of the clamped value would give. k3 is evaluated
//     in double as expm1(u) - u so it keeps its relative precision when logp ~ r.
//   L = w * (pg + kl_coef*kl - entropy_coef*H)
//   dL/dz_j = w * ((dpg + kl_coef*dkl) * (1[j==y] - p_j) + entropy_coef * p_j*(log p_j + H))
//   dL/dlogits = dL/dz / T. w == 0 gives an all-zero row; the stats are filled regardless.
//   clip code: 3 dual clip active (pg3 < max(pg1, pg2)); else, when pg2 > pg1, 1 if ratio <
//   1-eps_low and 2 if ratio > 1+eps_high; else 0.
// The per-token scalars are float (k3 aside); the row sums are double.
namespace {
struct PpoScalars {
  float pg, kl, coef;  // coef = dpg/dlogp + kl_coef * dkl/dlogp
  float ratio, clip;
};

PpoScalars ppo_scalars(float logp, float old_logp, const float* ref_logp_n, float A,
                       const PpoLossParams& p) {
  PpoScalars o;
  const float C = p.log_ratio_clamp;
  const float delta_raw = logp - old_logp;
  const bool clamped = delta_raw > C || delta_raw < -C;
  const float delta = delta_raw > C ? C : (delta_raw < -C ? -C : delta_raw);
  const float ratio = std::exp(delta);
  const float lo = 1.0f - p.clip_eps_low, hi = 1.0f + p.clip_eps_high;
  const float pg1 = -A * ratio;
  const float pg2 = -A * (ratio < lo ? lo : (ratio > hi ? hi : ratio));
  const bool take1 = pg1 >= pg2;
  float pg = take1 ? pg1 : pg2;
  bool dual = false;
  if (A < 0.0f && p.dual_clip_c > 1.0f) {
    const float pg3 = -A * p.dual_clip_c;
    if (pg3 < pg) {
      dual = true;
      pg = pg3;
    }
  }
  const float dpg = (take1 && !dual && !clamped) ? -A * ratio : 0.0f;
  o.clip = dual ? 3.0f : (pg2 > pg1 && ratio < lo) ? 1.0f : (pg2 > pg1 && ratio > hi) ? 2.0f : 0.0f;

  float kl = 0.0f, dkl = 0.0f;
  if (p.kl != KlEstimator::None) {
    const float d = logp - *ref_logp_n;
    switch (p.kl) {
      case KlEstimator::K1: kl = d; dkl = 1.0f; break;
      case KlEstimator::K2: kl = 0.5f * d * d; dkl = d; break;
      case KlEstimator::K3: {
        // In double: e^u - u - 1 ~ u^2/2 cancels in float for small u even with expm1.
        const double u = -static_cast<double>(d);
        const double em1 = std::expm1(u < -20.0 ? -20.0 : (u > 20.0 ? 20.0 : u));
        kl = static_cast<float>(em1 - u);  // e^u - u - 1
        dkl = static_cast<float>(-em1);    // 1 - e^u
        break;
      }
      case KlEstimator::None: break;
    }
  }
  o.pg = pg;
  o.kl = kl;
  o.coef = dpg + (p.kl != KlEstimator::None ? p.kl_coef * dkl : 0.0f);
  o.ratio = ratio;
  return o;
}
}  // namespace

void ppo_loss(const float* logits, int N, int V, const int32_t* targets, const float* old_logp,
              const float* ref_logp, const float* adv, const float* weight,
              const PpoLossParams& p, float* dlogits, float* stats) {
  const char* op = "ppo_loss";
  check_rows(op, logits, N, V, targets);
  check_temperature(op, p.temperature);
  const int kl = static_cast<int>(p.kl);
  if (kl < 0 || kl > 3) bad(op, "p.kl = " + std::to_string(kl) + " is not a KlEstimator");
  if (!(p.clip_eps_low >= 0.0f && p.clip_eps_low < 1.0f))
    bad(op, "p.clip_eps_low = " + std::to_string(p.clip_eps_low) + " must be in [0, 1)");
  if (!(p.clip_eps_high >= 0.0f))
    bad(op, "p.clip_eps_high = " + std::to_string(p.clip_eps_high) + " must be >= 0");
  if (!(p.log_ratio_clamp > 0.0f))
    bad(op, "p.log_ratio_clamp = " + std::to_string(p.log_ratio_clamp) + " must be > 0");
  if (std::isnan(p.dual_clip_c) || !std::isfinite(p.kl_coef) || !std::isfinite(p.entropy_coef))
    bad(op, "p.dual_clip_c, p.kl_coef and p.entropy_coef must be numbers");
  if (N == 0) return;
  if (!old_logp) bad(op, "old_logp is null");
  if (!adv) bad(op, "adv is null");
  if (!weight) bad(op, "weight is null");
  if (!dlogits) bad(op, "dlogits is null");
  if (!stats) bad(op, "stats is null");
  if (p.kl != KlEstimator::None && !ref_logp) bad(op, "ref_logp is null but p.kl != None");

  const float inv_t = 1.0f / p.temperature;
  const float ent = p.entropy_coef;
  parallel_for(static_cast<size_t>(N), row_grain(V), [&](size_t b, size_t e) {
    for (size_t n = b; n < e; ++n) {
      const float* x = logits + n * static_cast<size_t>(V);
      float* dx = dlogits + n * static_cast<size_t>(V);
      const int y = targets[n];
      const float w = weight[n];
      const float zy = x[y] * inv_t;  // read before dx (maybe x) is written
      // Without an entropy bonus the gradient is a multiple of (onehot - p): park e_j in dx.
      const bool park = w != 0.0f && ent == 0.0f;
      RowSoftmax r = park ? softmax_row<true, true>(x, V, inv_t, dx)
                          : softmax_row<true, false>(x, V, inv_t, nullptr);
      const float logp = static_cast<float>(static_cast<double>(zy - r.zmax) - r.log_s);
      const float H = static_cast<float>(r.entropy());
      PpoScalars s = ppo_scalars(logp, old_logp[n], ref_logp ? ref_logp + n : nullptr, adv[n], p);

      float* st = stats + n * kTokenStatCols;
      st[kStatLogp] = logp;
      st[kStatEntropy] = H;
      st[kStatRatio] = s.ratio;
      st[kStatPgLoss] = s.pg;
      st[kStatKl] = s.kl;
      st[kStatClip] = s.clip;

      const float g = w * inv_t;  // dL/dlogits = w * dl/dz / T
      if (w == 0.0f || (s.coef == 0.0f && ent == 0.0f)) {
        // Masked token, or a clipped/clamped one with no KL or entropy term: no gradient.
        std::memset(dx, 0, sizeof(float) * static_cast<size_t>(V));
      } else if (park) {
        const float gc = g * s.coef;
        scale_row(dx, V, static_cast<float>(-static_cast<double>(gc) / r.s), y, gc);
      } else {
        grad_row_entropy(x, dx, V, inv_t, r.zmax, static_cast<float>(r.log_s), H, s.coef, ent, g,
                         y);
      }
    }
  });
}

void cross_entropy(const float* logits, int N, int V, const int32_t* targets, const float* weight,
                   float* dlogits, float* logp) {
  const char* op = "cross_entropy";
  check_rows(op, logits, N, V, targets);
  if (N == 0) return;
  if (!weight) bad(op, "weight is null");
  if (!dlogits) bad(op, "dlogits is null");
  if (!logp) bad(op, "logp is null");
  parallel_for(static_cast<size_t>(N), row_grain(V), [&](size_t b, size_t e) {
    for (size_t n = b; n < e; ++n) {
      const float* x = logits + n * static_cast<size_t>(V);
      float* dx = dlogits + n * static_cast<size_t>(V);
      const int y = targets[n];
      const float w = weight[n];
      const float zy = x[y];
      RowSoftmax r = w != 0.0f ? softmax_row<false, true>(x, V, 1.0f, dx)
                               : softmax_row<false, false>(x, V, 1.0f, nullptr);
      logp[n] = static_cast<float>(static_cast<double>(zy - r.zmax) - r.log_s);
      if (w == 0.0f) {
        std::memset(dx, 0, sizeof(float) * static_cast<size_t>(V));
      } else {
        // d(-w logp)/dz = w (p - onehot) = -w (onehot - p)
        scale_row(dx, V, static_cast<float>(static_cast<double>(w) / r.s), y, -w);
      }
    }
  });
}

}  // namespace troupe::cpu
