// Token sampling: Gumbel-max over the allowed set, keyed by (seed, call_id, position, j), with
// the semantics of native/cpu/sampler.cpp (its header comment is the spec):
//  - greedy / temperature <= 0: argmax of the logits (lowest index on ties), logp under T = 1;
//  - otherwise z = x * (1/T); top-k keeps the k largest logits (ties: lower index); top-p then
//    keeps the smallest prefix, by logit descending then index, whose probability under
//    softmax(z) renormalised over the allowed set reaches top_p (everything if rounding leaves
//    the total short); token = argmax over the kept set of z_j + g_j, g_j = -log(-log u_j),
//    u_j = the philox uniform capped below 1; logp = z_tok - logsumexp over the kept set.
//
// Same tokens as the CPU: u_j comes from the same philox bits, the logs are the same Cephes
// polynomial, and every float operation is written with explicit rounding (__fmul_rn /
// __fadd_rn) so the compiler cannot fuse it into an FMA. A CPU build without FMA contraction
// computes bit-identical scores; with contraction (-march=native) scores may differ in the last
// bit, which changes a token only when two perturbed scores tie to within an ulp.
//
// Paths:
//  - greedy and untruncated draws: a split-V pass (several blocks per row when B is small)
//    writes per-chunk (best score, index, max, sum) partials; a combine kernel merges them in
//    chunk order. Argmax merging is exact, and the chunk count depends only on (B, V).
//  - truncated draws: one block per row. Top-k and top-p cuts are found by radix select over
//    the logits' order-preserving 32-bit keys (8 bits per pass, shared-memory histograms), the
//    top-p pass weighting each bucket by the probability mass in 2^-60 fixed point so the sums
//    are exact and order-free; ties at the cut are resolved by a second radix select over the
//    index. No sort, no per-row scratch beyond the histograms.
#include <cfloat>

#include "core/philox.h"
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

// ---- noise -----------------------------------------------------------------------------------

// Cephes logf, operation for operation as sampler.cpp's vlog, unfused.
__device__ __forceinline__ float cephes_logf(float x) {
  const int bits = __float_as_int(x);
  int e = ((bits >> 23) & 0xff) - 127;
  float m = __int_as_float((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  if (m > 1.41421356237f) {
    m = __fmul_rn(m, 0.5f);
    e += 1;
  }
  const float f = __fadd_rn(m, -1.0f);
  const float z = __fmul_rn(f, f);
  float y = 7.0376836292e-2f;
  y = __fadd_rn(__fmul_rn(y, f), -1.1514610310e-1f);
  y = __fadd_rn(__fmul_rn(y, f), 1.1676998740e-1f);
  y = __fadd_rn(__fmul_rn(y, f), -1.2420140846e-1f);
  y = __fadd_rn(__fmul_rn(y, f), 1.4249322787e-1f);
  y = __fadd_rn(__fmul_rn(y, f), -1.6668057665e-1f);
  y = __fadd_rn(__fmul_rn(y, f), 2.0000714765e-1f);
  y = __fadd_rn(__fmul_rn(y, f), -2.4999993993e-1f);
  y = __fadd_rn(__fmul_rn(y, f), 3.3333331174e-1f);
  y = __fmul_rn(__fmul_rn(y, f), z);
  const float ef = static_cast<float>(e);
  y = __fadd_rn(y, __fmul_rn(ef, -2.12194440e-4f));
  y = __fadd_rn(y, -__fmul_rn(0.5f, z));
  return __fadd_rn(__fadd_rn(f, y), __fmul_rn(ef, 0.693359375f));
}

__device__ __forceinline__ float gumbel(uint32_t j, uint64_t seed, uint64_t call_id, int32_t pos) {
  const Philox4 r = philox4x32_10(j, static_cast<uint32_t>(pos), static_cast<uint32_t>(call_id),
                                  static_cast<uint32_t>(call_id >> 32),
                                  static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  // uint_to_unit_open(bits) of philox.h: (k + 0.5) / 2^23 from 23 bits, at most 1 - 2^-24.
  float u = __fmul_rn(__fadd_rn(static_cast<float>(r.v[0] >> 9), 0.5f), 1.0f / 8388608.0f);
  u = u > 0.99999994f ? 0.99999994f : u;
  return -cephes_logf(-cephes_logf(u));
}

// Score of entry j: z_j + g_j with z_j = x_j * inv_t, unfused.
__device__ __forceinline__ float noisy(float x, float inv_t, uint32_t j, uint64_t seed,
                                       const SampleRowKey& k) {
  return __fadd_rn(__fmul_rn(x, inv_t), gumbel(j, seed, k.call_id, k.position));
}

struct Best {
  float v;
  int32_t j;
};
// Strictly greater wins; equal values go to the lower index; j < 0 is "nothing yet".
__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.j < 0) return a;
  if (a.j < 0) return b;
  if (b.v > a.v || (b.v == a.v && b.j < a.j)) return b;
  return a;
}
__device__ __forceinline__ void offer(Best& b, float v, int32_t j) {
  if (v > b.v || (v == b.v && b.j >= 0 && j < b.j)) b = {v, j};
}

__device__ Best block_best(Best b, Best* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.j, o)};
    b = better(b, other);
  }
  __syncthreads();
  if (lane == 0) red[warp] = b;
  __syncthreads();
  b = lane < nw ? red[lane] : Best{-INFINITY, -1};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.j, o)};
    b = better(b, other);
  }
  return b;
}

