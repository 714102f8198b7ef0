// Causal grouped-query attention over packed variable-length sequences, flash-attention style
// (contract in native/ops/backend.h). Scores never exist beyond one kR x kBk register tile:
// the forward keeps a running max / sum per query row (online softmax) and the backward
// recomputes probabilities from the saved log-sum-exp, with D_i = rowsum(dO_i * O_i) and
// dS = P * (dP - D).
//
// Parallelism and determinism. Work items are independent pieces of the output:
//   forward  (sequence, kv head, chunk of up to kChunkRows query rows): writes those rows of
//            out / lse for the kv head's query heads;
//   backward (sequence, kv head): writes dQ of the group's query heads and dK/dV of the kv head.
// Threads claim items from a shared counter (largest first, for balance with mixed lengths).
// Which thread runs an item changes nothing: an item's arithmetic is fixed by its shape, so the
// output is bitwise the same for any thread count. In the backward, dK/dV of a kv head sum the
// contributions of its query heads in head order, then query tiles in row order.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attention_tiles.h"
#include "kernel_args.h"
#include "kernels.h"
#include "parallel.h"
#include "vec16.h"

namespace troupe::cpu {
namespace {

using attn::kBk;
using attn::kKV;
using attn::kR;
using vec::f16v;

// Query rows per forward block: a multiple of kBk, so a key block either lies wholly before a
// query tile or straddles its diagonal. The block's O accumulators (kBq x hd) stay in L1/L2
// while the key blocks stream past.
constexpr int kBq = 64;
static_assert(kBq % kBk == 0 && kBk % kR == 0, "tile sizes must nest");
// Query rows per forward item. Items share one packing of K/V over all their blocks; sequences
// longer than this split into several items so that long single sequences still spread over
// threads. A constant (never the thread count), so the items and their arithmetic are fixed.
constexpr int kChunkRows = 8 * kBq;
// Rows ahead to prefetch when gathering qkv rows: consecutive rows of one head are a whole
// token apart (often exactly 4 KiB), on different pages, where hardware prefetchers stop.
constexpr int kPrefetchRows = 16;
constexpr float kInf = std::numeric_limits<float>::infinity();

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// Head geometry of packed qkv rows.
struct Geometry {
  int Hq, Hkv, hd, hd_p, group;
  size_t row;  // floats per token of qkv
  Geometry(int hq, int hkv, int d)
      : Hq(hq), Hkv(hkv), hd(d), hd_p(static_cast<int>(round_up(d, vec::kLanes))),
        group(hq / hkv), row(static_cast<size_t>(hq + 2 * hkv) * d) {}
  size_t q_off(int h) const { return static_cast<size_t>(h) * hd; }
  size_t k_off(int g) const { return static_cast<size_t>(Hq + g) * hd; }
  size_t v_off(int g) const { return static_cast<size_t>(Hq + Hkv + g) * hd; }
};

void check_attention(const char* op, const int32_t* cu, int num_seqs, int max_seqlen, int T,
                     int Hq, int Hkv, int hd) {
  require(T >= 0, op, "T must be >= 0");
  require(num_seqs >= 0, op, "num_seqs must be >= 0");
  require(Hq > 0 && Hkv > 0, op, "Hq and Hkv must be > 0");
  require(Hq % Hkv == 0, op, "Hq must be a multiple of Hkv (grouped-query heads)");
  require(hd > 0, op, "hd must be > 0");
  require(cu[0] == 0, op, "cu_seqlens[0] must be 0");
  for (int s = 0; s < num_seqs; ++s) {
    const int len = cu[s + 1] - cu[s];
    require(len >= 0, op, "cu_seqlens must be non-decreasing");
    if (len > max_seqlen)
      bad_arg(op, "max_seqlen " + std::to_string(max_seqlen) + " is shorter than sequence " +
                      std::to_string(s) + " (" + std::to_string(len) + " tokens)");
  }
  require(cu[num_seqs] == T, op, "cu_seqlens[num_seqs] must equal T");
}

// Per-thread scratch, grown on demand and kept for the next call (pool threads persist), so a
// training step does not allocate inside the layer loop.
struct Scratch {
  std::vector<float> kt, vt, k, v, q, dout, dq, o, m, l, lse, delta, dk, dv;
};
Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}
float* sized(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

inline void prefetch_row(const float* src, size_t row, int i, int n, int hd) {
  if (i + kPrefetchRows < n) {
    const float* p = src + static_cast<size_t>(i + kPrefetchRows) * row;
    for (int d = 0; d < hd; d += vec::kLanes) __builtin_prefetch(p + d);
  }
}

// Transposed key blocks: bt[(kb*hd + d)*kBk + jj] = src[(kb*kBk + jj)*row + d], zero past n.
void pack_transposed(const float* src, size_t row, int n, int blocks, int hd, float* bt) {
  for (int kb = 0; kb < blocks; ++kb) {
    float* blk = bt + static_cast<size_t>(kb) * hd * kBk;
    for (int jj = 0; jj < kBk; ++jj) {
      const int j = kb * kBk + jj;
      if (j < n) {
        prefetch_row(src, row, j, n, hd);
        const float* x = src + static_cast<size_t>(j) * row;
        for (int d = 0; d < hd; ++d) blk[d * kBk + jj] = x[d];
      } else {
        for (int d = 0; d < hd; ++d) blk[d * kBk + jj] = 0.0f;
      }
    }
  }
}

// Row buffer: dst[i*hd_p + d] = src[i*row + d] * scale for i < n, d < hd; zero up to n_pad rows.
void pack_rows(const float* src, size_t row, int n, int n_pad, int hd, int hd_p, float scale,
               float* dst) {
  for (int i = 0; i < n_pad; ++i) {
    float* y = dst + static_cast<size_t>(i) * hd_p;
    int d = 0;
    if (i < n) {
      prefetch_row(src, row, i, n, hd);
      const float* x = src + static_cast<size_t>(i) * row;
      for (; d < hd; ++d) y[d] = x[d] * scale;
    }
    for (; d < hd_p; ++d) y[d] = 0.0f;
  }
}

// Sets the scores of keys kstart + jj with jj > limit to -inf (causal mask on a diagonal tile).
inline void mask_after(f16v s[kKV], int limit) {
  const f16v lim = vec::splat(static_cast<float>(limit));
#pragma GCC unroll 4
  for (int c = 0; c < kKV; ++c) {
    const f16v jj = vec::iota() + static_cast<float>(c * vec::kLanes);
    s[c] = jj <= lim ? s[c] : vec::splat(-kInf);
  }
}

// Runs item(i) for every i in [0, n) on the pool; the caller orders items largest first.
template <typename Item>
void run_items(size_t n, const Item& item) {
  std::atomic<size_t> next{0};
  run_on_threads(
      [&](int, int) {
        for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) item(i);
      },
      static_cast<int>(std::min<size_t>(n, 1 << 20)));
}

// ---- forward ----

// Number of key vectors of block kstart that the tile of rows [ia, ia + kR) can see.
inline int visible_key_vectors(int ia, int kstart) {
  const int keys = std::min(kBk, ia + kR - kstart);
  return (keys + vec::kLanes - 1) / vec::kLanes;
}

// Online softmax over one block of kBq (or fewer) query rows of one head. q: packed rows
// (scaled), o/m/l: the block's accumulators; kt/v: the packed keys and values of the sequence.
void forward_block(const float* q, int r0, int rows_p, int blocks, const float* kt,
                   const float* v, int hd, int hd_p, float* o, float* m, float* l) {
  alignas(64) float p[kR * kBk];
  float alpha[kR];
  f16v s[kR][kKV];
  // Key blocks outer, query tiles inner: a key block is read from cache once per kBq rows,
  // which is what keeps long sequences compute-bound.
  for (int kb = 0; kb < blocks; ++kb) {
    const int kstart = kb * kBk;
    for (int li = std::max(r0, kstart) - r0; li < rows_p; li += kR) {
      const int ia = r0 + li;  // sequence row of the tile's first query
      const int nc = visible_key_vectors(ia, kstart);
      attn::score_tile(q + static_cast<size_t>(li) * hd_p, hd_p,
                       kt + static_cast<size_t>(kb) * hd * kBk, hd, nc, s);
      const bool diagonal = kstart + kBk - 1 > ia;
      for (int r = 0; r < kR; ++r) {
        for (int c = nc; c < kKV; ++c) s[r][c] = vec::splat(-kInf);
        if (diagonal) mask_after(s[r], ia + r - kstart);
        // Every tile row sees key kstart (tile rows start at or after it): the max is finite.
        const f16v mx4 = vec::vmax(vec::vmax(s[r][0], s[r][1]), vec::vmax(s[r][2], s[r][3]));
        const float m_new = std::max(m[li + r], vec::hmax(mx4));
        alpha[r] = std::exp(m[li + r] - m_new);  // 0 on the first block (m = -inf)
        const f16v mv = vec::splat(m_new);
        f16v sum = {};
#pragma GCC unroll 4
        for (int c = 0; c < kKV; ++c) {
          const f16v pc = vec::vexp(s[r][c] - mv);
          vec::store(p + r * kBk + c * vec::kLanes, pc);
          sum += pc;
        }
        l[li + r] = l[li + r] * alpha[r] + vec::hsum(sum);
        m[li + r] = m_new;
      }
      // Keys past the tile's last row have p = 0: skip them on the diagonal.
      const int nk = std::min(kBk, ia + kR - kstart);
      attn::rows_accum_all(p, v + static_cast<size_t>(kstart) * hd_p, nk, alpha,
                           o + static_cast<size_t>(li) * hd_p, hd_p);
    }
  }
}

// Query rows [r0, r1) of one sequence (starting at token t0), every query head of kv head g.
void forward_item(const Geometry& G, const float* qkv, int t0, int r0, int r1, int g, float scale,
                  float* out, float* lse) {
  Scratch& S = thread_scratch();
  const int hd = G.hd, hd_p = G.hd_p;
  const int n_keys = r1;  // causal: rows < r1 see keys < r1
  const int all_blocks = (n_keys + kBk - 1) / kBk;
  const float* seq = qkv + static_cast<size_t>(t0) * G.row;
  float* kt = sized(S.kt, static_cast<size_t>(all_blocks) * hd * kBk);
  float* v = sized(S.v, static_cast<size_t>(all_blocks) * kBk * hd_p);
  float* q = sized(S.q, static_cast<size_t>(kBq) * hd_p);
  float* o = sized(S.o, static_cast<size_t>(kBq) * hd_p);
  float* m = sized(S.m, kBq);
  float* l = sized(S.l, kBq);
  pack_transposed(seq + G.k_off(g), G.row, n_keys, all_blocks, hd, kt);
  pack_rows(seq + G.v_off(g), G.row, n_keys, all_blocks * kBk, hd, hd_p, 1.0f, v);
  const size_t orow = static_cast<size_t>(G.Hq) * hd;
  for (int b0 = r0; b0 < r1; b0 += kBq) {
    const int rows = std::min(kBq, r1 - b0), rows_p = static_cast<int>(round_up(rows, kR));
    const int blocks = (b0 + rows + kBk - 1) / kBk;  // key blocks this query block sees
    for (int h = g * G.group; h < (g + 1) * G.group; ++h) {
      // The softmax scale is folded into q once instead of into every score.
      pack_rows(seq + static_cast<size_t>(b0) * G.row + G.q_off(h), G.row, rows, rows_p, hd, hd_p,
                scale, q);
      std::fill(o, o + static_cast<size_t>(rows_p) * hd_p, 0.0f);
      std::fill(m, m + rows_p, -kInf);
      std::fill(l, l + rows_p, 0.0f);
      forward_block(q, b0, rows_p, blocks, kt, v, hd, hd_p, o, m, l);
      for (int li = 0; li < rows; ++li) {
        const size_t t = static_cast<size_t>(t0 + b0 + li);
        const float inv = 1.0f / l[li];
        float* y = out + t * orow + G.q_off(h);
        const float* x = o + static_cast<size_t>(li) * hd_p;
        for (int d = 0; d < hd; ++d) y[d] = x[d] * inv;
        lse[t * G.Hq + h] = m[li] + std::log(l[li]);
      }
    }
  }
}

// ---- backward ----

// One sequence (tokens [t0, t0+L)) and kv head g: dQ of the group's query heads, dK and dV.
void backward_item(const Geometry& G, const float* dout, const float* qkv, const float* out,
                   const float* lse, int t0, int L, int g, float scale, float* dqkv) {
  Scratch& S = thread_scratch();
  const int hd = G.hd, hd_p = G.hd_p, group = G.group;
  const int blocks = (L + kBk - 1) / kBk, Lr = static_cast<int>(round_up(L, kR));
  const size_t head_rows = static_cast<size_t>(Lr) * hd_p;
  const float* seq = qkv + static_cast<size_t>(t0) * G.row;
  float* kt = sized(S.kt, static_cast<size_t>(blocks) * hd * kBk);  // S = Q K^T
  float* vt = sized(S.vt, static_cast<size_t>(blocks) * hd * kBk);  // dP = dO V^T
  float* k = sized(S.k, static_cast<size_t>(blocks) * kBk * hd_p);  // dQ += dS K
  float* q = sized(S.q, group * head_rows);
  float* dO = sized(S.dout, group * head_rows);
  float* dq = sized(S.dq, group * head_rows);
  float* lse_r = sized(S.lse, static_cast<size_t>(group) * Lr);
  float* delta = sized(S.delta, static_cast<size_t>(group) * Lr);
  float* dk = sized(S.dk, static_cast<size_t>(kBk) * hd_p);
  float* dv = sized(S.dv, static_cast<size_t>(kBk) * hd_p);
  pack_transposed(seq + G.k_off(g), G.row, L, blocks, hd, kt);
  pack_transposed(seq + G.v_off(g), G.row, L, blocks, hd, vt);
  pack_rows(seq + G.k_off(g), G.row, L, blocks * kBk, hd, hd_p, 1.0f, k);
  const size_t orow = static_cast<size_t>(G.Hq) * hd;  // floats per token of out / dout
  for (int i = 0; i < group; ++i) {
    const int h = g * group + i;
    // q carries the softmax scale, so S = q k^T directly and dK = dS^T q needs no extra factor.
    pack_rows(seq + G.q_off(h), G.row, L, Lr, hd, hd_p, scale, q + i * head_rows);
    pack_rows(dout + static_cast<size_t>(t0) * orow + G.q_off(h), orow, L, Lr, hd, hd_p, 1.0f,
              dO + i * head_rows);
    std::fill(dq + i * head_rows, dq + (i + 1) * head_rows, 0.0f);
    for (int r = 0; r < Lr; ++r) {
      const size_t t = static_cast<size_t>(t0 + r);
      // Padding rows get lse = +inf, so their probabilities (and gradients) are exactly 0.
      lse_r[i * Lr + r] = r < L ? lse[t * G.Hq + h] : kInf;
      delta[i * Lr + r] =
          r < L ? static_cast<float>(vec::dot_f64(dout + t * orow + G.q_off(h),
                                                  out + t * orow + G.q_off(h), hd))
                : 0.0f;
    }
  }

  alignas(64) float p[kR * kBk], ds[kR * kBk];
  const float ones[kR] = {1.0f, 1.0f, 1.0f, 1.0f};
  f16v s[kR][kKV], dp[kR][kKV];
  for (int kb = 0; kb < blocks; ++kb) {
    const int kstart = kb * kBk, nk_block = std::min(kBk, L - kstart);
    std::fill(dk, dk + static_cast<size_t>(kBk) * hd_p, 0.0f);
    std::fill(dv, dv + static_cast<size_t>(kBk) * hd_p, 0.0f);
    const float* kt_b = kt + static_cast<size_t>(kb) * hd * kBk;
    const float* vt_b = vt + static_cast<size_t>(kb) * hd * kBk;
    for (int i = 0; i < group; ++i) {
      const float* qi = q + i * head_rows;
      const float* doi = dO + i * head_rows;
      for (int ia = kstart; ia < Lr; ia += kR) {
        const size_t at = static_cast<size_t>(ia) * hd_p;
        const int nc = visible_key_vectors(ia, kstart);
        attn::score_tile(qi + at, hd_p, kt_b, hd, nc, s);
        attn::score_tile(doi + at, hd_p, vt_b, hd, nc, dp);
        const bool diagonal = kstart + kBk - 1 > ia;
        for (int r = 0; r < kR; ++r) {
          for (int c = nc; c < kKV; ++c) s[r][c] = vec::splat(-kInf), dp[r][c] = f16v{};
          if (diagonal) mask_after(s[r], ia + r - kstart);
          const f16v lv = vec::splat(lse_r[i * Lr + ia + r]);
          const f16v dv_r = vec::splat(delta[i * Lr + ia + r]);
#pragma GCC unroll 4
          for (int c = 0; c < kKV; ++c) {
            const f16v pc = vec::vexp(s[r][c] - lv);
            vec::store(p + r * kBk + c * vec::kLanes, pc);
            vec::store(ds + r * kBk + c * vec::kLanes, pc * (dp[r][c] - dv_r));
          }
        }
        const int nk = std::min(nk_block, ia + kR - kstart);
        attn::keys_accum_all(p, nk, doi + at, dv, hd_p);
        attn::keys_accum_all(ds, nk, qi + at, dk, hd_p);
        attn::rows_accum_all(ds, k + static_cast<size_t>(kstart) * hd_p, nk, ones,
                             dq + i * head_rows + at, hd_p);
      }
    }
    for (int j = 0; j < nk_block; ++j) {
      float* row = dqkv + static_cast<size_t>(t0 + kstart + j) * G.row;
      std::copy(dk + static_cast<size_t>(j) * hd_p, dk + static_cast<size_t>(j) * hd_p + hd,
                row + G.k_off(g));
      std::copy(dv + static_cast<size_t>(j) * hd_p, dv + static_cast<size_t>(j) * hd_p + hd,
                row + G.v_off(g));
    }
  }
  for (int i = 0; i < group; ++i) {
    const int h = g * group + i;
    for (int r = 0; r < L; ++r) {
      float* y = dqkv + static_cast<size_t>(t0 + r) * G.row + G.q_off(h);
      const float* x = dq + i * head_rows + static_cast<size_t>(r) * hd_p;
      for (int d = 0; d < hd; ++d) y[d] = x[d] * scale;
    }
  }
}

}  // namespace

