// 16-float SIMD vectors through GCC/Clang vector extensions, for the layer and attention kernels.
// One source compiles to AVX-512 under -march=native and to pairs of AVX2 (or quads of SSE)
// registers elsewhere, so those kernels need neither intrinsics nor an #ifdef per instruction
// set. Every helper here is lane-wise or reduces in a fixed order, so a result never depends on
// which thread computed it. (Without AVX-512, GCC prints a one-line -Wpsabi note per file about
// passing 64-byte vectors by value; these vectors never cross a library boundary, so it is moot
// and -Wno-psabi silences it.)
#pragma once
#include <cstdint>
#include <cstring>

namespace troupe::cpu::vec {

typedef float f16v __attribute__((vector_size(64)));
typedef int32_t i16v __attribute__((vector_size(64)));
typedef float f8v __attribute__((vector_size(32)));
typedef float f4v __attribute__((vector_size(16)));
typedef double d8v __attribute__((vector_size(64)));
constexpr int kLanes = 16;

// memcpy keeps loads and stores free of alignment and aliasing assumptions; it compiles to one
// unaligned vector move.
inline f16v load(const float* p) {
  f16v v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, f16v v) { std::memcpy(p, &v, sizeof v); }
// First n (< 16) lanes from p, the rest zero; and the matching store. For row tails only.
inline f16v load_partial(const float* p, int n) {
  f16v v = {};
  std::memcpy(&v, p, sizeof(float) * static_cast<size_t>(n));
  return v;
}
inline void store_partial(float* p, f16v v, int n) {
  std::memcpy(p, &v, sizeof(float) * static_cast<size_t>(n));
}
// Spelled out lane by lane: `f16v{} + s` would cost a real add (x + 0 is not x for x = -0).
inline f16v splat(float s) {
  return f16v{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
}
inline f16v vmax(f16v a, f16v b) { return a > b ? a : b; }
inline f16v iota() { return f16v{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; }

// Pins v in a register: the compiler may no longer re-read it from memory as an operand of each
// FMA that uses it. In register-tiled loops this turns R loads of a vector into one.
inline f16v in_register(f16v v) {
#if defined(__AVX512F__) && defined(__GNUC__)
  asm("" : "+v"(v));
#endif
  return v;
}

// __builtin_shufflevector (GCC >= 12, Clang) stays in registers. Without it the halves below
// fall back to memcpy (correct everywhere, through the stack) and the kernels built on
// hsum16x16 fall back to their generic paths.
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define TROUPE_VEC_SHUFFLE 1
#else
#define TROUPE_VEC_SHUFFLE 0
#endif

// Halves of a vector.
#if TROUPE_VEC_SHUFFLE
inline f8v low_half(f16v v) {
  return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
}
inline f8v high_half(f16v v) {
  return __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
}
inline f4v low_half(f8v v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3); }
inline f4v high_half(f8v v) { return __builtin_shufflevector(v, v, 4, 5, 6, 7); }
#else
template <typename Half, typename Full>
inline Half half_at(const Full& v, size_t index) {
  Half h;
  std::memcpy(&h, reinterpret_cast<const char*>(&v) + index * sizeof h, sizeof h);
  return h;
}
inline f8v low_half(f16v v) { return half_at<f8v>(v, 0); }
inline f8v high_half(f16v v) { return half_at<f8v>(v, 1); }
inline f4v low_half(f8v v) { return half_at<f4v>(v, 0); }
inline f4v high_half(f8v v) { return half_at<f4v>(v, 1); }
#endif

// Horizontal sum and max as a fixed halving tree.
inline float hsum(f16v v) {
  const f8v s8 = low_half(v) + high_half(v);
  const f4v s4 = low_half(s8) + high_half(s8);
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}
// Lane j of the result is the sum of the 16 lanes of s[j]: sixteen horizontal sums in 15
// combine steps (two shuffles and an add each) instead of sixteen reduction trees. Each step adds
// lane i of a vector to lane i + 8 (then + 4, + 2, + 1) while packing two vectors into one, so
// the order of the additions is fixed.
#if TROUPE_VEC_SHUFFLE
inline f16v hsum16x16(const f16v* s) {
  f16v c[8], d[4], e[2];
  for (int i = 0; i < 8; ++i)
    c[i] = __builtin_shufflevector(s[2 * i], s[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19,
                                   20, 21, 22, 23) +
           __builtin_shufflevector(s[2 * i], s[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25,
                                   26, 27, 28, 29, 30, 31);
  for (int i = 0; i < 4; ++i)
    d[i] = __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18,
                                   19, 24, 25, 26, 27) +
           __builtin_shufflevector(c[2 * i], c[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22,
                                   23, 28, 29, 30, 31);
  for (int i = 0; i < 2; ++i)
    e[i] = __builtin_shufflevector(d[2 * i], d[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20,
                                   21, 24, 25, 28, 29) +
           __builtin_shufflevector(d[2 * i], d[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22,
                                   23, 26, 27, 30, 31);
  return __builtin_shufflevector(e[0], e[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                 28, 30) +
         __builtin_shufflevector(e[0], e[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                 29, 31);
}
#endif
inline float hmax(f16v v) {
  const f8v a = low_half(v), b = high_half(v);
  const f8v m8 = a > b ? a : b;
  const f4v c = low_half(m8), d = high_half(m8);
  const f4v m4 = c > d ? c : d;
  const float x = m4[0] > m4[2] ? m4[0] : m4[2], y = m4[1] > m4[3] ? m4[1] : m4[3];
  return x > y ? x : y;
}

// exp(x) lane-wise, Cephes' single-precision algorithm (about 1 ulp): x = n*ln2 + r with
// |r| <= ln2/2, exp(r) by a degree-7 polynomial, 2^n built in the exponent bits. libm's expf does
// not vectorise without -ffast-math, and the exponentials of softmax and SiLU would otherwise
// dominate those kernels. Inputs below -87.3 (including -inf, used for masked scores) give
// exactly 0; inputs above 88 are clamped (exp(88) ~ 1.7e38 stays finite, so 2^n never reaches
// the infinity exponent).
inline f16v vexp(f16v x) {
  const f16v lo = splat(-87.33654475f), hi = splat(88.0f);
  const i16v underflow = x < lo;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  // Round x*log2(e) to the nearest integer by adding and removing 1.5*2^23 (exact for
  // |n| < 2^22); this build never uses -ffast-math, which could fold the two operations away.
  const f16v magic = splat(12582912.0f);
  f16v n = (x * 1.44269504088896341f + magic) - magic;
  // Two-constant Cody-Waite reduction keeps r accurate for |n| up to 127.
  f16v r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  f16v p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const i16v bits = (__builtin_convertvector(n, i16v) + 127) << 23;
  f16v two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  const f16v y = p * two_n;
  return underflow ? f16v{} : y;
}

// Sum of squares / products of n floats accumulated in double, lanes in a fixed order. Callers
// that need thread-count independence apply these to fixed-size blocks.
inline double sumsq_f64(const float* x, size_t n) {
  d8v acc0 = {}, acc1 = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f8v a, b;
    std::memcpy(&a, x + i, sizeof a);
    std::memcpy(&b, x + i + 8, sizeof b);
    d8v da = __builtin_convertvector(a, d8v), db = __builtin_convertvector(b, d8v);
    acc0 += da * da;
    acc1 += db * db;
  }
  d8v acc = acc0 + acc1;
  double s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}
inline double dot_f64(const float* x, const float* y, size_t n) {
  d8v acc0 = {}, acc1 = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f8v a, b, c, d;
    std::memcpy(&a, x + i, sizeof a);
    std::memcpy(&b, x + i + 8, sizeof b);
    std::memcpy(&c, y + i, sizeof c);
    std::memcpy(&d, y + i + 8, sizeof d);
    acc0 += __builtin_convertvector(a, d8v) * __builtin_convertvector(c, d8v);
    acc1 += __builtin_convertvector(b, d8v) * __builtin_convertvector(d, d8v);
  }
  d8v acc = acc0 + acc1;
  double s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += static_cast<double>(x[i]) * y[i];
  return s;
}

}  // namespace troupe::cpu::vec