// ---- untruncated / greedy: split-V partials ---------------------------------------------------

struct Partial {
  float m;     // max of z over the chunk
  float bestv;
  int32_t bestj;
  int32_t pad_;
  double s;    // sum exp(z - m) over the chunk
};

template <bool kNoise>
__global__ void sample_partial_kernel(const float* __restrict__ logits, int V, int chunk,
                                      float inv_t, uint64_t seed,
                                      const SampleRowKey* __restrict__ keys,
                                      Partial* __restrict__ part) {
  __shared__ float redf[32];
  __shared__ double redd[32];
  __shared__ Best redb[32];
  const int b = blockIdx.y, c = blockIdx.x;
  const float* x = logits + (size_t)b * V;
  const int j0 = c * chunk, j1 = min(V, j0 + chunk);
  SampleRowKey key{};
  if (kNoise) key = keys[b];
  Best best{-INFINITY, -1};
  float m = -INFINITY;
  double s = 0.0;
  for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
    const float xv = x[j];
    offer(best, kNoise ? noisy(xv, inv_t, j, seed, key) : xv, j);
    const float z = __fmul_rn(xv, inv_t);
    if (z > m) {
      if (m != -INFINITY) s *= expf(m - z);
      m = z;
    }
    if (m != -INFINITY) s += expf(z - m);
  }
  best = block_best(best, redb);
  const float M = block_max(m, redf);
  if (m != -INFINITY && m != M) s *= expf(m - M);
  s = block_sum(s, redd);
  if (threadIdx.x == 0) part[(size_t)b * gridDim.x + c] = Partial{M, best.v, best.j, 0, s};
}

__global__ void sample_combine_kernel(const float* __restrict__ logits, int B, int V, int chunks,
                                      float inv_t, const Partial* __restrict__ part,
                                      int32_t* __restrict__ tokens, float* __restrict__ logp) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const Partial* p = part + (size_t)b * chunks;
  Best best{-INFINITY, -1};
  float M = -INFINITY;
  for (int c = 0; c < chunks; ++c) {
    best = better(best, Best{p[c].bestv, p[c].bestj});
    M = fmaxf(M, p[c].m);
  }
  double S = 0.0;
  if (M != -INFINITY)
    for (int c = 0; c < chunks; ++c)
      if (p[c].m != -INFINITY) S += p[c].s * (double)expf(p[c].m - M);
  // Nothing beat -inf (all -inf or NaN): the first entry, as on the CPU.
  const int tok = best.j < 0 ? 0 : best.j;
  tokens[b] = tok;
  logp[b] = (float)((double)__fmul_rn(logits[(size_t)b * V + tok], inv_t) - ((double)M + log(S)));
}

