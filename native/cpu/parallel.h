// One thread budget per calling thread. Each OS thread that calls into the native core (the Node
// main thread, each Piscina worker) owns a small pool of helpers; the number of threads a call
// uses is set through the addon (set_num_threads), never through environment variables, so a
// pool of P workers x T threads per call can be kept <= cores. Workers spin briefly after a job
// (jobs come in quick succession inside a forward pass) and then sleep, so an idle pool costs
// nothing and two pools never spin against each other for long.
#pragma once
#include <cstddef>
#include <functional>

namespace troupe::cpu {

// Threads used by calls made from the current OS thread (>= 1). Defaults to the process-wide
// value, which defaults to the number of cores.
int num_threads();
// Sets the number of threads for calls from the current OS thread only.
void set_thread_local_num_threads(int n);
// Sets the process-wide default used by threads that did not set their own.
void set_default_num_threads(int n);
int hardware_cores();

// Runs fn(tid, nthreads) on nthreads = min(num_threads(), max_threads) threads, the caller being
// tid 0, and returns when all are done. fn must partition work by tid deterministically.
void run_on_threads(const std::function<void(int tid, int nthreads)>& fn, int max_threads = 1 << 30);

// Static partition of [0, n) over threads: calls fn(begin, end) for each thread's contiguous
// chunk. Chunks are multiples of `grain` (except the last). Deterministic for a fixed thread count.
void parallel_for(size_t n, size_t grain, const std::function<void(size_t begin, size_t end)>& fn);

}  // namespace troupe::cpu
