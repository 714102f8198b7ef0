// Causal attention backward (packed variable-length, grouped-query heads), flash-attention-2
// style: P is recomputed tile by tile from the saved lse, never stored whole.
//
// Deterministic by construction, with no atomics:
//  1. D[t,h] = sum_d dout[t,h,d] * out[t,h,d]                       (one warp per row)
//  2. dK/dV kernel: a block owns BC keys of one kv head and loops over every query head of its
//     group and every query tile at or after its keys, accumulating dK and dV in registers.
//  3. dQ kernel: a block owns BR queries of one query head and loops over the key tiles of its
//     causal prefix, accumulating dQ in registers.
// Kernels 2 and 3 both recompute S = Q K^T and dP = dO V^T; that extra work is the price of
// owning every output element in exactly one block (instead of an atomic dQ).
//
// With P = exp(scale * S - lse) and dS = P * (dP - D):
//   dV = P^T dO,  dK = scale * dS^T Q,  dQ = scale * dS K.
#include "attention_common.cuh"
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

using namespace attn;

__global__ void attn_bwd_dot_kernel(const float* __restrict__ dout, const float* __restrict__ out,
                                    int rows, int hd, float* __restrict__ D) {
  const int row = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float* a = dout + (size_t)row * hd;
  const float* b = out + (size_t)row * hd;
  float s = 0.f;
  for (int d = lane; d < hd; d += 32) s = fmaf(a[d], b[d], s);
  s = warp_sum(s);
  if (lane == 0) D[row] = s;
}

