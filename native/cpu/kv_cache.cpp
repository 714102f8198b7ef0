// KV-cache write and single-token decode attention (contracts in native/ops/backend.h).
// Cache layout per layer: [num_slots, max_len, Hkv, hd], so one token's k (or v) heads are one
// contiguous run of Hkv*hd floats, exactly as they sit in a packed qkv row.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_args.h"
#include "kernels.h"
#include "parallel.h"
#include "vec16.h"

namespace troupe::cpu {
namespace {

using vec::f16v;

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// One vector of row x starting at column c (c < n), zero-padded past n.
inline f16v load_cols(const float* x, int c, int n) {
  return c + vec::kLanes <= n ? vec::load(x + c) : vec::load_partial(x + c, n - c);
}

// One row of decode attention: its query heads, its slot's cache and its output.
struct DecodeRow {
  const float* q;  // [Hq, hd] (unscaled)
  const float *k_cache, *v_cache;
  size_t base, pos_stride;  // slot offset and floats per cached position
  int L, Hq, group, hd;
  float scale;
  float* y;  // [Hq, hd]
};

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kMaxDecodeHeads = 256;  // the fixed-size kernels keep per-head values on the stack

// In place: s[0, Lp) -> exp(s - max) (the -inf pads become 0); returns 1 / sum.
float softmax_unnormalised(float* s, size_t Lp) {
  f16v mx = vec::splat(-kInf);
  for (size_t j = 0; j < Lp; j += vec::kLanes) mx = vec::vmax(mx, vec::load(s + j));
  const f16v m = vec::splat(vec::hmax(mx));
  f16v sum = {};
  for (size_t j = 0; j < Lp; j += vec::kLanes) {
    const f16v p = vec::vexp(vec::load(s + j) - m);
    vec::store(s + j, p);
    sum += p;
  }
  return 1.0f / vec::hsum(sum);
}

#if TROUPE_VEC_SHUFFLE
// hd = 16 * NV. The cache is read strictly front to back, one whole record (all kv heads of a
// position) after another, like a memcpy, because it usually streams from DRAM (the cache of a
// batch is larger than L3) and any other order defeats the hardware prefetcher. Scores come 16
// positions at a time: each record gives every query head one lane-wise q*k product (kept in an
// L1 scratch), and hsum16x16 folds a head's sixteen products into its sixteen scores. Then a
// softmax per head, and p @ V record by record into per-head accumulators. Every sum over
// positions runs in position order.
template <int NV>
void decode_row_fixed(const DecodeRow& r, std::vector<f16v>& scratch) {
  const int L = r.L, Hq = r.Hq, hd = r.hd;
  const size_t Lp = round_up(L, vec::kLanes);
  const size_t Lv = Lp / vec::kLanes;
  // [Hq][16] products, [Hq][Lv] scores, [Hq][NV] accumulators, [Hq][NV] scaled q
  scratch.resize(static_cast<size_t>(Hq) * (vec::kLanes + Lv + 2 * NV));
  f16v* prod = scratch.data();
  f16v* scores_v = prod + static_cast<size_t>(Hq) * vec::kLanes;
  f16v* acc = scores_v + static_cast<size_t>(Hq) * Lv;
  f16v* q = acc + static_cast<size_t>(Hq) * NV;
  for (int h = 0; h < Hq; ++h)
    for (int c = 0; c < NV; ++c) q[h * NV + c] = vec::load(r.q + static_cast<size_t>(h) * hd + 16 * c) * r.scale;
  for (int j0 = 0; j0 < L; j0 += vec::kLanes) {
    const int n = std::min(vec::kLanes, L - j0);
    for (int jj = 0; jj < n; ++jj) {
      const float* rec = r.k_cache + r.base + static_cast<size_t>(j0 + jj) * r.pos_stride;
      for (int h = 0; h < Hq; ++h) {
        const float* k = rec + static_cast<size_t>(h / r.group) * hd;
        const f16v* qh = q + h * NV;
        f16v a = qh[0] * vec::load(k);
        for (int c = 1; c < NV; ++c) a += qh[c] * vec::load(k + 16 * c);
        prod[h * vec::kLanes + jj] = a;
      }
    }
    // Lanes past the row's end are -inf (p = 0); their products are stale and masked away.
    const auto valid = vec::iota() < static_cast<float>(n);
    for (int h = 0; h < Hq; ++h)
      scores_v[h * Lv + j0 / vec::kLanes] =
          valid ? vec::hsum16x16(prod + h * vec::kLanes) : vec::splat(-kInf);
  }
  float* scores = reinterpret_cast<float*>(scores_v);  // [Hq][Lp]
  float inv[kMaxDecodeHeads];
  for (int h = 0; h < Hq; ++h) inv[h] = softmax_unnormalised(scores + static_cast<size_t>(h) * Lp, Lp);
  for (int i = 0; i < Hq * NV; ++i) acc[i] = f16v{};
  for (int j = 0; j < L; ++j) {
    const float* rec = r.v_cache + r.base + static_cast<size_t>(j) * r.pos_stride;
    for (int h = 0; h < Hq; ++h) {
      const float* v = rec + static_cast<size_t>(h / r.group) * hd;
      const f16v p = vec::splat(scores[static_cast<size_t>(h) * Lp + j]);
      for (int c = 0; c < NV; ++c) acc[h * NV + c] += p * vec::load(v + 16 * c);
    }
  }
  for (int h = 0; h < Hq; ++h)
    for (int c = 0; c < NV; ++c)
      vec::store(r.y + static_cast<size_t>(h) * hd + 16 * c, acc[h * NV + c] * inv[h]);
}
#endif

// Any head size: one dot product and horizontal sum per (position, head).
void decode_row_generic(const DecodeRow& r, std::vector<float>& scratch) {
  const int L = r.L, Hq = r.Hq, hd = r.hd;
  const size_t Lp = round_up(L, vec::kLanes);
  scratch.resize(static_cast<size_t>(Hq) * (Lp + hd) + hd);
  float* scores = scratch.data();                      // [Hq, Lp]
  float* q = scores + static_cast<size_t>(Hq) * Lp;    // [Hq, hd], scaled
  float* acc = q + static_cast<size_t>(Hq) * hd;       // [hd], one head at a time
  for (int i = 0; i < Hq * hd; ++i) q[i] = r.q[i] * r.scale;
  for (int h = 0; h < Hq; ++h) {
    const size_t kv_off = r.base + static_cast<size_t>(h / r.group) * hd;
    float* s = scores + static_cast<size_t>(h) * Lp;
    for (int j = 0; j < L; ++j) {
      const float* k = r.k_cache + kv_off + static_cast<size_t>(j) * r.pos_stride;
      f16v d = {};
      for (int c = 0; c < hd; c += vec::kLanes) d += load_cols(q + h * hd, c, hd) * load_cols(k, c, hd);
      s[j] = vec::hsum(d);
    }
    for (size_t j = L; j < Lp; ++j) s[j] = -kInf;
    const float inv = softmax_unnormalised(s, Lp);
    std::fill(acc, acc + hd, 0.0f);
    for (int j = 0; j < L; ++j) {
      const float* v = r.v_cache + kv_off + static_cast<size_t>(j) * r.pos_stride;
      for (int d = 0; d < hd; ++d) acc[d] += s[j] * v[d];
    }
    for (int d = 0; d < hd; ++d) r.y[static_cast<size_t>(h) * hd + d] = acc[d] * inv;
  }
}

}  // namespace

void kv_cache_write(const float* qkv, const int32_t* slots, const int32_t* positions, int T, int Hq,
                    int Hkv, int hd, int max_len, float* k_cache, float* v_cache) {
  const char* op = "kv_cache_write";
  require(T >= 0, op, "T must be >= 0");
  require(Hq > 0 && Hkv > 0 && hd > 0, op, "Hq, Hkv and hd must be > 0");
  require(max_len > 0, op, "max_len must be > 0");
  for (int t = 0; t < T; ++t) {
    // The slot count is not part of the contract, so only negative slots can be rejected.
    require(slots[t] >= 0, op, "slots must be >= 0");
    require(positions[t] >= 0 && positions[t] < max_len, op, "positions must be in [0, max_len)");
  }
  const size_t heads = static_cast<size_t>(Hkv) * hd;
  const size_t row = static_cast<size_t>(Hq + 2 * Hkv) * hd;
  const size_t grain = std::max<size_t>(1, 4096 / heads);
  parallel_for(static_cast<size_t>(T), grain, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) {
      const size_t dst = (static_cast<size_t>(slots[t]) * max_len + positions[t]) * heads;
      const float* src = qkv + t * row + static_cast<size_t>(Hq) * hd;
      std::memcpy(k_cache + dst, src, heads * sizeof(float));
      std::memcpy(v_cache + dst, src + heads, heads * sizeof(float));
    }
  });
}

