// GEMM building blocks for one instruction set, selected at compile time (the build uses
// -march=native): the register-blocked microkernel and the packing routines that feed it.
// Included only by gemm.cpp.
//
// Packed layouts (shared by every ISA variant):
//   A micro-panel: op(A)[i0:i0+mr, p0:p0+kc] stored k-major, a[k*MR + i] (i < mr; rows >= mr
//                  are never read).
//   B micro-panel: op(B)[p0:p0+kc, j0:j0+NR] stored k-major, b[k*NR + j]; columns past the
//                  matrix edge are zero.
//
// The determinism rule lives here. Every variant computes each element of C the same way:
//   acc = 0; for k in the K block, in order: acc = fma(a[i][k], b[k][j], acc)   (one rounding)
//   c   = fma(alpha, acc, beta == 0 ? 0 : beta * c)
// (K blocks are fixed in gemm.cpp; the scalar fallback without hardware FMA rounds the multiply
// and the add separately, the same way for every element.)
// Vector lanes never mix and edge tiles (mr < MR, fewer than NR valid columns) run the same
// per-element sequence, only with fewer rows or masked stores, so C[i][j] depends on row i of
// op(A), column j of op(B), alpha, beta and old C[i][j] only: not on M, N, the tile it fell in
// or the thread that computed it.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace troupe::cpu::gemm_detail {

using Index = std::int64_t;

#if defined(__AVX512F__)
// ---------------------------------------------------------------------------------------------
// AVX-512: 14 x 32 tile. 28 zmm accumulators + 2 for the B row + 1 for the broadcast A value =
// 31 of 32 registers (15 x 32 would need 33). Per k: 2 vector loads + 14 broadcasts feed 28
// FMAs, well inside Zen 4's load bandwidth, while its FMA pipes (one 512-bit FMA per cycle,
// latency 4) are kept busy by 28 independent chains. NR = 32 divides every hidden/MLP/vocab
// width of the presets, so N padding is rare; MR = 14 wastes nothing on partial row tiles
// because each row count 1..14 has its own instantiation.
constexpr const char* kIsaName = "avx512";
constexpr int MR = 14;
constexpr int NR = 32;
constexpr int VL = 16;  // floats per vector

inline __mmask16 lane_mask(int n) {  // first n lanes (n clamped to [0, 16])
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

// R rows (1..MR) x V vectors (1..2) of C; n_valid columns of the tile are stored.
template <int R, int V>
void microkernel(int kc, const float* __restrict a, const float* __restrict b, float* c, Index ldc,
                 float alpha, float beta, int n_valid) {
  __m512 acc[R][V];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  // Start pulling the C tile toward L1 now; it is read only after the k loop.
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    if (V > 1) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int k = 0; k < kc; ++k) {
    __m512 bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) bv[v] = _mm512_load_ps(b + v * VL);
    // B streams from L2: ask for the row 8 steps ahead (both cache lines) to hide its latency.
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR + 16), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  __mmask16 mask[V];
#pragma GCC unroll 2
  for (int v = 0; v < V; ++v) mask[v] = lane_mask(n_valid - v * VL);
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      __m512 t = _mm512_setzero_ps();
      if (beta != 0.0f) t = _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mask[v], ci + v * VL));
      _mm512_mask_storeu_ps(ci + v * VL, mask[v], _mm512_fmadd_ps(va, acc[i][v], t));
    }
  }
}

