// A CPU stand-in for the CUDA runtime and device intrinsics, used only to execute the backend's
// kernels on a machine without a GPU (see cuda/emu/README.md). Each CUDA thread is a fiber;
// __syncthreads and warp shuffles are real barriers between the fibers of a block; blocks run
// one after another. "Device memory" is host memory from malloc, so AddressSanitizer reports
// out-of-bounds accesses the way compute-sanitizer's memcheck would.
//
// It checks what a launch would check (block size, grid limits, dynamic shared memory above
// 48 KB only after cudaFuncSetAttribute) and aborts with a message on barrier deadlock
// (a __syncthreads or shuffle not reached by every live thread of the block / warp).
// It does not model timing, concurrency between blocks, or memory-ordering races.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <tuple>
#include <utility>
#include <algorithm>
#include <climits>

// ---- qualifiers --------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

// ---- vector types ------------------------------------------------------------------------------
struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned int a, unsigned int b = 1, unsigned int c = 1) : x(a), y(b), z(c) {}
};
using uint3 = dim3;
struct alignas(16) float4 {
  float x, y, z, w;
};

extern dim3 threadIdx, blockIdx, blockDim, gridDim;

// ---- runtime types -----------------------------------------------------------------------------
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
};
typedef struct emu_stream* cudaStream_t;
enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaFuncAttribute : int { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaMemoryType : int {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3
};
struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};
struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerBlock;
};
constexpr unsigned int cudaStreamNonBlocking = 1;

const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k,
                            cudaStream_t s = nullptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind k);
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p);

namespace emu {
void set_func_smem(const void* fn, size_t bytes);
size_t func_smem(const void* fn);
// Runs `body` as a grid of blocks of fibers. Aborts on a bad configuration or a deadlock.
void run_grid(const char* what, const void* fn, dim3 grid, dim3 block, size_t smem,
              const std::function<void()>& body);
void* dynamic_smem_ptr();
void block_barrier();
void warp_barrier();
void* warp_slot(int lane);  // 8-byte exchange slot of `lane` in the current warp
int lane_id();

template <typename... P>
struct Launch {
  void (*fn)(P...);
  dim3 grid, block;
  size_t smem;
  template <typename... A>
  void operator()(A&&... a) const {
    // Kernel parameters are copies, as on the device.
    std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
    auto f = fn;
    run_grid("kernel", reinterpret_cast<const void*>(fn), grid, block, smem,
             [&args, f] { std::apply(f, args); });
  }
};
template <typename... P>
Launch<P...> launch(void (*fn)(P...), dim3 grid, dim3 block, size_t smem = 0,
                    cudaStream_t = nullptr) {
  return Launch<P...>{fn, grid, block, smem};
}
template <typename T>
T* dynamic_smem() {
  return static_cast<T*>(dynamic_smem_ptr());
}
}  // namespace emu

template <typename F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize)
    emu::set_func_smem(reinterpret_cast<const void*>(fn), static_cast<size_t>(value));
  return cudaSuccess;
}

// ---- device intrinsics ---------------------------------------------------------------------------
inline void __syncthreads() { emu::block_barrier(); }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
  static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
  const int lane = emu::lane_id();
  std::memcpy(emu::warp_slot(lane), &v, sizeof(T));
  emu::warp_barrier();
  T r;
  std::memcpy(&r, emu::warp_slot(lane ^ mask), sizeof(T));
  emu::warp_barrier();  // the slots may be rewritten by the next shuffle only after all read
  return r;
}

inline unsigned int atomicAdd(unsigned int* p, unsigned int v) {
  unsigned int o = *p;
  *p = o + v;
  return o;
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  unsigned long long o = *p;
  *p = o + v;
  return o;
}
inline float atomicAdd(float* p, float v) {
  float o = *p;
  *p = o + v;
  return o;
}

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned int i) { float f; std::memcpy(&f, &i, 4); return f; }
using std::max;
using std::min;
