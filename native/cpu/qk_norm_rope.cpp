// Per-head RMSNorm of the q and k heads followed by rotary embedding, on packed qkv rows
// [T, Hq + 2*Hkv, hd] (contract in native/ops/backend.h). Matches HF Qwen3Attention: q_norm /
// k_norm over head_dim, then apply_rotary_pos_emb in rotate-half form:
//   out[i]      = n[i] * cos[i] - n[i+half] * sin[i]
//   out[i+half] = n[i+half] * cos[i] + n[i] * sin[i]          (i < half = hd/2)
// with cos/sin rows [max_pos, half] (HF's tables repeat the half twice; only one copy is kept).
// Both directions also work in place (qkv_out == qkv_in, dqkv_in == dqkv_out): a head is fully
// read before it is written.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernel_args.h"
#include "kernels.h"
#include "norm_common.h"
#include "parallel.h"
#include "vec16.h"

namespace troupe::cpu {
namespace {

using vec::f16v;

void check_shape(const char* op, const int32_t* positions, int T, int Hq, int Hkv, int hd) {
  require(T >= 0, op, "T must be >= 0");
  require(Hq > 0, op, "Hq must be > 0");
  require(Hkv > 0, op, "Hkv must be > 0");
  require(hd > 0 && hd % 2 == 0, op, "hd must be even and > 0 (rotate-half rotary)");
  // The table length is not part of the contract, so only negative positions can be rejected.
  for (int t = 0; t < T; ++t) require(positions[t] >= 0, op, "positions must be >= 0");
}

// out = R (x * r * w): the normalisation fused into the rotation by table row (c, s).
void norm_rope_row(const float* x, float r, const float* w, const float* c, const float* s,
                   int half, float* out) {
  int i = 0;
  for (; i + vec::kLanes <= half; i += vec::kLanes) {
    const f16v a = vec::load(x + i) * r * vec::load(w + i);
    const f16v b = vec::load(x + i + half) * r * vec::load(w + i + half);
    const f16v cv = vec::load(c + i), sv = vec::load(s + i);
    vec::store(out + i, a * cv - b * sv);
    vec::store(out + i + half, b * cv + a * sv);
  }
  for (; i < half; ++i) {
    const float a = x[i] * r * w[i], b = x[i + half] * r * w[i + half];
    out[i] = a * c[i] - b * s[i];
    out[i + half] = b * c[i] + a * s[i];
  }
}

// The transpose of the rotation: dn = R^T dout.
void unrope_row(const float* d, const float* c, const float* s, int half, float* dn) {
  int i = 0;
  for (; i + vec::kLanes <= half; i += vec::kLanes) {
    const f16v a = vec::load(d + i), b = vec::load(d + i + half);
    const f16v cv = vec::load(c + i), sv = vec::load(s + i);
    vec::store(dn + i, a * cv + b * sv);
    vec::store(dn + i + half, b * cv - a * sv);
  }
  for (; i < half; ++i) {
    const float a = d[i], b = d[i + half];
    dn[i] = a * c[i] + b * s[i];
    dn[i + half] = b * c[i] - a * s[i];
  }
}

// Tokens per parallel chunk: about 16K floats of qkv.
size_t token_grain(int heads, int hd) {
  return std::max<size_t>(1, (1u << 14) / (static_cast<size_t>(heads) * hd));
}

}  // namespace

void qk_norm_rope_forward(const float* qkv_in, const float* q_norm_w, const float* k_norm_w,
                          const int32_t* positions, const float* rope_cos, const float* rope_sin,
                          int T, int Hq, int Hkv, int hd, float eps, float* qkv_out, float* rstd) {
  check_shape("qk_norm_rope_forward", positions, T, Hq, Hkv, hd);
  const int heads = Hq + 2 * Hkv, normed = Hq + Hkv, half = hd / 2;
  const size_t row = static_cast<size_t>(heads) * hd;
  parallel_for(static_cast<size_t>(T), token_grain(heads, hd), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const float* in = qkv_in + t * row;
      float* out = qkv_out + t * row;
      float* r = rstd + t * normed;
      // All of the token's rstd first: the heads' sqrt/divide latencies then overlap instead
      // of each stalling its own head (the rows are short, so that latency dominates).
      for (int h = 0; h < normed; ++h) r[h] = norm::rstd_of(in + h * hd, hd, eps);
      const size_t trow = static_cast<size_t>(positions[t]) * half;
      for (int h = 0; h < normed; ++h)
        norm_rope_row(in + h * hd, r[h], h < Hq ? q_norm_w : k_norm_w, rope_cos + trow,
                      rope_sin + trow, half, out + h * hd);
      if (out != in) std::memcpy(out + normed * hd, in + normed * hd, sizeof(float) * Hkv * hd);
    }
  });
}

void qk_norm_rope_backward(const float* dqkv_out, const float* qkv_in, const float* q_norm_w,
                           const float* k_norm_w, const int32_t* positions, const float* rope_cos,
                           const float* rope_sin, const float* rstd, int T, int Hq, int Hkv, int hd,
                           float* dqkv_in, float* dq_norm_w, float* dk_norm_w) {
  check_shape("qk_norm_rope_backward", positions, T, Hq, Hkv, hd);
  if (T == 0) return;
  const int heads = Hq + 2 * Hkv, normed = Hq + Hkv, half = hd / 2;
  const size_t row = static_cast<size_t>(heads) * hd, d = static_cast<size_t>(hd);
  // Norm-weight gradients sum over tokens and heads: one partial per fixed block of tokens
  // (tokens in order, heads in order within a token), partials added in block order.
  const int block_tokens = norm::partial_block_rows(T, 16);
  const int blocks = (T + block_tokens - 1) / block_tokens;
  std::vector<float> part_q(blocks * d, 0.0f), part_k(blocks * d, 0.0f);
  parallel_for(static_cast<size_t>(blocks), 1, [&](size_t b0, size_t b1) {
    std::vector<float> dn(d);
    for (size_t b = b0; b < b1; ++b) {
      const size_t t_end = std::min<size_t>(T, (b + 1) * block_tokens);
      for (size_t t = b * block_tokens; t < t_end; ++t) {
        const float* dout = dqkv_out + t * row;
        const float* in = qkv_in + t * row;
        float* din = dqkv_in + t * row;
        const size_t trow = static_cast<size_t>(positions[t]) * half;
        for (int h = 0; h < normed; ++h) {
          const bool is_q = h < Hq;
          unrope_row(dout + h * hd, rope_cos + trow, rope_sin + trow, half, dn.data());
          norm::row_backward<false>(dn.data(), in + h * hd, is_q ? q_norm_w : k_norm_w,
                                    rstd[t * normed + h], hd, din + h * hd,
                                    (is_q ? part_q : part_k).data() + b * d);
        }
        if (din != dout)
          std::memcpy(din + normed * hd, dout + normed * hd, sizeof(float) * Hkv * hd);
      }
    }
  });
  norm::add_partials(part_q.data(), blocks, hd, dq_norm_w);
  norm::add_partials(part_k.data(), blocks, hd, dk_norm_w);
}

}  // namespace troupe::cpu
