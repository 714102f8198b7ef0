#include "memory.h"

#include <algorithm>

namespace troupe {

const char* mem_category_name(MemCategory c) {
  switch (c) {
    case MemCategory::Weights: return "weights";
    case MemCategory::Grads: return "grads";
    case MemCategory::Optimizer: return "optimizer";
    case MemCategory::Activations: return "activations";
    case MemCategory::KvCache: return "kvCache";
    case MemCategory::Workspace: return "workspace";
    default: return "unknown";
  }
}

static void atomic_max(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

void MemoryTracker::add(MemCategory c, int64_t bytes) {
  int i = static_cast<int>(c);
  atomic_max(peak_[i], current_[i].fetch_add(bytes) + bytes);
  atomic_max(total_peak_, total_.fetch_add(bytes) + bytes);
}

void MemoryTracker::sub(MemCategory c, int64_t bytes) {
  current_[static_cast<int>(c)].fetch_sub(bytes);
  total_.fetch_sub(bytes);
}

MemorySnapshot MemoryTracker::snapshot() const {
  MemorySnapshot s;
  for (int i = 0; i < kMemCategories; ++i) {
    s.current[i] = current_[i].load();
    s.peak[i] = peak_[i].load();
  }
  s.total_current = total_.load();
  s.total_peak = total_peak_.load();
  return s;
}

void MemoryTracker::reset_peaks() {
  for (int i = 0; i < kMemCategories; ++i) peak_[i].store(current_[i].load());
  total_peak_.store(total_.load());
}

DeviceBuffer::DeviceBuffer(Backend* be, MemoryTracker* tr, MemCategory c, size_t bytes) {
  ensure(be, tr, c, bytes);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    be_ = o.be_; tr_ = o.tr_; cat_ = o.cat_; ptr_ = o.ptr_; bytes_ = o.bytes_;
    o.ptr_ = nullptr; o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::release() {
  if (ptr_) {
    be_->free_bytes(ptr_);
    if (tr_) tr_->sub(cat_, static_cast<int64_t>(bytes_));
  }
  ptr_ = nullptr;
  bytes_ = 0;
}

void DeviceBuffer::ensure(Backend* be, MemoryTracker* tr, MemCategory c, size_t bytes) {
  if (ptr_ && bytes <= bytes_ && be == be_ && c == cat_) return;
  release();
  be_ = be; tr_ = tr; cat_ = c;
  if (bytes == 0) return;
  ptr_ = be->malloc_bytes(bytes);
  bytes_ = bytes;
  if (tr_) tr_->add(cat_, static_cast<int64_t>(bytes_));
}

}  // namespace troupe
