// The CPU stand-in's runtime: memory calls, and the fiber scheduler that runs a kernel's blocks.
// One block at a time: its threads are ucontext fibers that run until they reach a barrier (or
// finish); when every live thread of the block waits at __syncthreads, or every live lane of a
// warp waits at a shuffle, they are released together. A state where some threads wait and none
// can be released is a divergent barrier: reported and aborted, as it would hang a GPU.
#include <ucontext.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <vector>

#include "cuda_runtime.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {
namespace {

enum State { kRun, kWaitBlock, kWaitWarp, kDone };

constexpr size_t kStack = 256 * 1024;
constexpr size_t kMaxSmem = 232448;  // H100's opt-in maximum per block

struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;
  State st = kDone;
  dim3 tid;
};

struct BlockExec {
  std::vector<Fiber> fibers;
  ucontext_t sched;
  int cur = -1;
  const std::function<void()>* body = nullptr;
  char* smem = nullptr;
  std::vector<unsigned long long> slots;
};

BlockExec g_exec;
std::map<const void*, size_t> g_smem_attr;
cudaError_t g_last = cudaSuccess;

[[noreturn]] void die(const char* what, const char* msg) {
  std::fprintf(stderr, "cuda emulator: %s: %s\n", what, msg);
  std::fflush(stderr);
  std::abort();
}

void fiber_entry() {
  (*g_exec.body)();
  g_exec.fibers[g_exec.cur].st = kDone;  // uc_link returns to the scheduler
}

int order_mode() {
  static int mode = [] {
    const char* s = std::getenv("EMU_ORDER");
    if (!s || !std::strcmp(s, "forward")) return 0;
    if (!std::strcmp(s, "reverse")) return 1;
    return 2;
  }();
  return mode;
}

const std::vector<size_t>& phase_order(size_t nt) {
  static std::vector<size_t> order;
  static unsigned long long rng = 0x9e3779b97f4a7c15ull;
  order.resize(nt);
  for (size_t i = 0; i < nt; ++i) order[i] = order_mode() == 1 ? nt - 1 - i : i;
  if (order_mode() == 2)
    for (size_t i = nt; i > 1; --i) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(order[i - 1], order[(rng >> 33) % i]);
    }
  return order;
}

void yield(State s) {
  Fiber& f = g_exec.fibers[g_exec.cur];
  f.st = s;
  swapcontext(&f.ctx, &g_exec.sched);
}

}  // namespace

void set_func_smem(const void* fn, size_t bytes) { g_smem_attr[fn] = bytes; }
size_t func_smem(const void* fn) {
  auto it = g_smem_attr.find(fn);
  return it == g_smem_attr.end() ? 48 * 1024 : it->second;
}
void* dynamic_smem_ptr() { return g_exec.smem; }
void block_barrier() { yield(kWaitBlock); }
void warp_barrier() { yield(kWaitWarp); }
int lane_id() { return g_exec.cur & 31; }
void* warp_slot(int lane) { return &g_exec.slots[(g_exec.cur & ~31) + lane]; }

void run_grid(const char* what, const void* fn, dim3 grid, dim3 block, size_t smem,
              const std::function<void()>& body) {
  const size_t nt = (size_t)block.x * block.y * block.z;
  if (nt == 0 || nt > 1024 || block.z > 64) die(what, "bad block size");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
      grid.x > 2147483647u)
    die(what, "bad grid size");
  if (smem > kMaxSmem) die(what, "dynamic shared memory above the device maximum");
  if (smem > 48 * 1024 && func_smem(fn) < smem)
    die(what, "dynamic shared memory above 48 KB without cudaFuncSetAttribute");
  BlockExec& e = g_exec;
  if (e.fibers.size() < nt) {
    size_t old = e.fibers.size();
    e.fibers.resize(nt);
    for (size_t i = old; i < nt; ++i) e.fibers[i].stack = static_cast<char*>(std::malloc(kStack));
  }
  e.slots.assign(((nt + 31) / 32) * 32, 0);
  e.body = &body;
  gridDim = grid;
  blockDim = block;
  std::vector<char> smem_buf;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = dim3(bx, by, bz);
        // Dynamic shared memory starts as NaN bytes: reading a word nobody wrote shows up.
        char* sm = nullptr;
        if (smem) {
          sm = static_cast<char*>(std::malloc(smem));
          std::memset(sm, 0xff, smem);
        }
        e.smem = sm;
        for (size_t i = 0; i < nt; ++i) {
          Fiber& f = e.fibers[i];
          f.tid = dim3(i % block.x, (i / block.x) % block.y, i / ((size_t)block.x * block.y));
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = f.stack;
          f.ctx.uc_stack.ss_size = kStack;
          f.ctx.uc_link = &e.sched;
          makecontext(&f.ctx, fiber_entry, 0);
          f.st = kRun;
        }
        for (;;) {
          bool ran = false;
          // Between two barriers each thread runs to its next barrier in turn. A missing
          // barrier shows as a wrong result when the reader runs before the writer, so the
          // order is selectable (EMU_ORDER=forward|reverse|random) to catch both directions.
          const std::vector<size_t>& order = phase_order(nt);
          for (size_t i : order) {
            if (e.fibers[i].st != kRun) continue;
            e.cur = static_cast<int>(i);
            threadIdx = e.fibers[i].tid;
            swapcontext(&e.sched, &e.fibers[i].ctx);
            ran = true;
          }
          size_t alive = 0, at_block = 0;
          for (size_t i = 0; i < nt; ++i) {
            alive += e.fibers[i].st != kDone;
            at_block += e.fibers[i].st == kWaitBlock;
          }
          if (alive == 0) break;
          if (at_block == alive) {
            for (size_t i = 0; i < nt; ++i)
              if (e.fibers[i].st == kWaitBlock) e.fibers[i].st = kRun;
            continue;
          }
          bool released = false;
          for (size_t w = 0; w < nt; w += 32) {
            size_t live = 0, waiting = 0;
            for (size_t i = w; i < std::min(nt, w + 32); ++i) {
              live += e.fibers[i].st != kDone;
              waiting += e.fibers[i].st == kWaitWarp;
            }
            if (live && waiting == live) {
              for (size_t i = w; i < std::min(nt, w + 32); ++i) e.fibers[i].st = kRun;
              released = true;
            }
          }
          if (!released && !ran) die(what, "barrier deadlock (divergent __syncthreads or shuffle)");
        }
        std::free(sm);
        e.smem = nullptr;
      }
}

}  // namespace emu

// ---- runtime API ---------------------------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    default: return "emulated CUDA error";
  }
}
cudaError_t cudaGetLastError() {
  cudaError_t e = emu::g_last;
  emu::g_last = cudaSuccess;
  return e;
}
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "CPU emulator");
  p->multiProcessorCount = 132;
  p->sharedMemPerBlockOptin = emu::kMaxSmem;
  p->sharedMemPerBlock = 48 * 1024;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  *s = reinterpret_cast<cudaStream_t>(new char);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaMalloc(void** p, size_t bytes) {
  // Exactly `bytes` (no rounding), so AddressSanitizer flags the first byte past the end.
  if (posix_memalign(p, 256, bytes ? bytes : 1) != 0) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xff, bytes);  // fresh device memory is garbage: NaN bytes
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind,
                            cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind k) {
  return cudaMemcpyAsync(dst, src, bytes, k, nullptr);
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t) {
  std::memset(p, v, bytes);
  return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void*) {
  std::memset(a, 0, sizeof *a);
  a->type = cudaMemoryTypeUnregistered;
  return cudaSuccess;
}