void decode_attention(const float* qkv, const float* k_cache, const float* v_cache,
                      const int32_t* slots, const int32_t* lengths, int B, int Hq, int Hkv, int hd,
                      int max_len, float scale, float* out) {
  const char* op = "decode_attention";
  require(B >= 0, op, "B must be >= 0");
  require(Hq > 0 && Hkv > 0 && hd > 0, op, "Hq, Hkv and hd must be > 0");
  require(Hq % Hkv == 0, op, "Hq must be a multiple of Hkv (grouped-query heads)");
  require(max_len > 0, op, "max_len must be > 0");
  for (int b = 0; b < B; ++b) {
    require(slots[b] >= 0, op, "slots must be >= 0");
    // The row's own k/v is already in the cache, so it attends to at least one position.
    require(lengths[b] >= 1 && lengths[b] <= max_len, op, "lengths must be in [1, max_len]");
  }
  const int group = Hq / Hkv;
  const size_t row = static_cast<size_t>(Hq + 2 * Hkv) * hd;
  const size_t pos_stride = static_cast<size_t>(Hkv) * hd;  // floats per cached position
  // One item per row, computed the same way wherever it runs, so the output depends neither on
  // the thread count nor on the other rows.
  parallel_for(static_cast<size_t>(B), 1, [&](size_t b0, size_t b1) {
    std::vector<float> scratch;
    std::vector<f16v> vscratch;
    for (size_t b = b0; b < b1; ++b) {
      const DecodeRow r{qkv + b * row, k_cache, v_cache,
                        static_cast<size_t>(slots[b]) * max_len * pos_stride, pos_stride,
                        lengths[b], Hq, group, hd, scale, out + b * static_cast<size_t>(Hq) * hd};
#if TROUPE_VEC_SHUFFLE
      if (Hq <= kMaxDecodeHeads && hd == 32) { decode_row_fixed<2>(r, vscratch); continue; }
      if (Hq <= kMaxDecodeHeads && hd == 64) { decode_row_fixed<4>(r, vscratch); continue; }
      if (Hq <= kMaxDecodeHeads && hd == 128) { decode_row_fixed<8>(r, vscratch); continue; }
#endif
      decode_row_generic(r, scratch);
    }
  });
}

}  // namespace troupe::cpu