// ---- truncated draws: radix select ------------------------------------------------------------

__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // larger float <=> larger key
}

struct SelectSmem {
  unsigned int cnt[256];
  unsigned long long wt[256];
  unsigned int sel_digit, found;
  unsigned long long sel_above_w;
  unsigned int sel_above_c, sel_tie_c;
};

struct SelectResult {
  uint32_t key;         // the boundary key
  uint64_t above_w;     // weight of selected-set elements strictly before the boundary key
  uint32_t above_c;     // their count
  uint32_t tie_c;       // elements at the boundary key
};

// Walks the order (Desc: largest key first, else smallest first) of the elements with pred(j),
// accumulating weight(j), and returns the key at which the running weight first reaches
// `target` (only non-empty buckets qualify). The caller guarantees the total reaches target.
// All threads of the block must call it; they all get the result.
template <bool Desc, typename KeyF, typename PredF, typename WF>
__device__ SelectResult radix_select(int V, KeyF keyf, PredF pred, WF weight, uint64_t target,
                                     SelectSmem& sm) {
  uint32_t prefix = 0, mask = 0;
  uint64_t above_w = 0;
  uint32_t above_c = 0, tie_c = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) {
      sm.cnt[d] = 0;
      sm.wt[d] = 0;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
      if (!pred(j)) continue;
      const uint32_t k = keyf(j);
      if ((k & mask) != prefix) continue;
      const uint32_t d = (k >> shift) & 255u;
      atomicAdd(&sm.cnt[d], 1u);
      const uint64_t w = weight(j);
      if (w) atomicAdd(&sm.wt[d], (unsigned long long)w);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint64_t acc_w = above_w;
      uint32_t acc_c = above_c;
      int pick = -1;
      for (int i = 0; i < 256; ++i) {
        const int d = Desc ? 255 - i : i;
        if (!sm.cnt[d]) continue;
        if (acc_w + sm.wt[d] >= target) {
          pick = d;
          break;
        }
        acc_w += sm.wt[d];
        acc_c += sm.cnt[d];
      }
      if (pick < 0) {
        // Total short of target (callers rule this out): take the last non-empty bucket, or
        // bucket 0 when nothing matched at all, rather than index out of range.
        pick = 0;
        for (int i = 255; i >= 0; --i) {
          const int d = Desc ? 255 - i : i;
          if (sm.cnt[d]) {
            pick = d;
            acc_w -= sm.wt[d];
            acc_c -= sm.cnt[d];
            break;
          }
        }
      }
      sm.sel_digit = pick;
      sm.sel_above_w = acc_w;
      sm.sel_above_c = acc_c;
      sm.sel_tie_c = sm.cnt[pick];
    }
    __syncthreads();
    prefix |= sm.sel_digit << shift;
    mask |= 255u << shift;
    above_w = sm.sel_above_w;
    above_c = sm.sel_above_c;
    tie_c = sm.sel_tie_c;
    __syncthreads();  // sm is rewritten by the next pass
  }
  return SelectResult{prefix, above_w, above_c, tie_c};
}

constexpr double kFix = 1152921504606846976.0;  // 2^60: probability -> fixed point

