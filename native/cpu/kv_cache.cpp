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
  constexpr float kInf = std::numeric_limits<float>::infinity();
  // One item per row: its slot's positions are read front to back, all kv heads at once (one
  // contiguous Hkv*hd record per position), which streams the cache at full line use. Each row
  // is computed the same way wherever it runs, so the output does not depend on thread count.
  parallel_for(static_cast<size_t>(B), 1, [&](size_t b0, size_t b1) {
    std::vector<float> q, scores, acc, inv(Hq);
    for (size_t b = b0; b < b1; ++b) {
      const int L = lengths[b];
      const size_t Lp = round_up(L, vec::kLanes);
      const size_t base = static_cast<size_t>(slots[b]) * max_len * pos_stride;
      q.resize(static_cast<size_t>(Hq) * hd);
      scores.assign(static_cast<size_t>(Hq) * Lp, -kInf);  // -inf pads give p = 0
      acc.assign(static_cast<size_t>(Hq) * hd, 0.0f);
      // The scale is folded into q, as in attention_forward.
      for (int i = 0; i < Hq * hd; ++i) q[i] = qkv[b * row + i] * scale;
      for (int j = 0; j < L; ++j) {
        const float* k = k_cache + base + j * pos_stride;
        for (int h = 0; h < Hq; ++h) {
          const float* kh = k + static_cast<size_t>(h / group) * hd;
          const float* qh = q.data() + static_cast<size_t>(h) * hd;
          f16v s = {};
          for (int c = 0; c < hd; c += vec::kLanes)
            s += load_cols(qh, c, hd) * load_cols(kh, c, hd);
          scores[h * Lp + j] = vec::hsum(s);
        }
      }
      for (int h = 0; h < Hq; ++h) {
        float* s = scores.data() + h * Lp;
        f16v mx = vec::splat(-kInf);
        for (size_t j = 0; j < Lp; j += vec::kLanes) mx = vec::vmax(mx, vec::load(s + j));
        const f16v m = vec::splat(vec::hmax(mx));
        f16v sum = {};
        for (size_t j = 0; j < Lp; j += vec::kLanes) {
          const f16v p = vec::vexp(vec::load(s + j) - m);
          vec::store(s + j, p);
          sum += p;
        }
        inv[h] = 1.0f / vec::hsum(sum);
      }
      for (int j = 0; j < L; ++j) {
        const float* v = v_cache + base + j * pos_stride;
        for (int h = 0; h < Hq; ++h) {
          const float pj = scores[h * Lp + j];
          const float* vh = v + static_cast<size_t>(h / group) * hd;
          float* a = acc.data() + static_cast<size_t>(h) * hd;
          for (int d = 0; d < hd; ++d) a[d] += pj * vh[d];
        }
      }
      float* y = out + b * static_cast<size_t>(Hq) * hd;
      for (int h = 0; h < Hq; ++h)
        for (int d = 0; d < hd; ++d) y[h * hd + d] = acc[h * hd + d] * inv[h];
    }
  });
}

}  // namespace troupe::cpu