void attention_forward(const float* qkv, const int32_t* cu_seqlens, int num_seqs, int max_seqlen,
                       int T, int Hq, int Hkv, int hd, float scale, float* out, float* lse) {
  check_attention("attention_forward", cu_seqlens, num_seqs, max_seqlen, T, Hq, Hkv, hd);
  const Geometry G(Hq, Hkv, hd);
  struct Item {
    int seq, g, r0, r1;
    double cost;  // ~ (query, key) pairs: r1^2 - r0^2
  };
  std::vector<Item> items;
  for (int s = 0; s < num_seqs; ++s) {
    const int len = cu_seqlens[s + 1] - cu_seqlens[s];
    for (int r0 = 0; r0 < len; r0 += kChunkRows) {
      const int r1 = std::min(r0 + kChunkRows, len);
      for (int g = 0; g < Hkv; ++g)
        items.push_back({s, g, r0, r1, double(r1) * r1 - double(r0) * r0});
    }
  }
  // Largest first; the stable sort keeps equal items in sequence order (cache locality).
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.cost > b.cost; });
  run_items(items.size(), [&](size_t i) {
    const Item& it = items[i];
    forward_item(G, qkv, cu_seqlens[it.seq], it.r0, it.r1, it.g, scale, out, lse);
  });
}

void attention_backward(const float* dout, const float* qkv, const float* out, const float* lse,
                        const int32_t* cu_seqlens, int num_seqs, int max_seqlen, int T, int Hq,
                        int Hkv, int hd, float scale, float* dqkv) {
  check_attention("attention_backward", cu_seqlens, num_seqs, max_seqlen, T, Hq, Hkv, hd);
  const Geometry G(Hq, Hkv, hd);
  struct Item { int seq, g, len; };
  std::vector<Item> items;
  for (int s = 0; s < num_seqs; ++s) {
    const int len = cu_seqlens[s + 1] - cu_seqlens[s];
    if (len > 0)
      for (int g = 0; g < Hkv; ++g) items.push_back({s, g, len});
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.len > b.len; });
  run_items(items.size(), [&](size_t i) {
    const Item& it = items[i];
    backward_item(G, dout, qkv, out, lse, cu_seqlens[it.seq], it.len, it.g, scale, dqkv);
  });
}

}  // namespace troupe::cpu
