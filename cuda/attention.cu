// Causal attention forward over packed variable-length sequences with grouped-query heads,
// flash-attention style: a block owns BR query rows of one head of one sequence, streams the
// key/value tiles of its causal prefix through shared memory, and keeps the running row max m,
// row sum l and the output accumulator in registers. The score matrix never exists beyond one
// BR x BC tile; lse = m + log(l) is saved for the backward.
//
// Scores are taken in base 2 (exp2 of score * scale * log2 e), which is the same softmax.
#include "attention_common.cuh"
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

using namespace attn;

template <int HD, int BR, int BC>
struct FwdCfg {
  static constexpr int RI = BR / 16, CJ = BC / 16, DJ = HD / 16;
  static constexpr size_t smem_floats =
      (size_t)BR * (HD + 1) + 2 * (size_t)BC * (HD + 1) + (size_t)BR * (BC + 1);
};

template <int HD, int BR, int BC>
__global__ void __launch_bounds__(kThreads)
    attn_fwd_kernel(const float* __restrict__ qkv, const int32_t* __restrict__ cu_seqlens,
                    int Hq, int Hkv, int hd, float scale, float* __restrict__ out,
                    float* __restrict__ lse) {
  using C = FwdCfg<HD, BR, BC>;
  extern __shared__ float sm[];
  float* Qs = sm;                          // [BR][HD+1]
  float* Ks = Qs + BR * (HD + 1);          // [BC][HD+1]
  float* Vs = Ks + BC * (HD + 1);          // [BC][HD+1]
  float* Ps = Vs + BC * (HD + 1);          // [BR][BC+1]

  const int s = blockIdx.z, h = blockIdx.y;
  const int start = cu_seqlens[s], L = cu_seqlens[s + 1] - start;
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BR;  // longest causal prefixes first
  if (q0 >= L) return;
  const int H = Hq + 2 * Hkv, g = h / (Hq / Hkv);
  const size_t stride = (size_t)H * hd;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const float sl2 = scale * kLog2e;

  load_tile<BR, HD>(Qs, qkv + (size_t)(start + q0) * stride + (size_t)h * hd, stride,
                    min(BR, L - q0), hd);

  float m[C::RI], l[C::RI], o[C::RI][C::DJ];
#pragma unroll
  for (int i = 0; i < C::RI; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int j = 0; j < C::DJ; ++j) o[i][j] = 0.f;
  }

  const int kend = min(L, q0 + BR);
  for (int k0 = 0; k0 < kend; k0 += BC) {
    const int kn = min(BC, L - k0);
    const float* kbase = qkv + (size_t)(start + k0) * stride + (size_t)(Hq + g) * hd;
    const float* vbase = qkv + (size_t)(start + k0) * stride + (size_t)(Hq + Hkv + g) * hd;
    __syncthreads();  // previous tile's K/V/P reads are done
    load_tile<BC, HD>(Ks, kbase, stride, kn, hd);
    load_tile<BC, HD>(Vs, vbase, stride, kn, hd);
    __syncthreads();

    float sc[C::RI][C::CJ];
#pragma unroll
    for (int i = 0; i < C::RI; ++i)
#pragma unroll
      for (int j = 0; j < C::CJ; ++j) sc[i][j] = 0.f;
#pragma unroll 8
    for (int d = 0; d < HD; ++d) {
      float a[C::RI], b[C::CJ];
#pragma unroll
      for (int i = 0; i < C::RI; ++i) a[i] = Qs[(ty + 16 * i) * (HD + 1) + d];
#pragma unroll
      for (int j = 0; j < C::CJ; ++j) b[j] = Ks[(tx + 16 * j) * (HD + 1) + d];
#pragma unroll
      for (int i = 0; i < C::RI; ++i)
#pragma unroll
        for (int j = 0; j < C::CJ; ++j) sc[i][j] = fmaf(a[i], b[j], sc[i][j]);
    }

#pragma unroll
    for (int i = 0; i < C::RI; ++i) {
      const int qi = q0 + ty + 16 * i;
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < C::CJ; ++j) {
        const int kj = k0 + tx + 16 * j;
        sc[i][j] = (kj <= qi && kj < L) ? sc[i][j] * sl2 : -INFINITY;
        mx = fmaxf(mx, sc[i][j]);
      }
      mx = row_max16(mx);
      const float mnew = fmaxf(m[i], mx);
      // A row with nothing visible yet (only padding rows past L) keeps exp2 arguments finite.
      const float base = mnew == -INFINITY ? 0.f : mnew;
      const float alpha = exp2f(m[i] - base);
      float rs = 0.f;
#pragma unroll
      for (int j = 0; j < C::CJ; ++j) {
        const float p = exp2f(sc[i][j] - base);
        rs += p;
        Ps[(ty + 16 * i) * (BC + 1) + tx + 16 * j] = p;
      }
      l[i] = l[i] * alpha + row_sum16(rs);
      m[i] = mnew;
#pragma unroll
      for (int j = 0; j < C::DJ; ++j) o[i][j] *= alpha;
    }
    __syncthreads();

