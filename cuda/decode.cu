// KV-cache write and single-token decode attention (split-K over the cache length).
//
// decode_attention: a block owns one row b, one kv head g, up to kMaxG of the query heads that
// share g, and one contiguous chunk of the cache positions [0, lengths[b]). Each warp walks every
// kWarps-th key of the chunk: lanes hold hd/32 elements of q and of the output, a key's score is
// a warp sum, and each warp keeps its own online-softmax state. Warps merge in warp order, then
// the chunks ("splits") of a row merge in split order in a second kernel. The number of splits
// depends only on (B, Hkv, heads, max_len), so results are bit-identical on every run and GPU.
// Every key/value row is read by exactly one block, once for all heads of its group.
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxG = 8;           // query heads per block
constexpr int kTargetBlocks = 512; // enough blocks to fill a large GPU at small batch

__global__ void kv_write_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ slots,
                                const int32_t* __restrict__ positions, int T, int Hq, int Hkv,
                                int hd, int max_len, float* __restrict__ kc,
                                float* __restrict__ vc) {
  const size_t per_tok = (size_t)Hkv * hd, total = (size_t)T * per_tok;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    const size_t t = i / per_tok, r = i % per_tok;
    const size_t dst = ((size_t)slots[t] * max_len + positions[t]) * per_tok + r;
    const float* src = qkv + t * (size_t)(Hq + 2 * Hkv) * hd + (size_t)Hq * hd;
    kc[dst] = src[r];
    vc[dst] = src[per_tok + r];
  }
}

// Partial results: m (max, base-2 scaled scores), l (sum) and o (unnormalised output) per
// (b, h, split). With one split the kernel writes the final output directly.
template <int EPL>  // elements per lane = ceil(hd / 32)
__global__ void __launch_bounds__(32 * kWarps)
    decode_kernel(const float* __restrict__ qkv, const float* __restrict__ kc,
                  const float* __restrict__ vc, const int32_t* __restrict__ slots,
                  const int32_t* __restrict__ lengths, int Hq, int Hkv, int hd, int max_len,
                  float scale, int chunk, int splits, float* __restrict__ out,
                  float* __restrict__ pm, float* __restrict__ pl, float* __restrict__ po) {
  __shared__ float sm_m[kWarps][kMaxG], sm_l[kWarps][kMaxG];
  __shared__ float sm_o[kWarps][kMaxG][EPL * 32];
  const int split = blockIdx.x, b = blockIdx.z;
  const int G = Hq / Hkv, chunks_per_g = (G + kMaxG - 1) / kMaxG;
  const int g = blockIdx.y / chunks_per_g, h0 = g * G + (blockIdx.y % chunks_per_g) * kMaxG;
  const int nh = min(kMaxG, g * G + G - h0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int len = min(lengths[b], max_len);
  const int j0 = split * chunk, j1 = min(len, j0 + chunk);
  const float sl2 = scale * 1.4426950408889634f;

  float q[kMaxG][EPL], o[kMaxG][EPL], m[kMaxG], l[kMaxG];
  const float* qrow = qkv + (size_t)b * (Hq + 2 * Hkv) * hd;
#pragma unroll
  for (int hh = 0; hh < kMaxG; ++hh) {
    m[hh] = -INFINITY;
    l[hh] = 0.f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
      const int d = lane + 32 * e;
      q[hh][e] = (hh < nh && d < hd) ? qrow[(size_t)(h0 + hh) * hd + d] * sl2 : 0.f;
      o[hh][e] = 0.f;
    }
  }

  const size_t slot_base = (size_t)slots[b] * max_len;
  for (int j = j0 + warp; j < j1; j += kWarps) {
    const size_t off = ((slot_base + j) * Hkv + g) * hd;
    float kv[EPL], vv[EPL];
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
      const int d = lane + 32 * e;
      kv[e] = d < hd ? kc[off + d] : 0.f;
      vv[e] = d < hd ? vc[off + d] : 0.f;
    }
#pragma unroll
    for (int hh = 0; hh < kMaxG; ++hh) {
      if (hh >= nh) break;
      float s = 0.f;
#pragma unroll
      for (int e = 0; e < EPL; ++e) s = fmaf(q[hh][e], kv[e], s);
      s = warp_sum(s);
      const float mn = fmaxf(m[hh], s);
      const float a = exp2f(m[hh] - mn), p = exp2f(s - mn);
      l[hh] = l[hh] * a + p;
#pragma unroll
      for (int e = 0; e < EPL; ++e) o[hh][e] = fmaf(o[hh][e], a, p * vv[e]);
      m[hh] = mn;
    }
  }

  // Merge the warps in warp order.