__global__ void __launch_bounds__(1024)
    sample_truncated_kernel(const float* __restrict__ logits, int V, float inv_t, int top_k,
                            float top_p, uint64_t seed, const SampleRowKey* __restrict__ keys,
                            int32_t* __restrict__ tokens, float* __restrict__ logp_out) {
  __shared__ SelectSmem sm;
  __shared__ float redf[32];
  __shared__ double redd[32];
  __shared__ unsigned long long redu[32];
  __shared__ Best redb[32];
  const int b = blockIdx.x;
  const float* x = logits + (size_t)b * V;
  const SampleRowKey key = keys[b];
  const bool use_k = top_k > 0 && top_k < V;
  const bool use_p = top_p < 1.0f;
  auto keyf = [&](int j) { return order_key(x[j]); };
  auto idxf = [](int j) { return static_cast<uint32_t>(j); };
  auto all = [](int) { return true; };
  auto one = [](int) { return (uint64_t)1; };

  // Top-k: boundary key tk; of the entries at tk, indices <= ck are in.
  uint32_t tk = 0;
  int ck = INT_MAX;
  if (use_k) {
    const SelectResult r = radix_select<true>(V, keyf, all, one, (uint64_t)top_k, sm);
    tk = r.key;
    const uint32_t need = top_k - r.above_c;
    if (need < r.tie_c) {
      auto tie = [&](int j) { return keyf(j) == tk; };
      ck = (int)radix_select<false>(V, idxf, tie, one, (uint64_t)need, sm).key;
    }
  }
  auto allowed = [&](int j) {
    if (!use_k) return true;
    const uint32_t k = keyf(j);
    return k > tk || (k == tk && j <= ck);
  };

  // logsumexp of z over the allowed set, in double (as the CPU's top-k path).
  float zm = -INFINITY;
  for (int j = threadIdx.x; j < V; j += blockDim.x)
    if (allowed(j)) zm = fmaxf(zm, __fmul_rn(x[j], inv_t));
  const double zmax = block_max(zm, redf);
  double s = 0.0;
  for (int j = threadIdx.x; j < V; j += blockDim.x)
    if (allowed(j)) s += exp((double)__fmul_rn(x[j], inv_t) - zmax);
  s = block_sum(s, redd);
  const double lse = zmax + log(s);

  // Top-p: boundary key tp; of the entries at tp, indices <= cp are in.
  uint32_t tp = 0;
  int cp = INT_MAX;
  bool cut_p = false;
  double lse_kept = lse;
  auto mass = [&](int j) { return exp((double)__fmul_rn(x[j], inv_t) - lse); };
  auto wfix = [&](int j) { return (uint64_t)(mass(j) * kFix + 0.5); };
  if (use_p) {
    const uint64_t target = (uint64_t)ceil((double)top_p * kFix);
    unsigned long long tot = 0;
    for (int j = threadIdx.x; j < V; j += blockDim.x)
      if (allowed(j)) tot += wfix(j);
    tot = block_sum(tot, redu);
    if (tot >= target) {  // else rounding left the total short of top_p: keep everything
      cut_p = true;
      const SelectResult r = radix_select<true>(V, keyf, allowed, wfix, target, sm);
      tp = r.key;
      // Entries at tp share one logit, hence one weight w: the first n with above + n*w >=
      // target are in.
      const float xt = __uint_as_float((tp & 0x80000000u) ? (tp & 0x7fffffffu) : ~tp);
      const uint64_t w = (uint64_t)(exp((double)__fmul_rn(xt, inv_t) - lse) * kFix + 0.5);
      uint64_t need = w ? (target - r.above_w + w - 1) / w : r.tie_c;
      if (need < 1) need = 1;
      if (need < r.tie_c) {
        auto tie = [&](int j) { return allowed(j) && keyf(j) == tp; };
        cp = (int)radix_select<false>(V, idxf, tie, one, need, sm).key;
      }
      double kept = 0.0;
      for (int j = threadIdx.x; j < V; j += blockDim.x) {
        if (!allowed(j)) continue;
        const uint32_t k = keyf(j);
        if (k > tp || (k == tp && j <= cp)) kept += mass(j);
      }
      kept = block_sum(kept, redd);
      lse_kept = lse + log(kept);
    }
  }

  Best best{-INFINITY, -1};
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    if (!allowed(j)) continue;
    if (cut_p) {
      const uint32_t k = keyf(j);
      if (!(k > tp || (k == tp && j <= cp))) continue;
    }
    offer(best, noisy(x[j], inv_t, j, seed, key), j);
  }
  best = block_best(best, redb);
  if (threadIdx.x == 0) {
    // Nothing beat -inf: the first kept entry would be the CPU's pick; the top logit is one.
    const int tok = best.j >= 0 ? best.j : 0;
    tokens[b] = tok;
    logp_out[b] = (float)((double)__fmul_rn(x[tok], inv_t) - lse_kept);
  }
}

}  // namespace

