// Register-tiled building blocks of the CPU flash attention (attention.cpp). A tile is kR query
// rows x kBk keys. Every routine accumulates in a fixed order (over d, over keys j, over rows r)
// that does not depend on where the tile sits or which thread runs it.
//
// Packed layouts (attention.cpp builds them per work item):
//   "transposed" key block:  bt[d * kBk + jj]  (hd x kBk), keys past the sequence are zero;
//                            score rows then vectorise over keys.
//   "row" buffers:           x[i * ld + d]     (ld = hd rounded up to 16, pad columns zero);
//                            output rows then vectorise over d.
#pragma once
#include <cstddef>
#include <type_traits>

#include "vec16.h"

namespace troupe::cpu::attn {

using vec::f16v;

constexpr int kBk = 64;                  // keys per tile
constexpr int kKV = kBk / vec::kLanes;   // vectors per score row
constexpr int kR = 4;                    // query rows per register tile
static_assert(kKV == 4, "score_tile dispatches on 1..4 key vectors");
// Per tile: kR*kKV = 16 score accumulators; each d step loads kKV key vectors and kR broadcast
// query values for 16 FMAs, which keeps loads within two per cycle with the FMA pipes busy.

// s[r][c] = sum_{d < hd} a[r*lda + d] * bt[d*kBk + 16c + lane] for the first NC key vectors.
template <int NC>
inline void score_tile_n(const float* a, size_t lda, const float* bt, int hd, f16v s[kR][kKV]) {
  f16v acc[kR][NC];
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) acc[r][c] = f16v{};
  for (int d = 0; d < hd; ++d) {
    const float* b = bt + static_cast<size_t>(d) * kBk;
    f16v bv[NC];
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) bv[c] = vec::in_register(vec::load(b + c * vec::kLanes));
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r) {
      const f16v ar = vec::splat(a[r * lda + d]);
#pragma GCC unroll 4
      for (int c = 0; c < NC; ++c) acc[r][c] += ar * bv[c];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NC; ++c) s[r][c] = acc[r][c];
}

// The score tile over the first nc (1..kKV) key vectors; the caller treats the others as
// masked. On a diagonal tile the keys past its last row are skipped this way.
inline void score_tile(const float* a, size_t lda, const float* bt, int hd, int nc,
                       f16v s[kR][kKV]) {
  switch (nc) {
    case 1: score_tile_n<1>(a, lda, bt, hd, s); break;
    case 2: score_tile_n<2>(a, lda, bt, hd, s); break;
    case 3: score_tile_n<3>(a, lda, bt, hd, s); break;
    default: score_tile_n<kKV>(a, lda, bt, hd, s); break;
  }
}

// out[r][v] = out[r][v] * alpha[r] + sum_{j < nk} p[r*kBk + j] * src[j*lds + 16v]
// for r < kR and the NV vectors starting at the given column (O += P V, dQ += dS K).
template <int NV>
inline void rows_accum(const float* p, const float* src, size_t lds, int nk, const float* alpha,
                       float* out, size_t ldo) {
  f16v acc[kR][NV];
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = vec::load(out + r * ldo + v * vec::kLanes) * alpha[r];
  for (int j = 0; j < nk; ++j) {
    const float* row = src + static_cast<size_t>(j) * lds;
    f16v x[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) x[v] = vec::in_register(vec::load(row + v * vec::kLanes));
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r) {
      const f16v pr = vec::splat(p[r * kBk + j]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += pr * x[v];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) vec::store(out + r * ldo + v * vec::kLanes, acc[r][v]);
}

// acc[j][v] += sum_{r < kR} p[r*kBk + j] * src[r*lds + 16v]   for j < nk
// (dV += P^T dO, dK += dS^T Q): the kR source rows stay in registers while keys stream.
template <int NV>
inline void keys_accum(const float* p, int nk, const float* src, size_t lds, float* acc,
                       size_t lda) {
  f16v x[kR][NV];
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      x[r][v] = vec::in_register(vec::load(src + r * lds + v * vec::kLanes));
  for (int j = 0; j < nk; ++j) {
    float* a = acc + static_cast<size_t>(j) * lda;
    f16v y[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) y[v] = vec::load(a + v * vec::kLanes);
#pragma GCC unroll 4
    for (int r = 0; r < kR; ++r) {
      const f16v pr = vec::splat(p[r * kBk + j]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) y[v] += pr * x[r][v];
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) vec::store(a + v * vec::kLanes, y[v]);
  }
}

// Splits hd_p (a multiple of 16) into column chunks of at most 4 vectors, so the accumulators
// of one chunk fit the register file for any head dim: f(column offset, integral_constant NV).
template <typename F>
inline void for_column_chunks(int hd_p, F&& f) {
  for (int c0 = 0; c0 < hd_p; c0 += 4 * vec::kLanes) {
    switch ((hd_p - c0) / vec::kLanes) {
      case 1: f(c0, std::integral_constant<int, 1>{}); break;
      case 2: f(c0, std::integral_constant<int, 2>{}); break;
      case 3: f(c0, std::integral_constant<int, 3>{}); break;
      default: f(c0, std::integral_constant<int, 4>{}); break;
    }
  }
}

// rows_accum / keys_accum over all hd_p columns; rows of src, out and acc have stride hd_p.
inline void rows_accum_all(const float* p, const float* src, int nk, const float* alpha,
                           float* out, int hd_p) {
  for_column_chunks(hd_p, [&](int c0, auto nv) {
    rows_accum<decltype(nv)::value>(p, src + c0, hd_p, nk, alpha, out + c0, hd_p);
  });
}

inline void keys_accum_all(const float* p, int nk, const float* src, float* acc, int hd_p) {
  for_column_chunks(hd_p, [&](int c0, auto nv) {
    keys_accum<decltype(nv)::value>(p, nk, src + c0, hd_p, acc + c0, hd_p);
  });
}

}  // namespace troupe::cpu::attn
