// Shared pieces of the CUDA kernels: error checks that throw (the core reports bad input and
// failures as exceptions, never crashes), the per-device context each launcher receives, and
// warp/block reductions that combine in a fixed order (results do not depend on scheduling).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace troupe::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error in ") + what + " at " + file + ":" +
                           std::to_string(line) + ": " + cudaGetErrorString(e));
}

#define TROUPE_CUDA_CHECK(expr)                                                   \
  do {                                                                            \
    cudaError_t e_ = (expr);                                                      \
    if (e_ != cudaSuccess) ::troupe::cuda::throw_cuda(e_, #expr, __FILE__, __LINE__); \
  } while (0)

// After every launch: a bad configuration shows up here rather than at some later call.
#define TROUPE_LAUNCH_CHECK(name)                                                 \
  do {                                                                            \
    cudaError_t e_ = cudaGetLastError();                                          \
    if (e_ != cudaSuccess) ::troupe::cuda::throw_cuda(e_, name, __FILE__, __LINE__); \
  } while (0)

inline void require(bool ok, const char* msg) {
  if (!ok) throw std::invalid_argument(msg);
}

// What a launcher needs from the backend: the stream, device facts and a grow-only scratch
// buffer. scratch() may free and reallocate (cudaFree synchronises the device, so work still
// reading the old buffer finishes first); a launcher takes one scratch region per call and carves
// it up itself.
struct Ctx {
  int device = 0;
  cudaStream_t stream = nullptr;
  int num_sms = 1;
  size_t smem_optin = 48 * 1024;  // largest dynamic shared memory a block may opt into
  void* scratch_ptr = nullptr;
  size_t scratch_bytes = 0;

  void* scratch(size_t bytes) {
    if (bytes > scratch_bytes) {
      // Earlier ops on the stream may still read the old buffer: let them finish first.
      TROUPE_CUDA_CHECK(cudaStreamSynchronize(stream));
      if (scratch_ptr) TROUPE_CUDA_CHECK(cudaFree(scratch_ptr));
      scratch_ptr = nullptr;
      scratch_bytes = 0;
      size_t want = bytes + bytes / 4 + 256;  // headroom so slowly growing sizes do not thrash
      TROUPE_CUDA_CHECK(cudaMalloc(&scratch_ptr, want));
      scratch_bytes = want;
    }
    return scratch_ptr;
  }
};

inline unsigned ceil_div(size_t a, size_t b) { return static_cast<unsigned>((a + b - 1) / b); }
inline size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// ---- reductions (device) ---------------------------------------------------------------------

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; every thread gets the result. `red` holds at least 32 T. The tree shape
// depends only on blockDim, so the result is the same on every run.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  T t = lane < nw ? red[lane] : T(0);
  return warp_sum(t);
}

__device__ __forceinline__ float block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = lane < nw ? red[lane] : -INFINITY;
  return warp_max(t);
}

}  // namespace troupe::cuda
