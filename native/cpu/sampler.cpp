// Token sampling: Gumbel-max over the allowed set, keyed by (seed, call_id, position, j).
//
// For row b with key (call_id, position):
//  - greedy or temperature <= 0: token = argmax logits (lowest index on ties); logp is
//    log_softmax(logits)[token] at temperature 1 over the whole vocabulary.
//  - otherwise, with z = logits * (1/T): allowed = all j; top_k > 0 keeps the top_k largest logits
//    (ties: lower index wins); then top_p < 1 orders the allowed entries by probability under
//    softmax(z) renormalised over the allowed set, descending (ties by index), and keeps the
//    smallest prefix whose cumulative probability >= top_p (at least one entry).
//    token = argmax over allowed j of z_j + g_j, g_j = -log(-log(u_j)),
//    u_j = sample_uniform(seed, call_id, position, j) (ties: lower index);
//    logp = z_token - logsumexp over the allowed set of z.
// A draw is a pure function of its key and its own logits row: no state, nothing shared
// between rows, so it cannot depend on row order, batch size or thread count.
//
// Notes on resolved details:
//  - Ordering "by probability" is done by logit (then index): the same order, without the ties
//    that rounding z = x/T could create between distinct logits.
//  - u_j == 1 would give g_j = +inf (a uniformly random token). philox.h maps 23 random bits to
//    (k + 0.5) / 2^23, which is at most 1 - 2^-24, so it cannot happen; the cap below keeps the
//    bound explicit (an earlier 24-bit mapping rounded up to exactly 1).
//  - The top-p cut sums probabilities in double (each p_j from the vectorised exp, <= 2 ulp), so
//    only a cumulative sum within ~1e-7 of top_p could land differently from a float64 reference.
//  - The Gumbel noise uses vectorised Philox and logs (below); the same code computes g_j on the
//    fast path (all j) and on a truncated set (gathered j), so g_j is one function of (key, j).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/philox.h"
#include "kernels.h"
#include "parallel.h"

