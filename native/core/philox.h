// Counter-based RNG (Philox4x32-10, Salmon et al. 2011). A draw is a pure function of
// (key, counter), so samples do not depend on batch composition, thread count or device.
// Usable from host and CUDA device code.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define TROUPE_HD __host__ __device__ __forceinline__
#else
#define TROUPE_HD inline
#endif

namespace troupe {

struct Philox4 {
  uint32_t v[4];
};

TROUPE_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(M0) * c0;
    uint64_t p1 = static_cast<uint64_t>(M1) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += W0; k1 += W1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in the open interval (0, 1) from 23 random bits: (k + 0.5) / 2^23 is exact in float
// and strictly inside (0, 1). (Using 24 bits, (2^24 - 0.5) rounds up to 2^24 and gives u = 1,
// i.e. infinite Gumbel noise.)
TROUPE_HD float uint_to_unit_open(uint32_t x) {
  return (static_cast<float>(x >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// The uniform used for vocabulary entry j of the draw at (seed, call_id, position).
TROUPE_HD float sample_uniform(uint64_t seed, uint64_t call_id, int32_t position, uint32_t j) {
  Philox4 r = philox4x32_10(j, static_cast<uint32_t>(position), static_cast<uint32_t>(call_id),
                            static_cast<uint32_t>(call_id >> 32), static_cast<uint32_t>(seed),
                            static_cast<uint32_t>(seed >> 32));
  return uint_to_unit_open(r.v[0]);
}

}  // namespace troupe
