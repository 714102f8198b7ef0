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
  parallel_for(static_cast<size_t>(T), std::max<size_t>(1, 4096 / heads), [&](size_t t0, size_t t1) {
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
  // One item per (row, kv head): the group's query heads share each k/v load. Every item is
  // computed the same way wherever it runs, so the output does not depend on the thread count.
  parallel_for(static_cast<size_t>(B) * Hkv, 1, [&](size_t i0, size_t i1) {
    std::vector<float> q, scores, acc;
    for (size_t item = i0; item < i1; ++item) {
      const int b = static_cast<int>(item / Hkv), g = static_cast<int>(item % Hkv);
      const int L = lengths[b];
      const size_t Lp = round_up(L, vec::kLanes);
      const size_t base = static_cast<size_t>(slots[b]) * max_len * pos_stride + g * hd;
      const float* kc = k_cache + base;
      const float* vc = v_cache + base;
      q.assign(static_cast<size_t>(group) * hd, 0.0f);
      scores.assign(static_cast<size_t>(group) * Lp, -kInf);  // -inf pads give p = 0
      acc.assign(static_cast<size_t>(group) * hd, 0.0f);
      for (int i = 0; i < group; ++i) {  // scale folded into q, as in attention_forward
        const float* x = qkv + b * row + static_cast<size_t>(g * group + i) * hd;
        for (int d = 0; d < hd; ++d) q[i * hd + d] = x[d] * scale;
      }
      for (int j = 0; j < L; ++j) {
        const float* k = kc + j * pos_stride;
        for (int i = 0; i < group; ++i) {
          f16v s = {};
          for (int c = 0; c < hd; c += vec::kLanes)
            s += load_cols(q.data() + i * hd, c, hd) * load_cols(k, c, hd);
          scores[i * Lp + j] = vec::hsum(s);
        }
      }
      for (int i = 0; i < group; ++i) {
        float* s = scores.data() + i * Lp;
        f16v mx = vec::splat(-kInf);
        for (size_t j = 0; j < Lp; j += vec::kLanes) mx = vec::vmax(mx, vec::load(s + j));
        const f16v m = vec::splat(vec::hmax(mx));
        f16v sum = {};
        for (size_t j = 0; j < Lp; j += vec::kLanes) {
          const f16v p = vec::vexp(vec::load(s + j) - m);
          vec::store(s + j, p);
          sum += p;
        }
        const float inv = 1.0f / vec::hsum(sum);
        float* a = acc.data() + i * hd;
        for (int j = 0; j < L; ++j) {
          const float pj = s[j];
          const float* v = vc + j * pos_stride;
          for (int d = 0; d < hd; ++d) a[d] += pj * v[d];
        }
        float* y = out + b * static_cast<size_t>(Hq) * hd + static_cast<size_t>(g * group + i) * hd;
        for (int d = 0; d < hd; ++d) y[d] = a[d] * inv;
      }
    }
  });
}

}  // namespace troupe::cpu