#pragma unroll
  for (int hh = 0; hh < kMaxG; ++hh) {
    if (lane == 0) { sm_m[warp][hh] = m[hh]; sm_l[warp][hh] = l[hh]; }
#pragma unroll
    for (int e = 0; e < EPL; ++e) sm_o[warp][hh][lane + 32 * e] = o[hh][e];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nh * EPL * 32; idx += blockDim.x) {
    const int hh = idx / (EPL * 32), d = idx % (EPL * 32);
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_m[w][hh]);
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float a = exp2f(sm_m[w][hh] - M);
        L = fmaf(sm_l[w][hh], a, L);
        O = fmaf(sm_o[w][hh][d], a, O);
      }
    }
    const int h = h0 + hh;
    if (splits == 1) {
      if (d < hd) out[((size_t)b * Hq + h) * hd + d] = L > 0.f ? O / L : 0.f;
    } else {
      const size_t pidx = ((size_t)b * Hq + h) * splits + split;
      if (d < hd) po[pidx * hd + d] = O;
      if (d == 0) { pm[pidx] = M; pl[pidx] = L; }
    }
  }
}

// One block of hd threads per (b, h): merge the splits in split order.
__global__ void decode_combine_kernel(const float* __restrict__ pm, const float* __restrict__ pl,
                                      const float* __restrict__ po, int splits, int hd,
                                      float* __restrict__ out) {
  const size_t bh = blockIdx.x;
  const float* m = pm + bh * splits;
  const float* l = pl + bh * splits;
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, m[s]);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float L = 0.f, O = 0.f;
    if (M != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        const float a = exp2f(m[s] - M);
        L = fmaf(l[s], a, L);
        O = fmaf(po[(bh * splits + s) * hd + d], a, O);
      }
    }
    out[bh * hd + d] = L > 0.f ? O / L : 0.f;
  }
}

}  // namespace

void kv_cache_write(Ctx& ctx, const float* qkv, const int32_t* slots, const int32_t* positions,
                    int T, int Hq, int Hkv, int hd, int max_len, float* k_cache, float* v_cache) {
  require(T >= 0 && Hq > 0 && Hkv > 0 && hd > 0 && max_len > 0,
          "kv_cache_write: need T >= 0 and positive Hq, Hkv, hd, max_len");
  if (!T) return;
  const size_t total = (size_t)T * Hkv * hd;
  unsigned grid = ceil_div(total, 256);
  if (grid > 65535u * 4) grid = 65535u * 4;
  kv_write_kernel<<<grid, 256, 0, ctx.stream>>>(qkv, slots, positions, T, Hq, Hkv, hd, max_len,
                                                k_cache, v_cache);
  TROUPE_LAUNCH_CHECK("kv_write_kernel");
}

void decode_attention(Ctx& ctx, const float* qkv, const float* k_cache, const float* v_cache,
                      const int32_t* slots, const int32_t* lengths, int B, int Hq, int Hkv,
                      int hd, int max_len, float scale, float* out) {
  require(B >= 0 && Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && hd > 0 && max_len > 0,
          "decode_attention: need B >= 0, Hkv dividing Hq, positive hd and max_len");
  require(hd <= 128, "decode_attention: hd > 128 is not supported by the CUDA kernel");
  require(B <= 65535, "decode_attention: B > 65535");
  if (!B) return;
  const int G = Hq / Hkv, gy = Hkv * ((G + kMaxG - 1) / kMaxG);
  // Split the cache length until the grid has about kTargetBlocks blocks, keeping >= 64 keys
  // (16 per warp) in each chunk so the merge stays cheap next to the work.
  const int base = B * gy;
  int splits = (kTargetBlocks + base - 1) / base;
  const int max_splits = (max_len + 63) / 64;
  if (splits > max_splits) splits = max_splits;
  if (splits < 1) splits = 1;
  const int chunk = (max_len + splits - 1) / splits;
  float *pm = nullptr, *pl = nullptr, *po = nullptr;
  if (splits > 1) {
    const size_t n = (size_t)B * Hq * splits;
    float* ws = static_cast<float*>(ctx.scratch(n * (2 + hd) * sizeof(float)));
    pm = ws;
    pl = ws + n;
    po = ws + 2 * n;
  }
  dim3 grid(splits, gy, B);
  const int epl = (hd + 31) / 32;
  if (epl == 1)
    decode_kernel<1><<<grid, 32 * kWarps, 0, ctx.stream>>>(qkv, k_cache, v_cache, slots, lengths, Hq, Hkv, hd, max_len, scale, chunk, splits, out, pm, pl, po);
  else if (epl == 2)
    decode_kernel<2><<<grid, 32 * kWarps, 0, ctx.stream>>>(qkv, k_cache, v_cache, slots, lengths, Hq, Hkv, hd, max_len, scale, chunk, splits, out, pm, pl, po);
  else if (epl == 3)
    decode_kernel<3><<<grid, 32 * kWarps, 0, ctx.stream>>>(qkv, k_cache, v_cache, slots, lengths, Hq, Hkv, hd, max_len, scale, chunk, splits, out, pm, pl, po);
  else
    decode_kernel<4><<<grid, 32 * kWarps, 0, ctx.stream>>>(qkv, k_cache, v_cache, slots, lengths, Hq, Hkv, hd, max_len, scale, chunk, splits, out, pm, pl, po);
  TROUPE_LAUNCH_CHECK("decode_kernel");
  if (splits > 1) {
    decode_combine_kernel<<<B * Hq, 128, 0, ctx.stream>>>(pm, pl, po, splits, hd, out);
    TROUPE_LAUNCH_CHECK("decode_combine_kernel");
  }
}

}  // namespace troupe::cuda