// S (rows = queries ty+16i, cols = keys tx+16j) = A_rows . B_cols over HD, both in smem.
template <int HD, int RI, int CJ>
__device__ __forceinline__ void tile_dot(const float* __restrict__ As, const float* __restrict__ Bs,
                                         int ty, int tx, float (&acc)[RI][CJ]) {
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int j = 0; j < CJ; ++j) acc[i][j] = 0.f;
#pragma unroll 8
  for (int d = 0; d < HD; ++d) {
    float a[RI], b[CJ];
#pragma unroll
    for (int i = 0; i < RI; ++i) a[i] = As[(ty + 16 * i) * (HD + 1) + d];
#pragma unroll
    for (int j = 0; j < CJ; ++j) b[j] = Bs[(tx + 16 * j) * (HD + 1) + d];
#pragma unroll
    for (int i = 0; i < RI; ++i)
#pragma unroll
      for (int j = 0; j < CJ; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// ---- dK / dV -----------------------------------------------------------------------------------
template <int HD, int BR, int BC>
struct KvCfg {
  static constexpr int RI = BR / 16, CJ = BC / 16, DJ = HD / 16, KI = BC / 16;
  static constexpr size_t smem_floats = 2 * (size_t)BC * (HD + 1) + 2 * (size_t)BR * (HD + 1) +
                                        2 * (size_t)BR * (BC + 1) + 2 * BR;
};

template <int HD, int BR, int BC>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dkdv_kernel(const float* __restrict__ dout, const float* __restrict__ qkv,
                         const float* __restrict__ lse, const float* __restrict__ Dg,
                         const int32_t* __restrict__ cu_seqlens, int Hq, int Hkv, int hd,
                         float scale, float* __restrict__ dqkv) {
  using C = KvCfg<HD, BR, BC>;
  extern __shared__ float sm[];
  float* Ks = sm;                      // [BC][HD+1]
  float* Vs = Ks + BC * (HD + 1);      // [BC][HD+1]
  float* Qs = Vs + BC * (HD + 1);      // [BR][HD+1]
  float* dOs = Qs + BR * (HD + 1);     // [BR][HD+1]
  float* Ps = dOs + BR * (HD + 1);     // [BR][BC+1]
  float* dSs = Ps + BR * (BC + 1);     // [BR][BC+1]
  float* lse2 = dSs + BR * (BC + 1);   // [BR] lse in base 2
  float* Ds = lse2 + BR;               // [BR]

  const int s = blockIdx.z, g = blockIdx.y;
  const int start = cu_seqlens[s], L = cu_seqlens[s + 1] - start;
  const int k0 = blockIdx.x * BC;  // small k0 = most queries = most work: scheduled first
  if (k0 >= L) return;
  const int H = Hq + 2 * Hkv, grp = Hq / Hkv;
  const size_t stride = (size_t)H * hd;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const float sl2 = scale * kLog2e;
  const int kn = min(BC, L - k0);

  load_tile<BC, HD>(Ks, qkv + (size_t)(start + k0) * stride + (size_t)(Hq + g) * hd, stride, kn, hd);
  load_tile<BC, HD>(Vs, qkv + (size_t)(start + k0) * stride + (size_t)(Hq + Hkv + g) * hd, stride,
                    kn, hd);

  float dK[C::KI][C::DJ], dV[C::KI][C::DJ];
#pragma unroll
  for (int i = 0; i < C::KI; ++i)
#pragma unroll
    for (int j = 0; j < C::DJ; ++j) dK[i][j] = dV[i][j] = 0.f;

  const int qstart = (k0 / BR) * BR;  // first query tile that can see key k0
  for (int h = g * grp; h < (g + 1) * grp; ++h) {
    for (int q0 = qstart; q0 < L; q0 += BR) {
      const int qn = min(BR, L - q0);
      __syncthreads();  // previous iteration's reads of Qs/dOs/Ps/dSs are done
      load_tile<BR, HD>(Qs, qkv + (size_t)(start + q0) * stride + (size_t)h * hd, stride, qn, hd);
      load_tile<BR, HD>(dOs, dout + (size_t)(start + q0) * Hq * hd + (size_t)h * hd,
                        (size_t)Hq * hd, qn, hd);
      for (int r = tid; r < BR; r += kThreads) {
        const bool ok = r < qn;
        lse2[r] = ok ? lse[(size_t)(start + q0 + r) * Hq + h] * kLog2e : 0.f;
        Ds[r] = ok ? Dg[(size_t)(start + q0 + r) * Hq + h] : 0.f;
      }
      __syncthreads();

      float S[C::RI][C::CJ], dP[C::RI][C::CJ];
      tile_dot<HD>(Qs, Ks, ty, tx, S);
      tile_dot<HD>(dOs, Vs, ty, tx, dP);
#pragma unroll
      for (int i = 0; i < C::RI; ++i) {
        const int r = ty + 16 * i, qi = q0 + r;
#pragma unroll
        for (int j = 0; j < C::CJ; ++j) {
          const int c = tx + 16 * j, kj = k0 + c;
          const bool vis = kj <= qi && qi < L && kj < L;
          const float p = vis ? exp2f(S[i][j] * sl2 - lse2[r]) : 0.f;
          Ps[r * (BC + 1) + c] = p;
          dSs[r * (BC + 1) + c] = p * (dP[i][j] - Ds[r]);
        }
      }
      __syncthreads();

      // dV[c] += sum_r P[r][c] dO[r];  dK[c] += sum_r dS[r][c] Q[r]  (c = ty + 16i)
#pragma unroll 4
      for (int r = 0; r < BR; ++r) {
        float p[C::KI], ds[C::KI], qv[C::DJ], ov[C::DJ];
#pragma unroll
        for (int i = 0; i < C::KI; ++i) {
          p[i] = Ps[r * (BC + 1) + ty + 16 * i];
          ds[i] = dSs[r * (BC + 1) + ty + 16 * i];
        }
#pragma unroll
        for (int j = 0; j < C::DJ; ++j) {
          qv[j] = Qs[r * (HD + 1) + tx + 16 * j];
          ov[j] = dOs[r * (HD + 1) + tx + 16 * j];
        }
#pragma unroll
        for (int i = 0; i < C::KI; ++i)
#pragma unroll
          for (int j = 0; j < C::DJ; ++j) {
            dV[i][j] = fmaf(p[i], ov[j], dV[i][j]);
            dK[i][j] = fmaf(ds[i], qv[j], dK[i][j]);
          }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < C::KI; ++i) {
    const int c = ty + 16 * i;
    if (c >= kn) continue;
    float* krow = dqkv + (size_t)(start + k0 + c) * stride + (size_t)(Hq + g) * hd;
    float* vrow = dqkv + (size_t)(start + k0 + c) * stride + (size_t)(Hq + Hkv + g) * hd;
#pragma unroll
    for (int j = 0; j < C::DJ; ++j) {
      const int d = tx + 16 * j;
      if (d < hd) {
        krow[d] = dK[i][j] * scale;
        vrow[d] = dV[i][j];
      }
    }
  }
}

// ---- dQ ----------------------------------------------------------------------------------------
template <int HD, int BR, int BC>
struct QCfg {
  static constexpr int RI = BR / 16, CJ = BC / 16, DJ = HD / 16;
  static constexpr size_t smem_floats =
      2 * (size_t)BR * (HD + 1) + 2 * (size_t)BC * (HD + 1) + (size_t)BR * (BC + 1);
};

template <int HD, int BR, int BC>
__global__ void __launch_bounds__(kThreads)
    attn_bwd_dq_kernel(const float* __restrict__ dout, const float* __restrict__ qkv,
                       const float* __restrict__ lse, const float* __restrict__ Dg,
                       const int32_t* __restrict__ cu_seqlens, int Hq, int Hkv, int hd,
                       float scale, float* __restrict__ dqkv) {
  using C = QCfg<HD, BR, BC>;
  extern __shared__ float sm[];
  float* Qs = sm;                    // [BR][HD+1]
  float* dOs = Qs + BR * (HD + 1);   // [BR][HD+1]
  float* Ks = dOs + BR * (HD + 1);   // [BC][HD+1]
  float* Vs = Ks + BC * (HD + 1);    // [BC][HD+1]
  float* dSs = Vs + BC * (HD + 1);   // [BR][BC+1]

  const int s = blockIdx.z, h = blockIdx.y;
  const int start = cu_seqlens[s], L = cu_seqlens[s + 1] - start;
  const int q0 = (gridDim.x - 1 - blockIdx.x) * BR;
  if (q0 >= L) return;
  const int H = Hq + 2 * Hkv, g = h / (Hq / Hkv);
  const size_t stride = (size_t)H * hd;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const float sl2 = scale * kLog2e;
  const int qn = min(BR, L - q0);

  load_tile<BR, HD>(Qs, qkv + (size_t)(start + q0) * stride + (size_t)h * hd, stride, qn, hd);
  load_tile<BR, HD>(dOs, dout + (size_t)(start + q0) * Hq * hd + (size_t)h * hd, (size_t)Hq * hd,
                    qn, hd);
  float l2[C::RI], Dr[C::RI], dQ[C::RI][C::DJ];
#pragma unroll
  for (int i = 0; i < C::RI; ++i) {
    const int qi = q0 + ty + 16 * i;
    l2[i] = qi < L ? lse[(size_t)(start + qi) * Hq + h] * kLog2e : 0.f;
    Dr[i] = qi < L ? Dg[(size_t)(start + qi) * Hq + h] : 0.f;
#pragma unroll
    for (int j = 0; j < C::DJ; ++j) dQ[i][j] = 0.f;
  }

  const int kend = min(L, q0 + BR);
  for (int k0 = 0; k0 < kend; k0 += BC) {
    const int kn = min(BC, L - k0);
    __syncthreads();
    load_tile<BC, HD>(Ks, qkv + (size_t)(start + k0) * stride + (size_t)(Hq + g) * hd, stride, kn, hd);
    load_tile<BC, HD>(Vs, qkv + (size_t)(start + k0) * stride + (size_t)(Hq + Hkv + g) * hd,
                      stride, kn, hd);
    __syncthreads();
    float S[C::RI][C::CJ], dP[C::RI][C::CJ];
    tile_dot<HD>(Qs, Ks, ty, tx, S);
    tile_dot<HD>(dOs, Vs, ty, tx, dP);
#pragma unroll
    for (int i = 0; i < C::RI; ++i) {
      const int r = ty + 16 * i, qi = q0 + r;
#pragma unroll
      for (int j = 0; j < C::CJ; ++j) {
        const int c = tx + 16 * j, kj = k0 + c;
        const bool vis = kj <= qi && qi < L && kj < L;
        const float p = vis ? exp2f(S[i][j] * sl2 - l2[i]) : 0.f;
        dSs[r * (BC + 1) + c] = p * (dP[i][j] - Dr[i]);
      }
    }
    __syncthreads();
#pragma unroll 4
    for (int c = 0; c < BC; ++c) {
      float ds[C::RI], kv[C::DJ];
#pragma unroll
      for (int i = 0; i < C::RI; ++i) ds[i] = dSs[(ty + 16 * i) * (BC + 1) + c];
#pragma unroll
      for (int j = 0; j < C::DJ; ++j) kv[j] = Ks[c * (HD + 1) + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < C::RI; ++i)
#pragma unroll
        for (int j = 0; j < C::DJ; ++j) dQ[i][j] = fmaf(ds[i], kv[j], dQ[i][j]);
    }
  }

#pragma unroll
  for (int i = 0; i < C::RI; ++i) {
    const int qi = q0 + ty + 16 * i;
    if (qi >= L) continue;
    float* qrow = dqkv + (size_t)(start + qi) * stride + (size_t)h * hd;
#pragma unroll
    for (int j = 0; j < C::DJ; ++j) {
      const int d = tx + 16 * j;
      if (d < hd) qrow[d] = dQ[i][j] * scale;
    }
  }
}

// Zeroes dqkv rows of tokens outside every sequence (T beyond cu_seqlens[num_seqs]) so the op
// fully overwrites its output as the contract says; in the normal case this is a no-op launch.
__global__ void zero_tail_kernel(float* dqkv, const int32_t* cu_seqlens, int num_seqs, int T,
                                 size_t row_floats) {
  const size_t begin = (size_t)cu_seqlens[num_seqs] * row_floats, end = (size_t)T * row_floats;
  for (size_t i = begin + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < end;
       i += (size_t)gridDim.x * blockDim.x)
    dqkv[i] = 0.f;
}

template <int HD, int KBR, int KBC, int QBR, int QBC>
void launch_bwd(Ctx& ctx, const float* dout, const float* qkv, const float* lse, const float* D,
                const int32_t* cu, int num_seqs, int max_seqlen, int Hq, int Hkv, int hd,
                float scale, float* dqkv) {
  {
    auto kernel = attn_bwd_dkdv_kernel<HD, KBR, KBC>;
    const size_t smem = KvCfg<HD, KBR, KBC>::smem_floats * sizeof(float);
    allow_smem(ctx, kernel, smem);
    dim3 grid(ceil_div(max_seqlen, KBC), Hkv, num_seqs);
    kernel<<<grid, kThreads, smem, ctx.stream>>>(dout, qkv, lse, D, cu, Hq, Hkv, hd, scale, dqkv);
    TROUPE_LAUNCH_CHECK("attn_bwd_dkdv_kernel");
  }
  {
    auto kernel = attn_bwd_dq_kernel<HD, QBR, QBC>;
    const size_t smem = QCfg<HD, QBR, QBC>::smem_floats * sizeof(float);
    allow_smem(ctx, kernel, smem);
    dim3 grid(ceil_div(max_seqlen, QBR), Hq, num_seqs);
    kernel<<<grid, kThreads, smem, ctx.stream>>>(dout, qkv, lse, D, cu, Hq, Hkv, hd, scale, dqkv);
    TROUPE_LAUNCH_CHECK("attn_bwd_dq_kernel");
  }
}

}  // namespace

void attention_backward(Ctx& ctx, const float* dout, const float* qkv, const float* out,
                        const float* lse, const int32_t* cu_seqlens, int num_seqs,
                        int max_seqlen, int T, int Hq, int Hkv, int hd, float scale,
                        float* dqkv) {
  attn::check_shape(num_seqs, T, Hq, Hkv, hd, "attention_backward");
  if (T == 0) return;
  const size_t row_floats = (size_t)(Hq + 2 * Hkv) * hd;
  if (num_seqs == 0 || max_seqlen <= 0) {
    TROUPE_CUDA_CHECK(cudaMemsetAsync(dqkv, 0, (size_t)T * row_floats * sizeof(float), ctx.stream));
    return;
  }
  const int rows = T * Hq;
  float* D = static_cast<float*>(ctx.scratch((size_t)rows * sizeof(float)));
  attn_bwd_dot_kernel<<<ceil_div(rows, 8), 256, 0, ctx.stream>>>(dout, out, rows, hd, D);
  TROUPE_LAUNCH_CHECK("attn_bwd_dot_kernel");
  if (hd <= 32)
    launch_bwd<32, 32, 64, 64, 64>(ctx, dout, qkv, lse, D, cu_seqlens, num_seqs, max_seqlen, Hq, Hkv, hd, scale, dqkv);
  else if (hd <= 64)
    launch_bwd<64, 32, 64, 64, 64>(ctx, dout, qkv, lse, D, cu_seqlens, num_seqs, max_seqlen, Hq, Hkv, hd, scale, dqkv);
  else
    launch_bwd<128, 32, 32, 32, 32>(ctx, dout, qkv, lse, D, cu_seqlens, num_seqs, max_seqlen, Hq, Hkv, hd, scale, dqkv);
  zero_tail_kernel<<<64, 256, 0, ctx.stream>>>(dqkv, cu_seqlens, num_seqs, T, row_floats);
  TROUPE_LAUNCH_CHECK("zero_tail_kernel");
}

}  // namespace troupe::cuda