namespace troupe::cpu {

namespace detail {  // defined in loss.cpp, so the sampler's probabilities match the loss's
double row_logsumexp(const float* x, int V, float inv_t);
void fast_exp_array(const float* x, float* y, size_t n);
}

namespace {

constexpr int kW = 16;
typedef float f32v __attribute__((vector_size(64)));
typedef int32_t i32v __attribute__((vector_size(64)));
typedef uint32_t u32v __attribute__((vector_size(64)));

constexpr float kInf = std::numeric_limits<float>::infinity();

inline f32v splat(float a) { return f32v{} + a; }
inline f32v loadu(const float* p) {
  f32v v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline f32v load_part(const float* p, int n, float pad) {
  f32v v = splat(pad);
  for (int i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
inline u32v iota_from(uint32_t j0) {
  const u32v lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return lanes + j0;
}

// philox4x32_10(j, position, call_lo, call_hi; seed_lo, seed_hi).v[0] for 16 counters j at once
// (checked against core/philox.h in test_sampler). Philox is most of a draw's cost (~20
// multiplies per entry). With AVX-512 each 32x32->64 product is done on the even and odd 32-bit
// lanes as 64-bit lanes (vpmullq / vpmuludq); without it, 64-bit lane multiplies are emulated
// (measured 10x slower than scalar on AVX2), so the scalar header function is used per lane.
inline u32v philox_v0(u32v c0, uint32_t position, uint64_t call_id, uint64_t seed) {
#if defined(__AVX512F__)
  typedef uint64_t u64x8 __attribute__((vector_size(64)));
  const uint64_t lo32 = 0xffffffffull;
  // hi and lo halves of a * M per 32-bit lane
  auto mul_hilo = [&](u32v a, uint32_t M, u32v& hi, u32v& lo) {
    u64x8 w = (u64x8)a;
    u64x8 pe = (w & lo32) * static_cast<uint64_t>(M);  // even lanes
    u64x8 po = (w >> 32) * static_cast<uint64_t>(M);   // odd lanes
    lo = (u32v)((pe & lo32) | (po << 32));
    hi = (u32v)((pe >> 32) | (po & ~lo32));
  };
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  u32v c1 = u32v{} + position;
  u32v c2 = u32v{} + static_cast<uint32_t>(call_id);
  u32v c3 = u32v{} + static_cast<uint32_t>(call_id >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    u32v hi0, lo0, hi1, lo1;
    mul_hilo(c0, M0, hi0, lo0);
    mul_hilo(c2, M1, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
  return c0;
#else
  u32v out;
  const uint32_t cl = static_cast<uint32_t>(call_id), ch = static_cast<uint32_t>(call_id >> 32);
  const uint32_t sl = static_cast<uint32_t>(seed), sh = static_cast<uint32_t>(seed >> 32);
  for (int l = 0; l < kW; ++l) out[l] = philox4x32_10(c0[l], position, cl, ch, sl, sh).v[0];
  return out;
#endif
}

// log(x) for positive normal x (here u in (0,1) and -log(u) in (6e-8, 17.4]). Cephes logf:
// x = m * 2^e with m in [sqrt(1/2), sqrt(2)), a degree-9 polynomial in f = m - 1 (exact), and
// ln2 split in two. About 1 ulp; test_sampler checks g = -log(-log u) against double.
inline f32v vlog(f32v x) {
  i32v bits = (i32v)x;
  i32v e = ((bits >> 23) & 0xff) - 127;
  f32v m = (f32v)((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  i32v big = m > 1.41421356237f;                        // -1 where true
  m = big ? m * 0.5f : m;
  e = e - big;
  f32v f = m - 1.0f;
  f32v z = f * f;
  f32v y = splat(7.0376836292e-2f);
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  f32v ef = __builtin_convertvector(e, f32v);
  y = y + ef * -2.12194440e-4f;
  y = y - 0.5f * z;
  return (f + y) + ef * 0.693359375f;
}

// Gumbel noise g_j = -log(-log(u_j)) for the 16 vocabulary entries j.
inline f32v gumbel(u32v j, uint64_t seed, uint64_t call_id, int32_t position) {
  u32v bits = philox_v0(j, static_cast<uint32_t>(position), call_id, seed);
  // uint_to_unit_open from philox.h: (float(x >> 9) + 0.5f) * 2^-23, bit for bit (CPU and
  // CUDA must draw the same tokens), at most 1 - 2^-24.
  f32v u = (__builtin_convertvector((i32v)(bits >> 9), f32v) + 0.5f) * (1.0f / 8388608.0f);
  const float below_one = 0.99999994f;  // 1 - 2^-24: a no-op bound that keeps -log(u) > 0
  u = u > below_one ? splat(below_one) : u;
  return -vlog(-vlog(u));
}

// An upper bound on every g the capped u can give: -log(-log(1 - 2^-24)) = 16.636.
constexpr float kGumbelMax = 17.0f;

// True if any lane is set (an OR tree over halves; the compiler keeps it in registers).
inline bool any_lane(i32v m) {
  typedef int32_t i8v __attribute__((vector_size(32)));
  typedef int32_t i4v __attribute__((vector_size(16)));
  i8v a, b;
  std::memcpy(&a, &m, 32);
  std::memcpy(&b, reinterpret_cast<const char*>(&m) + 32, 32);
  a |= b;
  i4v c, d;
  std::memcpy(&c, &a, 16);
  std::memcpy(&d, reinterpret_cast<const char*>(&a) + 16, 16);
  c |= d;
  uint64_t w[2];
  std::memcpy(w, &c, 16);
  return (w[0] | w[1]) != 0;
}

struct Best {
  float v = -kInf;
  int32_t j = -1;
  // Strictly greater wins; equal values go to the lower index.
  void offer(float val, int32_t idx) {
    if (val > v || (val == v && (j < 0 || idx < j))) {
      v = val;
      j = idx;
    }
  }
};

// Argmax of x (no noise) over the whole row.
int32_t argmax_row(const float* x, int V) {
  f32v best = splat(-kInf);
  i32v bidx = i32v{} - 1;
  const int full = V / kW * kW;
  for (int j = 0; j < full; j += kW) {
    f32v v = loadu(x + j);
    i32v upd = v > best;  // strict: a lane keeps its earliest maximum
    best = upd ? v : best;
    bidx = upd ? (i32v)iota_from(static_cast<uint32_t>(j)) : bidx;
  }
  Best b;
  for (int i = 0; i < kW; ++i)
    if (bidx[i] >= 0) b.offer(best[i], bidx[i]);
  for (int j = full; j < V; ++j) b.offer(x[j], j);
  // All -inf or NaN: nothing beats -inf; fall back to the first entry.
  return b.j < 0 ? 0 : b.j;
}

// Argmax over all j of x_j * inv_t + g_j.
// Philox dominates the cost, and most of a trained model's vocabulary cannot win: since every
// g_j <= kGumbelMax, entry j can only reach the best value so far if z_j + kGumbelMax >= it. So
// the block holding argmax z goes first (its best value is a high bar), and a later block whose
// lanes all have z + kGumbelMax below the bar is skipped without drawing its noise. Float
// addition is monotone, so a skipped entry's value is strictly below the bar: the result is
// exactly the argmax over all j, only cheaper (nothing is skipped for flat rows).
int32_t gumbel_argmax_row(const float* x, int V, float inv_t, const SampleParams& p,
                          const SampleRowKey& key) {
  f32v best = splat(-kInf);
  i32v bidx = i32v{} - 1;
  auto load_block = [&](int j0) {
    return j0 + kW <= V ? loadu(x + j0) : load_part(x + j0, V - j0, -kInf);  // tail: -inf
  };
  auto take = [&](f32v z, int j0) {
    u32v jv = iota_from(static_cast<uint32_t>(j0));
    f32v v = z + gumbel(jv, p.seed, key.call_id, key.position);
    // Blocks are not visited in index order, so equal values compare indices explicitly.
    i32v upd = (v > best) | ((v == best) & ((i32v)jv < bidx));
    best = upd ? v : best;
    bidx = upd ? (i32v)jv : bidx;
  };
  const int first = argmax_row(x, V) / kW * kW;
  take(load_block(first) * inv_t, first);
  float bar = best[0];
  for (int i = 1; i < kW; ++i) bar = best[i] > bar ? best[i] : bar;
  for (int j0 = 0; j0 < V; j0 += kW) {
    if (j0 == first) continue;
    f32v z = load_block(j0) * inv_t;
    if (!any_lane(z + kGumbelMax >= bar)) continue;
    take(z, j0);
  }
  Best b;
  for (int i = 0; i < kW; ++i)
    if (bidx[i] >= 0) b.offer(best[i], bidx[i]);
  return b.j < 0 ? 0 : b.j;
}

// Argmax of x_j * inv_t + g_j over a list of indices, using the same vector code as above.
int32_t gumbel_argmax_list(const float* x, const int32_t* idx, size_t n, float inv_t,
                           const SampleParams& p, const SampleRowKey& key) {
  if (n == 0) return 0;  // callers always pass at least one entry
  Best b;
  for (size_t i = 0; i < n; i += kW) {
    u32v jv;
    f32v xv;
    for (int l = 0; l < kW; ++l) {
      size_t k = i + l < n ? i + l : n - 1;  // pad with the last entry (a harmless duplicate)
      jv[l] = static_cast<uint32_t>(idx[k]);
      xv[l] = x[idx[k]];
    }
    f32v v = xv * inv_t + gumbel(jv, p.seed, key.call_id, key.position);
    for (int l = 0; l < kW; ++l) b.offer(v[l], static_cast<int32_t>(jv[l]));
  }
  return b.j < 0 ? idx[0] : b.j;
}

// "a ranks before b": larger logit first, lower index on ties.
struct RankBefore {
  const float* x;
  bool operator()(int32_t a, int32_t b) const { return x[a] > x[b] || (x[a] == x[b] && a < b); }
};

// Monotone map from float to uint32 (a < b as floats <=> key(a) < key(b)), with -0 folded into
// +0 so equal logits get equal keys, and NaN ranked as -inf. Never 0 (key(-inf) = 0x007fffff).
inline uint32_t order_key(float f) {
  if (std::isnan(f)) f = -kInf;
  if (f == 0.0f) f = 0.0f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The top k indices by RankBefore (unordered). k < V.
void top_k_indices(const float* x, int V, int k, std::vector<int32_t>& out,
                   std::vector<uint32_t>& keys) {
  RankBefore before{x};
  out.clear();
  if (static_cast<int64_t>(k) * 8 > V) {
    // Large k: bisect on the key for the k-th largest (the largest t with count(key >= t) >= k).
    // Each count is a branch-free vector pass; nth_element mispredicts its way through ~10x
    // slower at V = 320. Then one pass in index order takes every entry above the k-th and the
    // first entries equal to it, so lower indices win the tie.
    const int nb = (V + kW - 1) / kW;
    keys.assign(static_cast<size_t>(nb) * kW, 0u);  // padding 0 is below every real key
    for (int j = 0; j < V; ++j) keys[j] = order_key(x[j]);
    auto count_ge = [&](uint32_t t) {
      i32v cnt = i32v{};
      for (int b = 0; b < nb; ++b) {
        u32v kv;
        std::memcpy(&kv, &keys[static_cast<size_t>(b) * kW], sizeof kv);
        cnt -= (i32v)(kv >= t);  // true lanes are -1
      }
      int64_t c = 0;
      for (int l = 0; l < kW; ++l) c += cnt[l];
      return c;
    };
    uint64_t lo = 1, hi = uint64_t{1} << 32;  // count(>= lo) >= k; count(>= hi) < k
    while (hi - lo > 1) {
      const uint64_t mid = lo + (hi - lo) / 2;
      (count_ge(static_cast<uint32_t>(mid)) >= k ? lo : hi) = mid;
    }
    const uint32_t kth = static_cast<uint32_t>(lo);
    int ties = k;
    for (int j = 0; j < V; ++j) ties -= keys[j] > kth;
    for (int j = 0; j < V; ++j) {
      if (keys[j] > kth) {
        out.push_back(j);
      } else if (keys[j] == kth && ties > 0) {
        out.push_back(j);
        --ties;
      }
    }
    return;
  }
  // Small k: a heap of the best k so far whose top is the worst of them. Scanning in index
  // order, a later entry only gets in with a strictly larger logit than that worst one, and
  // whole blocks below the threshold are skipped with one vector compare.
  out.resize(static_cast<size_t>(k));
  for (int j = 0; j < k; ++j) out[j] = j;
  std::make_heap(out.begin(), out.end(), before);
  float thr = x[out.front()];
  auto consider = [&](int j) {
    if (x[j] > thr) {
      std::pop_heap(out.begin(), out.end(), before);
      out.back() = j;
      std::push_heap(out.begin(), out.end(), before);
      thr = x[out.front()];
    }
  };
  int j = k;
  for (; j < V && j % kW; ++j) consider(j);
  for (; j + kW <= V; j += kW)
    if (any_lane(loadu(x + j) > thr))
      for (int l = 0; l < kW; ++l) consider(j + l);
  for (; j < V; ++j) consider(j);
}

struct Scratch {
  std::vector<int32_t> allowed, cand, set, next, kept;
  std::vector<uint32_t> keys;
  std::vector<float> prob;
};

struct Draw {
  int32_t token;
  double logp;
};

// Top-p over a candidate list: keeps, in sc.kept, the entries of the smallest prefix (by
// RankBefore) of cand whose probability mass reaches top_p, and returns that mass. Up to 64
// candidates are simply sorted. Beyond that, instead of sorting (~8 ms for a flat 152K-entry
// row), a radix select on the 32-bit order key,
// one byte at a time from the top: a histogram of probability mass per byte value finds the byte
// where the running mass (from the largest key down) crosses top_p; every entry in a higher
// bucket is kept, and the search continues inside the crossing bucket. After four bytes the
// remaining entries all share the key of the crossing entry (equal logits); they are taken in
// index order until the mass reaches top_p. Masses are summed in double.
double nucleus(const float* x, const float* prob_of_cand, double top_p, Scratch& sc) {
  const std::vector<int32_t>& cand = sc.cand;
  const size_t n = cand.size();
  if (n <= 64) {
    // A few candidates (the usual case for a trained model): clearing 4 x 256 histogram bins
    // per byte would cost more than sorting them outright.
    sc.set.resize(n);
    for (size_t i = 0; i < n; ++i) sc.set[i] = static_cast<int32_t>(i);
    RankBefore before{x};
    std::sort(sc.set.begin(), sc.set.end(),
              [&](int32_t a, int32_t b) { return before(cand[a], cand[b]); });
    sc.kept.clear();
    double cum = 0.0;
    for (int32_t i : sc.set) {
      sc.kept.push_back(cand[i]);
      cum += prob_of_cand[i];
      if (cum >= top_p) break;
    }
    return cum;
  }
  sc.keys.resize(n);
  for (size_t i = 0; i < n; ++i) sc.keys[i] = order_key(x[cand[i]]);
  // Compaction below is branch-free (write, then advance by the condition): the conditions are
  // data-dependent coin flips that a branch predictor cannot learn.
  sc.kept.resize(n);
  sc.set.resize(n);
  sc.next.resize(n);
  size_t n_kept = 0, n_set = n;
  for (size_t i = 0; i < n; ++i) sc.set[i] = static_cast<int32_t>(i);
  double above = 0.0;  // mass of everything kept so far (keys above the current bucket)
  for (int shift = 24; shift >= 0; shift -= 8) {
    // Four interleaved histograms, so runs of one byte value do not serialise on one counter.
    double hist[4][256] = {};
    for (size_t k = 0; k < n_set; ++k) {
      const int32_t i = sc.set[k];
      hist[k & 3][(sc.keys[i] >> shift) & 255u] += prob_of_cand[i];
    }
    int chosen = -1;
    for (int b = 255; b >= 0; --b) {
      const double h = (hist[0][b] + hist[1][b]) + (hist[2][b] + hist[3][b]);
      if (above + h >= top_p) {
        chosen = b;
        break;
      }
      above += h;
    }
    if (chosen < 0) {  // the whole set falls short of top_p (only by rounding): keep it all
      for (size_t k = 0; k < n_set; ++k) sc.kept[n_kept++] = cand[sc.set[k]];
      sc.kept.resize(n_kept);
      return above;
    }
    size_t n_next = 0;
    for (size_t k = 0; k < n_set; ++k) {
      const int32_t i = sc.set[k];
      const int d = static_cast<int>((sc.keys[i] >> shift) & 255u);
      sc.kept[n_kept] = cand[i];
      n_kept += d > chosen;
      sc.next[n_next] = i;
      n_next += d == chosen;
    }
    sc.set.swap(sc.next);
    n_set = n_next;
  }
  // Equal logits at the cut: lower vocabulary index first.
  std::sort(sc.set.begin(), sc.set.begin() + n_set,
            [&](int32_t a, int32_t b) { return cand[a] < cand[b]; });
  double cum = above;
  for (size_t k = 0; k < n_set; ++k) {
    sc.kept[n_kept++] = cand[sc.set[k]];
    cum += prob_of_cand[sc.set[k]];
    if (cum >= top_p) break;
  }
  sc.kept.resize(n_kept);
  return cum;
}

// The general path (top-k and/or top-p).
Draw sample_truncated(const float* x, int V, float inv_t, const SampleParams& p,
                      const SampleRowKey& key, Scratch& sc) {
  const bool use_k = p.top_k > 0 && p.top_k < V;
  const bool use_p = p.top_p < 1.0f;
  // Allowed set after top-k (empty list = all of [0, V)), and its logsumexp of z in double.
  double lse;
  if (use_k) {
    top_k_indices(x, V, p.top_k, sc.allowed, sc.keys);
    double zmax = -std::numeric_limits<double>::infinity();
    for (int32_t j : sc.allowed) zmax = std::max(zmax, static_cast<double>(x[j] * inv_t));
    double s = 0.0;
    for (int32_t j : sc.allowed) s += std::exp(static_cast<double>(x[j] * inv_t) - zmax);
    lse = zmax + std::log(s);
  } else {
    sc.allowed.clear();
    lse = detail::row_logsumexp(x, V, inv_t);
  }
  if (!use_p) {
    int32_t tok = gumbel_argmax_list(x, sc.allowed.data(), sc.allowed.size(), inv_t, p, key);
    return {tok, static_cast<double>(x[tok] * inv_t) - lse};
  }

  // Nucleus. Only entries with p_j >= tau can be in the kept prefix, unless all of those
  // together hold less than top_p; so candidates are the entries with p_j >= 1e-3, then 1e-7,
  // then all. For a peaked row the first list is a handful of entries and nothing else is
  // touched again.
  const size_t n_allowed = use_k ? sc.allowed.size() : static_cast<size_t>(V);
  const double kLogTaus[3] = {std::log(1e-3), std::log(1e-7),
                              -std::numeric_limits<double>::infinity()};
  double mass = 0.0;
  for (int round = 0; round < 3; ++round) {
    const bool last = round == 2;
    const float thr = static_cast<float>(lse + kLogTaus[round]);  // candidate iff z_j >= thr
    sc.cand.resize(n_allowed);  // branch-free compaction, as in nucleus()
    size_t nc = 0;
    if (use_k) {
      for (int32_t j : sc.allowed) {
        sc.cand[nc] = j;
        nc += last || x[j] * inv_t >= thr;
      }
    } else {
      for (int j = 0; j < V; ++j) {
        sc.cand[nc] = j;
        nc += last || x[j] * inv_t >= thr;
      }
    }
    sc.cand.resize(nc);
    // p_j = exp(z_j - lse) with the vectorised exp (<= 2 ulp); the masses add up in double.
    const size_t n = sc.cand.size();
    sc.prob.resize(n);
    for (size_t i = 0; i < n; ++i)
      sc.prob[i] = static_cast<float>(static_cast<double>(x[sc.cand[i]] * inv_t) - lse);
    detail::fast_exp_array(sc.prob.data(), sc.prob.data(), n);
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += sc.prob[i];
    if (total < p.top_p && !last && n < n_allowed) continue;
    mass = nucleus(x, sc.prob.data(), p.top_p, sc);
    break;
  }
  int32_t tok = gumbel_argmax_list(x, sc.kept.data(), sc.kept.size(), inv_t, p, key);
  return {tok, static_cast<double>(x[tok] * inv_t) - (lse + std::log(mass))};
}

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("sample: " + what);
}

}  // namespace

namespace detail {
// Test hook: the Gumbel noise g_j the sampler adds for entries idx[0..n) of the draw at `key`.
void gumbel_noise(uint64_t seed, uint64_t call_id, int32_t position, const uint32_t* idx,
                  size_t n, float* out) {
  for (size_t i = 0; i < n; i += kW) {
    u32v jv;
    for (int l = 0; l < kW; ++l) jv[l] = idx[i + l < n ? i + l : n - 1];
    f32v g = gumbel(jv, seed, call_id, position);
    for (int l = 0; l < kW && i + l < n; ++l) out[i + l] = g[l];
  }
}
}  // namespace detail

void sample(const float* logits, int B, int V, const SampleParams& p, const SampleRowKey* keys,
            int32_t* tokens_out, float* logp_out) {
  if (B < 0) bad("B = " + std::to_string(B) + " is negative");
  if (V <= 0) bad("V = " + std::to_string(V) + " must be positive");
  if (std::isnan(p.temperature) || std::isinf(p.temperature))
    bad("p.temperature = " + std::to_string(p.temperature) + " must be finite");
  if (p.top_k < 0) bad("p.top_k = " + std::to_string(p.top_k) + " must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    bad("p.top_p = " + std::to_string(p.top_p) + " must be in (0, 1]");
  if (B == 0) return;
  if (!logits) bad("logits is null");
  if (!keys) bad("keys is null");
  if (!tokens_out) bad("tokens_out is null");
  if (!logp_out) bad("logp_out is null");

  const bool greedy = p.greedy || p.temperature <= 0.0f;
  const float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
  const bool fast = !greedy && (p.top_k == 0 || p.top_k >= V) && p.top_p >= 1.0f;
  // Rows per thread: a row costs ~V Philox draws, so ~16K entries per chunk pays for a helper.
  const int grain = std::max(1, 16384 / V);
  const int max_threads = (B + grain - 1) / grain;
  // One scratch per thread, allocated here so a worker thread never has to throw bad_alloc.
  std::vector<Scratch> scratch(greedy || fast ? 0 : std::min(num_threads(), max_threads));
  for (Scratch& s : scratch) {
    for (auto* v : {&s.allowed, &s.cand, &s.set, &s.next, &s.kept}) v->reserve(static_cast<size_t>(V));
    s.keys.reserve(static_cast<size_t>(V) + kW);
    s.prob.reserve(static_cast<size_t>(V));
  }
  run_on_threads(
      [&](int tid, int nt) {
        const int per = (B + nt - 1) / nt;
        const int b0 = std::min(B, tid * per), b1 = std::min(B, (tid + 1) * per);
        for (int b = b0; b < b1; ++b) {
          const float* x = logits + static_cast<size_t>(b) * static_cast<size_t>(V);
          Draw d;
          if (greedy) {
            d.token = argmax_row(x, V);
            d.logp = static_cast<double>(x[d.token]) - detail::row_logsumexp(x, V, 1.0f);
          } else if (fast) {
            d.token = gumbel_argmax_row(x, V, inv_t, p, keys[b]);
            d.logp = static_cast<double>(x[d.token] * inv_t) - detail::row_logsumexp(x, V, inv_t);
          } else {
            d = sample_truncated(x, V, inv_t, p, keys[b], scratch[tid]);
          }
          tokens_out[b] = d.token;
          logp_out[b] = static_cast<float>(d.logp);
        }
      },
      max_threads);
}

}  // namespace troupe::cpu
