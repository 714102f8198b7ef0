// Fused log-softmax heads over [N, V] logits: token log-probs, the PPO/GRPO loss with its
// backward, and cross-entropy. One block per row streams the row twice (statistics, then the
// gradient), so V = 151936 needs nothing beyond the logits and the gradient row themselves.
//
// Semantics follow native/cpu/loss.cpp exactly (see its ppo_row comment); the arithmetic
// differs only in summation order: per thread an online softmax (running max m, sum of
// exp(z - m) and, for the entropy, sum of exp(z - m) * (z - m), the sums in double), then a
// block merge in a fixed tree. A thread always handles the same 4-element groups (j = 4i..4i+3,
// i = tid, tid + blockDim, ...) whether or not the row is 16-byte aligned, so the bits depend only
// on the data, never on the address.
//
// dlogits may alias logits: pass 1 only reads; every element of pass 2 is read and then written
// by the same thread.
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

struct RowStats {
  float zmax;      // max_j z_j
  double s;        // sum_j exp(z_j - zmax)
  double log_s;    // log(s); lse = zmax + log_s
  double entropy;  // log_s - sum_j exp(z_j - zmax) (z_j - zmax) / s
};

__device__ __forceinline__ bool row_aligned(const float* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// Calls f(j, value) for this thread's elements, 4 consecutive at a time.
template <typename F>
__device__ __forceinline__ void for_each_elem(const float* x, int V, F f) {
  const int groups = (V + 3) / 4;
  const bool vec = row_aligned(x) && (V & 3) == 0;
  for (int i = threadIdx.x; i < groups; i += blockDim.x) {
    const int j = 4 * i;
    if (vec) {
      const float4 v = reinterpret_cast<const float4*>(x)[i];
      f(j, v.x); f(j + 1, v.y); f(j + 2, v.z); f(j + 3, v.w);
    } else {
      for (int k = 0; k < 4 && j + k < V; ++k) f(j + k, x[j + k]);
    }
  }
}

// Same grouping for writes: dst[j] = g(j, x[j]).
template <typename G>
__device__ __forceinline__ void map_row(const float* x, float* dst, int V, G g) {
  const int groups = (V + 3) / 4;
  const bool vec = row_aligned(x) && row_aligned(dst) && (V & 3) == 0;
  for (int i = threadIdx.x; i < groups; i += blockDim.x) {
    const int j = 4 * i;
    if (vec) {
      const float4 v = reinterpret_cast<const float4*>(x)[i];
      float4 o;
      o.x = g(j, v.x); o.y = g(j + 1, v.y); o.z = g(j + 2, v.z); o.w = g(j + 3, v.w);
      reinterpret_cast<float4*>(dst)[i] = o;
    } else {
      for (int k = 0; k < 4 && j + k < V; ++k) dst[j + k] = g(j + k, x[j + k]);
    }
  }
}

template <bool kEntropy>
__device__ RowStats row_stats(const float* x, int V, float inv_t) {
  __shared__ float redf[32];
  __shared__ double redd[32];
  float m = -INFINITY;
  double s = 0.0, ez = 0.0;
  for_each_elem(x, V, [&](int, float xv) {
    const float z = xv * inv_t;
    if (z > m) {
      if (m != -INFINITY) {
        const float a = expf(m - z);
        if (kEntropy) ez = (ez + s * (double)(m - z)) * a;
        s *= a;
      }
      m = z;
    }
    if (m == -INFINITY) return;  // every z so far is -inf
    const float d = z - m, e = expf(d);
    s += e;
    if (kEntropy && e != 0.f) ez += (double)(e * d);
  });
  const float M = block_max(m, redf);
  if (m != -INFINITY && M != m) {
    const float a = expf(m - M);
    if (kEntropy) ez = (ez + s * (double)(m - M)) * a;
    s *= a;
  }
  RowStats r;
  r.zmax = M;
  r.s = block_sum(s, redd);
  if (kEntropy) ez = block_sum(ez, redd);
  r.log_s = log(r.s);
  r.entropy = kEntropy ? r.log_s - ez / r.s : 0.0;
  return r;
}

int threads_for(int V) { return V >= 32768 ? 512 : V >= 4096 ? 256 : 128; }

// ---- token_logprobs -----------------------------------------------------------------------------
template <bool kEntropy>
__global__ void token_logprobs_kernel(const float* __restrict__ logits, int V,
                                      const int32_t* __restrict__ targets, float inv_t,
                                      float* __restrict__ logp, float* __restrict__ entropy) {
  const size_t n = blockIdx.x;
  const float* x = logits + n * V;
  const RowStats r = row_stats<kEntropy>(x, V, inv_t);
  if (threadIdx.x == 0) {
    const int y = targets[n];
    const bool ok = y >= 0 && y < V;  // a bad target shows as NaN, it cannot throw from here
    logp[n] = ok ? (float)((double)(x[y] * inv_t - r.zmax) - r.log_s) : NAN;
    if (kEntropy) entropy[n] = (float)r.entropy;
  }
}

// ---- ppo_loss -----------------------------------------------------------------------------------
struct PpoArgs {
  float eps_low, eps_high, dual_c, ratio_clamp, kl_coef, ent_coef, inv_t;
  int kl;
};

struct PpoScalars {
  float pg, kl, coef, ratio, clip;
};

// Per-token objective, line for line as native/cpu/loss.cpp's ppo_scalars.
__device__ PpoScalars ppo_scalars(float logp, float old_logp, const float* ref_n, float A,
                                  const PpoArgs& p) {
  PpoScalars o;
  const float C = p.ratio_clamp;
  const float delta_raw = logp - old_logp;
  const bool clamped = delta_raw > C || delta_raw < -C;
  const float delta = delta_raw > C ? C : (delta_raw < -C ? -C : delta_raw);
  const float ratio = expf(delta);
  const float lo = 1.0f - p.eps_low, hi = 1.0f + p.eps_high;
  const float pg1 = -A * ratio;
  const float pg2 = -A * (ratio < lo ? lo : (ratio > hi ? hi : ratio));
  const bool take1 = pg1 >= pg2;
  float pg = take1 ? pg1 : pg2;
  bool dual = false;
  if (A < 0.0f && p.dual_c > 1.0f) {
    const float pg3 = -A * p.dual_c;
    if (pg3 < pg) {
      dual = true;
      pg = pg3;
    }
  }
  const float dpg = (take1 && !dual && !clamped) ? -A * ratio : 0.0f;
  o.clip = dual ? 3.0f : (pg2 > pg1 && ratio < lo) ? 1.0f : (pg2 > pg1 && ratio > hi) ? 2.0f : 0.0f;
  float kl = 0.0f, dkl = 0.0f;
  if (p.kl != 0) {
    const float d = logp - *ref_n;
    if (p.kl == 1) {
      kl = d;
      dkl = 1.0f;
    } else if (p.kl == 2) {
      kl = 0.5f * d * d;
      dkl = d;
    } else {
      const float u = -d;
      const float em1 = expm1f(u < -20.0f ? -20.0f : (u > 20.0f ? 20.0f : u));
      kl = em1 - u;
      dkl = -em1;
    }
  }
  o.pg = pg;
  o.kl = kl;
  o.coef = dpg + (p.kl != 0 ? p.kl_coef * dkl : 0.0f);
  o.ratio = ratio;
  return o;
}

template <bool kEntropyGrad>
__global__ void ppo_loss_kernel(const float* logits, int V, const int32_t* __restrict__ targets,
                                const float* __restrict__ old_logp,
                                const float* __restrict__ ref_logp, const float* __restrict__ adv,
                                const float* __restrict__ weight, PpoArgs p, float* dlogits,
                                float* __restrict__ stats) {
  __shared__ float sh_coef, sh_H;
  __shared__ int sh_zero;
  const size_t n = blockIdx.x;
  const float* x = logits + n * V;
  float* dx = dlogits + n * V;
  const int y = targets[n];
  const bool ok = y >= 0 && y < V;
  const float zy = ok ? x[y] * p.inv_t : NAN;  // read before any thread writes dx (maybe x)
  const RowStats r = row_stats<true>(x, V, p.inv_t);  // ends with block-wide syncs
  const float w = weight[n];
  if (threadIdx.x == 0) {
    const float logp = (float)((double)(zy - r.zmax) - r.log_s);
    const float H = (float)r.entropy;
    const PpoScalars s = ppo_scalars(logp, old_logp[n], ref_logp ? ref_logp + n : nullptr,
                                     adv[n], p);
    float* st = stats + n * kTokenStatCols;
    st[kStatLogp] = logp;
    st[kStatEntropy] = H;
    st[kStatRatio] = s.ratio;
    st[kStatPgLoss] = s.pg;
    st[kStatKl] = s.kl;
    st[kStatClip] = s.clip;
    sh_coef = s.coef;
    sh_H = H;
    sh_zero = !ok || w == 0.0f || (s.coef == 0.0f && p.ent_coef == 0.0f);
  }
  __syncthreads();
  const float coef = sh_coef, H = sh_H, g = w * p.inv_t;  // dL/dlogits = w * dl/dz / T
  if (sh_zero) {
    map_row(x, dx, V, [](int, float) { return 0.0f; });
    return;
  }
  const float zmax = r.zmax, log_s = (float)r.log_s, inv_t = p.inv_t, ent = p.ent_coef;
  if (!kEntropyGrad) {
    const float gc = g * coef;
    // g * coef * (1[j==y] - p_j)
    map_row(x, dx, V, [&](int j, float xv) {
      const float pj = expf((xv * inv_t - zmax) - log_s);
      return j == y ? gc - gc * pj : -gc * pj;
    });
  } else {
    // g * (coef * (1[j==y] - p_j) + ent * p_j * (log p_j + H))
    map_row(x, dx, V, [&](int j, float xv) {
      const float lp = (xv * inv_t - zmax) - log_s;
      const float pj = expf(lp);
      float t = pj > 0.0f ? pj * ((lp + H) * ent - coef) : 0.0f;
      t *= g;
      return j == y ? t + coef * g : t;
    });
  }
}

// ---- cross_entropy ------------------------------------------------------------------------------
__global__ void cross_entropy_kernel(const float* logits, int V,
                                     const int32_t* __restrict__ targets,
                                     const float* __restrict__ weight, float* dlogits,
                                     float* __restrict__ logp) {
  const size_t n = blockIdx.x;
  const float* x = logits + n * V;
  float* dx = dlogits + n * V;
  const int y = targets[n];
  const bool ok = y >= 0 && y < V;
  const float zy = ok ? x[y] : NAN;
  const RowStats r = row_stats<false>(x, V, 1.0f);
  const float w = weight[n];
  if (threadIdx.x == 0) logp[n] = (float)((double)(zy - r.zmax) - r.log_s);
  if (!ok || w == 0.0f) {
    map_row(x, dx, V, [](int, float) { return 0.0f; });
    return;
  }
  const float zmax = r.zmax, log_s = (float)r.log_s;
  // d(-w logp)/dz_j = w * (p_j - 1[j==y])
  map_row(x, dx, V, [&](int j, float xv) {
    const float pj = expf((xv - zmax) - log_s);
    return j == y ? w * pj - w : w * pj;
  });
}

void check_rows(const char* op, int N, int V) {
  if (N < 0) throw std::invalid_argument(std::string(op) + ": N must be >= 0");
  if (V <= 0) throw std::invalid_argument(std::string(op) + ": V must be > 0");
}
void check_temperature(const char* op, float t) {
  if (!(t > 0.0f) || !std::isfinite(t))
    throw std::invalid_argument(std::string(op) + ": temperature must be finite and > 0");
}

}  // namespace