void sample(Ctx& ctx, const float* logits, int B, int V, const SampleParams& p,
            const SampleRowKey* keys_host, int32_t* tokens_out_host, float* logp_out_host) {
  require(B >= 0, "sample: B must be >= 0");
  require(V > 0, "sample: V must be > 0");
  require(!std::isnan(p.temperature) && !std::isinf(p.temperature),
          "sample: p.temperature must be finite");
  require(p.top_k >= 0, "sample: p.top_k must be >= 0");
  require(p.top_p > 0.0f && p.top_p <= 1.0f, "sample: p.top_p must be in (0, 1]");
  if (!B) return;
  require(logits && keys_host && tokens_out_host && logp_out_host,
          "sample: null logits, keys, tokens_out or logp_out");

  const bool greedy = p.greedy || p.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
  const bool fast = !greedy && (p.top_k == 0 || p.top_k >= V) && p.top_p >= 1.0f;

  // Chunks per row for the split path: ~256 blocks in total, >= 4096 entries per chunk.
  int chunks = 1;
  if (greedy || fast) {
    chunks = (256 + B - 1) / B;
    const int max_chunks = (V + 4095) / 4096;
    if (chunks > max_chunks) chunks = max_chunks;
    if (chunks < 1) chunks = 1;
  }
  const size_t keys_bytes = align_up((size_t)B * sizeof(SampleRowKey), 256);
  const size_t part_bytes = align_up((size_t)B * chunks * sizeof(Partial), 256);
  const size_t out_bytes = align_up((size_t)B * sizeof(int32_t), 256);
  char* ws = static_cast<char*>(ctx.scratch(keys_bytes + part_bytes + 2 * out_bytes));
  SampleRowKey* keys = reinterpret_cast<SampleRowKey*>(ws);
  Partial* part = reinterpret_cast<Partial*>(ws + keys_bytes);
  int32_t* tok = reinterpret_cast<int32_t*>(ws + keys_bytes + part_bytes);
  float* lp = reinterpret_cast<float*>(ws + keys_bytes + part_bytes + out_bytes);
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(keys, keys_host, (size_t)B * sizeof(SampleRowKey),
                                    cudaMemcpyHostToDevice, ctx.stream));

  if (greedy || fast) {
    require(B <= 65535, "sample: B > 65535");
    const int chunk = (V + chunks - 1) / chunks;
    dim3 grid(chunks, B);
    const int threads = chunk >= 8192 ? 512 : 256;
    if (greedy)
      sample_partial_kernel<false><<<grid, threads, 0, ctx.stream>>>(logits, V, chunk, 1.0f, p.seed, keys, part);
    else
      sample_partial_kernel<true><<<grid, threads, 0, ctx.stream>>>(logits, V, chunk, inv_t, p.seed, keys, part);
    TROUPE_LAUNCH_CHECK("sample_partial_kernel");
    sample_combine_kernel<<<ceil_div(B, 128), 128, 0, ctx.stream>>>(logits, B, V, chunks, inv_t, part, tok, lp);
    TROUPE_LAUNCH_CHECK("sample_combine_kernel");
  } else {
    sample_truncated_kernel<<<B, 1024, 0, ctx.stream>>>(logits, V, inv_t, p.top_k, p.top_p, p.seed,
                                                        keys, tok, lp);
    TROUPE_LAUNCH_CHECK("sample_truncated_kernel");
  }
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(tokens_out_host, tok, (size_t)B * sizeof(int32_t),
                                    cudaMemcpyDeviceToHost, ctx.stream));
  TROUPE_CUDA_CHECK(cudaMemcpyAsync(logp_out_host, lp, (size_t)B * sizeof(float),
                                    cudaMemcpyDeviceToHost, ctx.stream));
  TROUPE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

}  // namespace troupe::cuda