#pragma unroll 4
    for (int c = 0; c < BC; ++c) {
      float p[C::RI], v[C::DJ];
#pragma unroll
      for (int i = 0; i < C::RI; ++i) p[i] = Ps[(ty + 16 * i) * (BC + 1) + c];
#pragma unroll
      for (int j = 0; j < C::DJ; ++j) v[j] = Vs[c * (HD + 1) + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < C::RI; ++i)
#pragma unroll
        for (int j = 0; j < C::DJ; ++j) o[i][j] = fmaf(p[i], v[j], o[i][j]);
    }
  }

#pragma unroll
  for (int i = 0; i < C::RI; ++i) {
    const int qi = q0 + ty + 16 * i;
    if (qi >= L) continue;
    const size_t t = (size_t)start + qi;
    const float inv = 1.f / l[i];
    float* orow = out + t * Hq * hd + (size_t)h * hd;
#pragma unroll
    for (int j = 0; j < C::DJ; ++j) {
      const int d = tx + 16 * j;
      if (d < hd) orow[d] = o[i][j] * inv;
    }
    if (tx == 0) lse[t * Hq + h] = (m[i] + log2f(l[i])) * kLn2;
  }
}

template <int HD, int BR, int BC>
void launch_fwd(Ctx& ctx, const float* qkv, const int32_t* cu, int num_seqs, int max_seqlen,
                int Hq, int Hkv, int hd, float scale, float* out, float* lse) {
  auto kernel = attn_fwd_kernel<HD, BR, BC>;
  const size_t smem = FwdCfg<HD, BR, BC>::smem_floats * sizeof(float);
  allow_smem(ctx, kernel, smem);
  dim3 grid(ceil_div(max_seqlen, BR), Hq, num_seqs);
  kernel<<<grid, kThreads, smem, ctx.stream>>>(qkv, cu, Hq, Hkv, hd, scale, out, lse);
  TROUPE_LAUNCH_CHECK("attn_fwd_kernel");
}

}  // namespace

void attention_forward(Ctx& ctx, const float* qkv, const int32_t* cu_seqlens, int num_seqs,
                       int max_seqlen, int T, int Hq, int Hkv, int hd, float scale, float* out,
                       float* lse) {
  attn::check_shape(num_seqs, T, Hq, Hkv, hd, "attention_forward");
  if (T == 0 || num_seqs == 0 || max_seqlen <= 0) return;
  if (hd <= 32) launch_fwd<32, 64, 64>(ctx, qkv, cu_seqlens, num_seqs, max_seqlen, Hq, Hkv, hd, scale, out, lse);
  else if (hd <= 64) launch_fwd<64, 64, 64>(ctx, qkv, cu_seqlens, num_seqs, max_seqlen, Hq, Hkv, hd, scale, out, lse);
  else launch_fwd<128, 64, 32>(ctx, qkv, cu_seqlens, num_seqs, max_seqlen, Hq, Hkv, hd, scale, out, lse);
}

}  // namespace troupe::cuda