void token_logprobs(Ctx& ctx, const float* logits, int N, int V, const int32_t* targets,
                    float temperature, float* logp, float* entropy) {
  check_rows("token_logprobs", N, V);
  check_temperature("token_logprobs", temperature);
  if (!N) return;
  require(logits && targets && logp, "token_logprobs: null logits, targets or logp");
  const float inv_t = 1.0f / temperature;
  if (entropy)
    token_logprobs_kernel<true><<<N, threads_for(V), 0, ctx.stream>>>(logits, V, targets, inv_t, logp, entropy);
  else
    token_logprobs_kernel<false><<<N, threads_for(V), 0, ctx.stream>>>(logits, V, targets, inv_t, logp, nullptr);
  TROUPE_LAUNCH_CHECK("token_logprobs_kernel");
}

void ppo_loss(Ctx& ctx, const float* logits, int N, int V, const int32_t* targets,
              const float* old_logp, const float* ref_logp, const float* adv,
              const float* weight, const PpoLossParams& p, float* dlogits, float* stats) {
  const char* op = "ppo_loss";
  check_rows(op, N, V);
  check_temperature(op, p.temperature);
  const int kl = static_cast<int>(p.kl);
  require(kl >= 0 && kl <= 3, "ppo_loss: p.kl is not a KlEstimator");
  require(p.clip_eps_low >= 0.0f && p.clip_eps_low < 1.0f, "ppo_loss: p.clip_eps_low must be in [0, 1)");
  require(p.clip_eps_high >= 0.0f, "ppo_loss: p.clip_eps_high must be >= 0");
  require(p.log_ratio_clamp > 0.0f, "ppo_loss: p.log_ratio_clamp must be > 0");
  require(!std::isnan(p.dual_clip_c) && std::isfinite(p.kl_coef) && std::isfinite(p.entropy_coef),
          "ppo_loss: p.dual_clip_c, p.kl_coef and p.entropy_coef must be numbers");
  if (!N) return;
  require(logits && targets && old_logp && adv && weight && dlogits && stats,
          "ppo_loss: null logits, targets, old_logp, adv, weight, dlogits or stats");
  require(p.kl == KlEstimator::None || ref_logp, "ppo_loss: ref_logp is null but p.kl != None");
  PpoArgs a{p.clip_eps_low, p.clip_eps_high, p.dual_clip_c, p.log_ratio_clamp,
            p.kl_coef,      p.entropy_coef,  1.0f / p.temperature, kl};
  if (p.entropy_coef != 0.0f)
    ppo_loss_kernel<true><<<N, threads_for(V), 0, ctx.stream>>>(logits, V, targets, old_logp, ref_logp, adv, weight, a, dlogits, stats);
  else
    ppo_loss_kernel<false><<<N, threads_for(V), 0, ctx.stream>>>(logits, V, targets, old_logp, ref_logp, adv, weight, a, dlogits, stats);
  TROUPE_LAUNCH_CHECK("ppo_loss_kernel");
}

void cross_entropy(Ctx& ctx, const float* logits, int N, int V, const int32_t* targets,
                   const float* weight, float* dlogits, float* logp) {
  check_rows("cross_entropy", N, V);
  if (!N) return;
  require(logits && targets && weight && dlogits && logp,
          "cross_entropy: null logits, targets, weight, dlogits or logp");
  cross_entropy_kernel<<<N, threads_for(V), 0, ctx.stream>>>(logits, V, targets, weight, dlogits, logp);
  TROUPE_LAUNCH_CHECK("cross_entropy_kernel");
}

}  // namespace troupe::cuda
