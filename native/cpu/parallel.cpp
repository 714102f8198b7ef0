#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::cpu {
namespace {

std::atomic<int> g_default_threads{0};
thread_local int t_threads = 0;  // 0 = use default
thread_local bool t_in_parallel = false;  // true inside a job: nested calls run serially

// A pool of helper threads owned by one calling thread.
class Pool {
 public:
  explicit Pool(int helpers) {
    for (int i = 0; i < helpers; ++i) workers_.emplace_back([this, i] { loop(i + 1); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int helpers() const { return static_cast<int>(workers_.size()); }

  void run(const std::function<void(int, int)>& fn, int nthreads) {
    job_ = &fn;
    job_threads_ = nthreads;
    pending_.store(nthreads - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(0, nthreads);
    // Wait for helpers: spin (they finish within microseconds of us in balanced kernels).
    while (pending_.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    job_ = nullptr;
  }

 private:
  void loop(int tid) {
    t_in_parallel = true;
    // Start from generation 0, not from a fresh load: the first job may already have been
    // posted before this thread got scheduled, and loading then would skip (and hang on) it.
    uint64_t seen = 0;
    for (;;) {
      // Spin a little for the next job, then sleep on the condition variable.
      auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      uint64_t g;
      int spins = 0;
      while ((g = generation_.load(std::memory_order_acquire)) == seen) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
        if ((++spins & 255) == 0 && std::chrono::steady_clock::now() > spin_until) {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
          g = generation_.load(std::memory_order_acquire);
          break;
        }
      }
      seen = g;
      if (stop_) return;
      if (tid < job_threads_) {
        (*job_)(tid, job_threads_);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int, int)>* job_ = nullptr;
  int job_threads_ = 1;
  bool stop_ = false;
};

thread_local std::unique_ptr<Pool> t_pool;

}  // namespace

int hardware_cores() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int num_threads() {
  if (t_threads > 0) return t_threads;
  int d = g_default_threads.load(std::memory_order_relaxed);
  return d > 0 ? d : hardware_cores();
}

void set_thread_local_num_threads(int n) { t_threads = std::max(1, n); }
void set_default_num_threads(int n) { g_default_threads.store(std::max(1, n)); }

void run_on_threads(const std::function<void(int, int)>& fn, int max_threads) {
  const int budget = num_threads();
  int n = std::min(budget, std::max(1, max_threads));
  if (n <= 1 || t_in_parallel) {  // nested calls run serially on the calling thread
    fn(0, 1);
    return;
  }
  // The pool is sized by the thread budget; a job may use fewer threads than the pool has.
  if (!t_pool || t_pool->helpers() != budget - 1) {
    t_pool.reset();
    t_pool = std::make_unique<Pool>(budget - 1);
  }
  t_in_parallel = true;
  t_pool->run(fn, n);
  t_in_parallel = false;
}

void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  size_t chunks = (n + grain - 1) / grain;
  int max_t = static_cast<int>(std::min<size_t>(chunks, 1 << 20));
  run_on_threads(
      [&](int tid, int nt) {
        size_t per = (chunks + nt - 1) / nt;
        size_t b = std::min(n, static_cast<size_t>(tid) * per * grain);
        size_t e = std::min(n, (static_cast<size_t>(tid) + 1) * per * grain);
        if (b < e) fn(b, e);
      },
      max_t);
}

}  // namespace troupe::cpu