// In-register transpose of a 16 x 16 block: r[i] holds row i on entry, column i on exit.
// (The maskz forms with a full mask compile to the plain shuffles; the plain intrinsics trip
// GCC 12's -Wmaybe-uninitialized through _mm512_undefined_ps.)
inline void transpose16(__m512 r[16]) {
  constexpr __mmask16 all16 = 0xFFFF;
  constexpr __mmask8 all8 = 0xFF;
  auto lo_pd = [](__m512 x, __m512 y) {
    return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, _mm512_castps_pd(x), _mm512_castps_pd(y)));
  };
  auto hi_pd = [](__m512 x, __m512 y) {
    return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, _mm512_castps_pd(x), _mm512_castps_pd(y)));
  };
  __m512 t[16], s[16];
  for (int i = 0; i < 8; ++i) {  // interleave 32-bit elements of row pairs
    t[2 * i] = _mm512_maskz_unpacklo_ps(all16, r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(all16, r[2 * i], r[2 * i + 1]);
  }
  for (int q = 0; q < 16; q += 4) {  // interleave 64-bit pairs of row quads
    s[q + 0] = lo_pd(t[q], t[q + 2]);
    s[q + 1] = hi_pd(t[q], t[q + 2]);
    s[q + 2] = lo_pd(t[q + 1], t[q + 3]);
    s[q + 3] = hi_pd(t[q + 1], t[q + 3]);
  }
  // Now s[4g + j] holds, in each 128-bit lane L, rows 4g..4g+3 of column 4L + j. Move whole
  // 128-bit lanes: first pairing quads (0,1) and (2,3), then the two halves.
  for (int g = 0; g < 2; ++g)
    for (int j = 0; j < 4; ++j) {
      const __m512 x = s[8 * g + j], y = s[8 * g + 4 + j];
      t[8 * g + j] = _mm512_maskz_shuffle_f32x4(all16, x, y, 0x88);      // lanes 0,2 | 0,2
      t[8 * g + 4 + j] = _mm512_maskz_shuffle_f32x4(all16, x, y, 0xDD);  // lanes 1,3 | 1,3
    }
  for (int j = 0; j < 8; ++j) {
    const __m512 x = t[j], y = t[8 + j];
    const int col = (j & 3) + (j < 4 ? 0 : 4);  // t[j] carries columns col and col + 8
    r[col] = _mm512_maskz_shuffle_f32x4(all16, x, y, 0x88);
    r[col + 8] = _mm512_maskz_shuffle_f32x4(all16, x, y, 0xDD);
  }
}

// Loads src[row*ld + 0..cols) for rows [0, rows) into r[0..16), zero elsewhere.
inline void load_block16(const float* src, Index ld, int rows, int cols, __m512 r[16]) {
  const __mmask16 m = lane_mask(cols);
  for (int i = 0; i < 16; ++i)
    r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + i * ld) : _mm512_setzero_ps();
}

// A micro-panel from A stored [M, K] (rows of op(A) contiguous in k): transpose 16 k at a time.
inline void pack_a_rows(const float* a, Index lda, int mr, int kc, float* dst) {
  const __mmask16 row_mask = lane_mask(MR);
  __m512 r[16];
  for (int k0 = 0; k0 < kc; k0 += 16) {
    const int kn = kc - k0 < 16 ? kc - k0 : 16;
    load_block16(a + k0, lda, mr, kn, r);
    transpose16(r);
    for (int k = 0; k < kn; ++k) _mm512_mask_storeu_ps(dst + (k0 + k) * MR, row_mask, r[k]);
  }
}

// A micro-panel from A stored [K, M] (trans_a: a k-slice of the panel is contiguous).
inline void pack_a_cols(const float* a, Index lda, int mr, int kc, float* dst) {
  const __mmask16 m = lane_mask(mr), row_mask = lane_mask(MR);
  for (int k = 0; k < kc; ++k)
    _mm512_mask_storeu_ps(dst + k * MR, row_mask, _mm512_maskz_loadu_ps(m, a + k * lda));
}

// B micro-panel from B stored [K, N]: copy NR columns per k, zero past the edge.
inline void pack_b_rows(const float* b, Index ldb, int nr, int kc, float* dst) {
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  for (int k = 0; k < kc; ++k) {
    _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, b + k * ldb));
    _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, b + k * ldb + 16));
  }
}

// B micro-panel from B stored [N, K] (trans_b, the forward linear layers): each 16-column half
// is a 16 x 16 transpose per 16 k.
inline void pack_b_cols(const float* b, Index ldb, int nr, int kc, float* dst) {
  __m512 r[16];
  for (int h = 0; h < 2; ++h) {
    const int rows = nr - 16 * h;
    if (rows <= 0) {  // a right half entirely past the edge: zeros, no transposes
      for (int k = 0; k < kc; ++k) _mm512_store_ps(dst + k * NR + 16 * h, _mm512_setzero_ps());
      continue;
    }
    for (int k0 = 0; k0 < kc; k0 += 16) {
      const int kn = kc - k0 < 16 ? kc - k0 : 16;
      load_block16(b + 16 * h * ldb + k0, ldb, rows, kn, r);
      transpose16(r);
      for (int k = 0; k < kn; ++k) _mm512_store_ps(dst + (k0 + k) * NR + 16 * h, r[k]);
    }
  }
}

