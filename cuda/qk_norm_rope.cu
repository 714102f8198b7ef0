// Per-head RMSNorm of the q and k heads followed by rotary embedding (rotate-half form), and its
// backward. One warp per (token, head) row; value heads are copied (forward) or passed through
// (backward).
//
// Rotate-half with half = hd/2, c = cos[pos][i], s = sin[pos][i], i < half:
//   out[i]        = y[i] * c - y[i+half] * s
//   out[i + half] = y[i+half] * c + y[i] * s
// and its transpose for the backward:
//   dy[i]        =  dout[i] * c + dout[i+half] * s
//   dy[i + half] =  dout[i+half] * c - dout[i] * s
//
// The norm-weight gradients are sums over every token and head; they are accumulated per warp in
// shared memory (each lane owns its columns), reduced across warps in warp order, written as one
// partial per block, and the partials are summed in block order: deterministic, no atomics.
#include "kernels.cuh"

namespace troupe::cuda {
namespace {

constexpr int kWarps = 4;

__global__ void qk_norm_rope_fwd_kernel(const float* __restrict__ qkv_in,
                                        const float* __restrict__ qw,
                                        const float* __restrict__ kw,
                                        const int32_t* __restrict__ positions,
                                        const float* __restrict__ rope_cos,
                                        const float* __restrict__ rope_sin, int T, int Hq,
                                        int Hkv, int hd, float eps, float* __restrict__ qkv_out,
                                        float* __restrict__ rstd) {
  const int H = Hq + 2 * Hkv, lane = threadIdx.x & 31;
  const size_t row = (size_t)blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (row >= (size_t)T * H) return;
  const int t = static_cast<int>(row / H), h = static_cast<int>(row % H);
  const float* x = qkv_in + row * hd;
  float* o = qkv_out + row * hd;
  if (h >= Hq + Hkv) {  // value head
    for (int d = lane; d < hd; d += 32) o[d] = x[d];
    return;
  }
  double ss = 0.0;  // in double, as the CPU kernel
  for (int d = lane; d < hd; d += 32) ss += (double)x[d] * x[d];
  ss = warp_sum(ss);
  const float rs = (float)(1.0 / sqrt(ss / hd + (double)eps));
  const float* w = h < Hq ? qw : kw;
  const int half = hd / 2;
  const size_t pos = positions[t];
  const float* cs = rope_cos + pos * half;
  const float* sn = rope_sin + pos * half;
  for (int i = lane; i < half; i += 32) {
    const float y1 = x[i] * rs * w[i], y2 = x[i + half] * rs * w[i + half];
    const float c = cs[i], s = sn[i];
    o[i] = y1 * c - y2 * s;
    o[i + half] = y2 * c + y1 * s;
  }
  if (lane == 0) rstd[(size_t)t * (Hq + Hkv) + h] = rs;
}

// Grid: a fixed number of blocks, each taking tokens blockIdx.x, +gridDim.x, ...; inside a
// block warp w takes heads w, w+kWarps, ... of each token. Dynamic smem: kWarps * 2 * hd floats
// (per-warp dq_w and dk_w accumulators).
__global__ void qk_norm_rope_bwd_kernel(const float* __restrict__ dout,
                                        const float* __restrict__ qkv_in,
                                        const float* __restrict__ qw,
                                        const float* __restrict__ kw,
                                        const int32_t* __restrict__ positions,
                                        const float* __restrict__ rope_cos,
                                        const float* __restrict__ rope_sin,
                                        const float* __restrict__ rstd, int T, int Hq, int Hkv,
                                        int hd, float* __restrict__ dqkv_in,
                                        float* __restrict__ partial) {
  extern __shared__ float acc[];  // [kWarps][2][hd]
  const int H = Hq + 2 * Hkv, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int half = hd / 2;
  float* my = acc + (size_t)warp * 2 * hd;
  for (int d = lane; d < 2 * hd; d += 32) my[d] = 0.f;
  for (int t = blockIdx.x; t < T; t += gridDim.x) {
    const size_t pos = positions[t];
    const float* cs = rope_cos + pos * half;
    const float* sn = rope_sin + pos * half;
    for (int h = warp; h < H; h += kWarps) {
      const size_t row = (size_t)t * H + h;
      const float* g = dout + row * hd;
      float* dx = dqkv_in + row * hd;
      if (h >= Hq + Hkv) {
        for (int d = lane; d < hd; d += 32) dx[d] = g[d];
        continue;
      }
      const float* x = qkv_in + row * hd;
      const float* w = h < Hq ? qw : kw;
      float* wacc = my + (h < Hq ? 0 : hd);
      const float rs = rstd[(size_t)t * (Hq + Hkv) + h];
      // Pass 1: sum over d of dn[d] * n[d], dn = dy * w (dy = rope^T dout).
      float s = 0.f;
      for (int i = lane; i < half; i += 32) {
        const float c = cs[i], si = sn[i];
        const float dy1 = g[i] * c + g[i + half] * si, dy2 = g[i + half] * c - g[i] * si;
        s = fmaf(dy1 * w[i], x[i] * rs, s);
        s = fmaf(dy2 * w[i + half], x[i + half] * rs, s);
      }
      const float mean = warp_sum(s) / hd;
      // Pass 2: dx = rs * (dn - n * mean); dw += dy * n.
      for (int i = lane; i < half; i += 32) {
        const float c = cs[i], si = sn[i];
        const float dy1 = g[i] * c + g[i + half] * si, dy2 = g[i + half] * c - g[i] * si;
        const float n1 = x[i] * rs, n2 = x[i + half] * rs;
        dx[i] = rs * (dy1 * w[i] - n1 * mean);
        dx[i + half] = rs * (dy2 * w[i + half] - n2 * mean);
        wacc[i] = fmaf(dy1, n1, wacc[i]);
        wacc[i + half] = fmaf(dy2, n2, wacc[i + half]);
      }
    }
  }
  __syncthreads();
  for (int d = threadIdx.x; d < 2 * hd; d += blockDim.x) {
    float s = 0.f;
    for (int w = 0; w < kWarps; ++w) s += acc[(size_t)w * 2 * hd + d];
    partial[(size_t)blockIdx.x * 2 * hd + d] = s;
  }
}

__global__ void sum_norm_partials(const float* __restrict__ partial, int nparts, int hd,
                                  float* __restrict__ dqw, float* __restrict__ dkw) {
  const int d = blockIdx.x * blockDim.x + threadIdx.x;
  if (d >= 2 * hd) return;
  float s = 0.f;
  for (int b = 0; b < nparts; ++b) s += partial[(size_t)b * 2 * hd + d];
  if (d < hd) dqw[d] += s;
  else dkw[d - hd] += s;
}

void check_shape(int T, int Hq, int Hkv, int hd, const char* op) {
  if (!(T >= 0 && Hq > 0 && Hkv > 0 && hd > 0 && hd % 2 == 0 && Hq % Hkv == 0))
    throw std::invalid_argument(std::string(op) +
                                ": need T >= 0, Hq > 0, Hkv > 0 dividing Hq, even hd > 0");
}

}  // namespace

void qk_norm_rope_forward(Ctx& ctx, const float* qkv_in, const float* q_norm_w,
                          const float* k_norm_w, const int32_t* positions, const float* rope_cos,
                          const float* rope_sin, int T, int Hq, int Hkv, int hd, float eps,
                          float* qkv_out, float* rstd) {
  check_shape(T, Hq, Hkv, hd, "qk_norm_rope_forward");
  if (!T) return;
  const size_t rows = (size_t)T * (Hq + 2 * Hkv);
  qk_norm_rope_fwd_kernel<<<ceil_div(rows, kWarps), 32 * kWarps, 0, ctx.stream>>>(
      qkv_in, q_norm_w, k_norm_w, positions, rope_cos, rope_sin, T, Hq, Hkv, hd, eps, qkv_out,
      rstd);
  TROUPE_LAUNCH_CHECK("qk_norm_rope_fwd_kernel");
}

void qk_norm_rope_backward(Ctx& ctx, const float* dqkv_out, const float* qkv_in,
                           const float* q_norm_w, const float* k_norm_w,
                           const int32_t* positions, const float* rope_cos,
                           const float* rope_sin, const float* rstd, int T, int Hq, int Hkv,
                           int hd, float* dqkv_in, float* dq_norm_w, float* dk_norm_w) {
  check_shape(T, Hq, Hkv, hd, "qk_norm_rope_backward");
  if (!T) return;
  const int nparts = T < 1024 ? T : 1024;  // a function of T only: same bits on every device
  const size_t smem = (size_t)kWarps * 2 * hd * sizeof(float);
  require(smem <= 48 * 1024, "qk_norm_rope_backward: hd too large (max 1536)");
  float* partial = static_cast<float*>(ctx.scratch((size_t)nparts * 2 * hd * sizeof(float)));
  qk_norm_rope_bwd_kernel<<<nparts, 32 * kWarps, smem, ctx.stream>>>(
      dqkv_out, qkv_in, q_norm_w, k_norm_w, positions, rope_cos, rope_sin, rstd, T, Hq, Hkv, hd,
      dqkv_in, partial);
  TROUPE_LAUNCH_CHECK("qk_norm_rope_bwd_kernel");
  sum_norm_partials<<<ceil_div(2 * hd, 256), 256, 0, ctx.stream>>>(partial, nparts, hd,
                                                                   dq_norm_w, dk_norm_w);
  TROUPE_LAUNCH_CHECK("sum_norm_partials");
}

}  // namespace troupe::cuda
