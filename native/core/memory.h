// Memory accounting. Every allocation the core makes belongs to a category of one policy (or of
// the process "scratch" tracker), so the SP-vs-IP memory profiler can read exact totals and peaks
// per category at any time. Counters are atomic: generation calls on several threads allocate
// KV caches for the same policy at once.
#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "../ops/backend.h"

namespace troupe {

enum class MemCategory : int { Weights = 0, Grads, Optimizer, Activations, KvCache, Workspace, Count };
constexpr int kMemCategories = static_cast<int>(MemCategory::Count);
const char* mem_category_name(MemCategory c);

struct MemorySnapshot {
  std::array<int64_t, kMemCategories> current{};
  std::array<int64_t, kMemCategories> peak{};  // peak of each category on its own
  int64_t total_current = 0;
  int64_t total_peak = 0;  // peak of the sum (not the sum of peaks)
};

class MemoryTracker {
 public:
  void add(MemCategory c, int64_t bytes);
  void sub(MemCategory c, int64_t bytes);
  MemorySnapshot snapshot() const;
  void reset_peaks();

 private:
  std::array<std::atomic<int64_t>, kMemCategories> current_{};
  std::array<std::atomic<int64_t>, kMemCategories> peak_{};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> total_peak_{0};
};

// An owning, accounted buffer of backend memory (move-only).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* be, MemoryTracker* tr, MemCategory c, size_t bytes);
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;

  void release();
  // Reallocates (contents lost) when `bytes` exceeds the current capacity.
  void ensure(Backend* be, MemoryTracker* tr, MemCategory c, size_t bytes);
  float* f32() const { return static_cast<float*>(ptr_); }
  int32_t* i32() const { return static_cast<int32_t*>(ptr_); }
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return ptr_ == nullptr; }

 private:
  Backend* be_ = nullptr;
  MemoryTracker* tr_ = nullptr;
  MemCategory cat_ = MemCategory::Workspace;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace troupe
