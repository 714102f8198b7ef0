// Pieces shared by the tiled attention kernels (attention.cu, attention_bwd.cu).
//
// All tiled kernels use 256 threads viewed as 16 x 16 (ty = tid / 16, tx = tid % 16). A thread
// owns rows ty + 16*i and columns tx + 16*j of every tile it computes, so in each inner product
// the 16 threads of a half-warp read 16 consecutive shared-memory rows (row stride HD+1 words:
// 16 distinct banks) while the row operand is a broadcast. Rows of one query are spread over the
// 16 lanes of one half-warp, so row reductions are 4 xor-shuffles with no shared memory.
//
// HD is the head dimension rounded up to 32/64/128; the loaders zero-fill d >= hd and rows past
// the sequence end, so padded lanes contribute exact zeros.
#pragma once
#include "cuda_common.cuh"

namespace troupe::cuda::attn {

constexpr int kThreads = 256;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Copies rows [row0, row0 + ROWS) of one head (global row stride `stride` floats, `nvalid` rows
// present) into shared memory laid out [ROWS][HD + 1], zero-filling the rest.
template <int ROWS, int HD>
__device__ __forceinline__ void load_tile(float* __restrict__ s, const float* __restrict__ g,
                                          size_t stride, int nvalid, int hd) {
#pragma unroll 4
  for (int idx = threadIdx.x; idx < ROWS * HD; idx += kThreads) {
    const int r = idx / HD, d = idx % HD;
    s[r * (HD + 1) + d] = (r < nvalid && d < hd) ? g[(size_t)r * stride + d] : 0.f;
  }
}

// Max (or sum) over the 16 lanes of a half-warp, i.e. over the columns of one row.
__device__ __forceinline__ float row_max16(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float row_sum16(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Blocks get more than 48 KB of dynamic shared memory only after opting in. The attribute is
// per function and device, so it is set before every launch (a cheap host call).
template <typename K>
void allow_smem(const Ctx& ctx, K kernel, size_t bytes) {
  require(bytes <= ctx.smem_optin, "attention: tile does not fit in this GPU's shared memory");
  if (bytes > 48 * 1024)
    TROUPE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes)));
}

inline void check_shape(int num_seqs, int T, int Hq, int Hkv, int hd, const char* op) {
  if (!(num_seqs >= 0 && T >= 0 && Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && hd > 0))
    throw std::invalid_argument(std::string(op) +
                                ": need num_seqs, T >= 0, Hq > 0, Hkv > 0 dividing Hq, hd > 0");
  if (hd > 128)
    throw std::invalid_argument(std::string(op) + ": hd > 128 is not supported by the CUDA kernels");
  if (num_seqs > 65535) throw std::invalid_argument(std::string(op) + ": num_seqs > 65535");
}

}  // namespace troupe::cuda::attn