#elif defined(__AVX2__) && defined(__FMA__)
// ---------------------------------------------------------------------------------------------
// AVX2: 6 x 16 tile. 12 ymm accumulators + 2 for the B row + 1 broadcast = 15 of 16 registers.
constexpr const char* kIsaName = "avx2";
constexpr int MR = 6;
constexpr int NR = 16;
constexpr int VL = 8;

inline __m256i lane_mask8(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

template <int R, int V>
void microkernel(int kc, const float* __restrict a, const float* __restrict b, float* c, Index ldc,
                 float alpha, float beta, int n_valid) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int k = 0; k < kc; ++k) {
    __m256 bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) bv[v] = _mm256_load_ps(b + v * VL);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  __m256i mask[V];
#pragma GCC unroll 2
  for (int v = 0; v < V; ++v) mask[v] = lane_mask8(n_valid - v * VL);
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      __m256 t = _mm256_setzero_ps();
      if (beta != 0.0f) t = _mm256_mul_ps(vb, _mm256_maskload_ps(ci + v * VL, mask[v]));
      _mm256_maskstore_ps(ci + v * VL, mask[v], _mm256_fmadd_ps(va, acc[i][v], t));
    }
  }
}
#define TROUPE_GEMM_GENERIC_PACK 1

#else
// ---------------------------------------------------------------------------------------------
// Portable fallback: 4 x 8 tile in scalar code. With hardware FMA, std::fma keeps the single
// rounding per step of the vector variants; without it std::fma is a slow software routine, so
// the step is a plain multiply-add (two roundings). Either way every element follows one rule.
constexpr const char* kIsaName = "scalar";
inline float madd(float a, float b, float c) {
#if defined(FP_FAST_FMAF)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}
constexpr int MR = 4;
constexpr int NR = 8;
constexpr int VL = NR;  // one "vector" per tile row: V is always 1

template <int R, int V>
void microkernel(int kc, const float* __restrict a, const float* __restrict b, float* c, Index ldc,
                 float alpha, float beta, int n_valid) {
  float acc[R][NR] = {};
  for (int k = 0; k < kc; ++k) {
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = madd(a[i], b[j], acc[i][j]);
    a += MR;
    b += NR;
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < n_valid; ++j) {
      float& cij = c[i * ldc + j];
      cij = madd(alpha, acc[i][j], beta != 0.0f ? beta * cij : 0.0f);
    }
}
#define TROUPE_GEMM_GENERIC_PACK 1
#endif

#if defined(TROUPE_GEMM_GENERIC_PACK)
// Plain-loop packing for the AVX2 and scalar variants.
inline void pack_a_rows(const float* a, Index lda, int mr, int kc, float* dst) {
  for (int k = 0; k < kc; ++k)
    for (int i = 0; i < mr; ++i) dst[k * MR + i] = a[i * lda + k];
}
inline void pack_a_cols(const float* a, Index lda, int mr, int kc, float* dst) {
  for (int k = 0; k < kc; ++k)
    for (int i = 0; i < mr; ++i) dst[k * MR + i] = a[k * lda + i];
}
inline void pack_b_rows(const float* b, Index ldb, int nr, int kc, float* dst) {
  for (int k = 0; k < kc; ++k)
    for (int j = 0; j < NR; ++j) dst[k * NR + j] = j < nr ? b[k * ldb + j] : 0.0f;
}
inline void pack_b_cols(const float* b, Index ldb, int nr, int kc, float* dst) {
  for (int k = 0; k < kc; ++k)
    for (int j = 0; j < NR; ++j) dst[k * NR + j] = j < nr ? b[j * ldb + k] : 0.0f;
}
#undef TROUPE_GEMM_GENERIC_PACK
#endif

}  // namespace troupe::cpu::gemm_detail
