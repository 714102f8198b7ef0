// Token embedding lookup and its deterministic backward.
//
// Backward without float atomics: a stable radix sort of (id, t) pairs groups the tokens by id
// with t ascending inside each group; the first position of each group owns that table row and
// adds the group's gradient rows in t order, starting from the row's current value. That is the
// same sequence of float additions as the CPU's loop over t, so results match it bit for bit.
#include <cub/device/device_radix_sort.cuh>

#include "kernels.cuh"

namespace troupe::cuda {
namespace {

__global__ void embedding_fwd_kernel(const int32_t* __restrict__ ids, int T,
                                     const float* __restrict__ table, int dim,
                                     float* __restrict__ out) {
  for (int t = blockIdx.x; t < T; t += gridDim.x) {
    const int32_t id = ids[t];
    float* o = out + (size_t)t * dim;
    const float* r = table + (size_t)id * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) o[c] = id >= 0 ? r[c] : 0.f;
  }
}

__global__ void iota_kernel(int32_t* v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) v[i] = i;
}

// One block per sorted position; only the first position of each id group does the work.
__global__ void embedding_bwd_kernel(const int32_t* __restrict__ sorted_ids,
                                     const int32_t* __restrict__ sorted_t, int T,
                                     const float* __restrict__ dout, int dim,
                                     float* __restrict__ dtable) {
  const int i = blockIdx.x;
  const int32_t id = sorted_ids[i];
  if (id < 0 || (i > 0 && sorted_ids[i - 1] == id)) return;
  int end = i + 1;
  while (end < T && sorted_ids[end] == id) ++end;
  float* row = dtable + (size_t)id * dim;
  for (int c = threadIdx.x; c < dim; c += blockDim.x) {
    float acc = row[c];
    for (int j = i; j < end; ++j) acc += dout[(size_t)sorted_t[j] * dim + c];
    row[c] = acc;
  }
}

int threads_for_dim(int dim) { return dim >= 256 ? 256 : dim >= 128 ? 128 : 64; }

}  // namespace

void embedding_forward(Ctx& ctx, const int32_t* ids, int T, const float* table, int dim,
                       float* out) {
  require(T >= 0 && dim > 0, "embedding_forward: T must be >= 0 and dim > 0");
  if (T == 0) return;
  unsigned grid = T < 65535 ? T : 65535;
  embedding_fwd_kernel<<<grid, threads_for_dim(dim), 0, ctx.stream>>>(ids, T, table, dim, out);
  TROUPE_LAUNCH_CHECK("embedding_fwd_kernel");
}

void embedding_backward(Ctx& ctx, const int32_t* ids, int T, const float* dout, int dim,
                        float* dtable) {
  require(T >= 0 && dim > 0, "embedding_backward: T must be >= 0 and dim > 0");
  if (T == 0) return;
  size_t temp_bytes = 0;
  TROUPE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, (const int32_t*)nullptr,
                                                    (int32_t*)nullptr, (const int32_t*)nullptr,
                                                    (int32_t*)nullptr, T, 0, 32, ctx.stream));
  const size_t arr = align_up((size_t)T * sizeof(int32_t), 256);
  char* ws = static_cast<char*>(ctx.scratch(3 * arr + temp_bytes));
  int32_t* keys_out = reinterpret_cast<int32_t*>(ws);
  int32_t* vals_in = reinterpret_cast<int32_t*>(ws + arr);
  int32_t* vals_out = reinterpret_cast<int32_t*>(ws + 2 * arr);
  void* temp = ws + 3 * arr;
  iota_kernel<<<ceil_div(T, 256), 256, 0, ctx.stream>>>(vals_in, T);
  TROUPE_LAUNCH_CHECK("iota_kernel");
  TROUPE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, ids, keys_out, vals_in,
                                                    vals_out, T, 0, 32, ctx.stream));
  embedding_bwd_kernel<<<T, threads_for_dim(dim), 0, ctx.stream>>>(keys_out, vals_out, T, dout,
                                                                   dim, dtable);
  TROUPE_LAUNCH_CHECK("embedding_bwd_kernel");
}

}  // namespace troupe::cuda
