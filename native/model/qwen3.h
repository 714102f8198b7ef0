// The Qwen3 forward and backward passes, written once against the op interface (Backend).
// Owns the flat parameter/gradient/optimizer buffers and the rotary tables. Training keeps one
// reusable activation set (training is exclusive); inference calls bring their own.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "../core/memory.h"
#include "../ops/backend.h"
#include "config.h"
#include "weights.h"

namespace troupe {

// A packed batch already uploaded to backend memory.
struct DeviceBatch {
  int T = 0, S = 0, max_seqlen = 0;
  const int32_t* tokens = nullptr;     // [T]
  const int32_t* positions = nullptr;  // [T]
  const int32_t* cu_seqlens = nullptr; // [S+1]
};

// Activation storage for one forward(+backward) of up to `capacity` tokens. With keep_layers the
// per-layer tensors the backward needs are all kept; without, layers reuse one slot (inference).
struct Activations {
  int capacity = 0, layers_kept = 0;
  DeviceBuffer res;      // residual stream: inputs [L+1][T, D] (training) or one [T, D] in place
  DeviceBuffer ln1, rstd1, qkv_raw, qkv, qk_rstd, att, lse, mid, ln2, rstd2, gu, h;
  DeviceBuffer fnorm, frstd;          // final norm output and rstd
  DeviceBuffer logits;                // [chunk, V]
  // backward scratch
  DeviceBuffer dx, dln, dqkv, dqkv_raw, datt, dgu, dh;
  // per-token loss inputs/outputs (by position row)
  DeviceBuffer ids;  // tokens, positions, cu_seqlens, targets (int32)
  DeviceBuffer loss_in;  // weight, old, ref, adv (float, 4 x T)
  DeviceBuffer stats;    // [T, kTokenStatCols]
};

// Inference copies of the linear weights in the backend's packed GEMM layout (Backend::
// pack_weight), built lazily for the current params and reused by every generate call until the
// params change. Offsets are in bytes into buf.
struct PackedLinears {
  DeviceBuffer buf;  // Workspace
  uint64_t version = UINT64_MAX;  // params_version it was built from; UINT64_MAX = never built
  std::vector<size_t> qkv, o, gate_up, down;
  size_t lm_head = 0;
  // The layout, planned once (it depends only on the config and the backend): one entry per
  // linear weight, and the total bytes (0 = not packed: no packed layout, or too large).
  struct Entry { size_t w_off; int N, K; size_t offset; };
  std::vector<Entry> entries;
  size_t total = 0;
  bool planned = false;
};

class Qwen3Model {
 public:
  Qwen3Model(const ModelConfig& cfg, Backend* be);

  const ModelConfig cfg;
  const WeightLayout layout;
  Backend* const be;
  mutable MemoryTracker tracker;

  DeviceBuffer params;      // Weights
  DeviceBuffer grads;       // Grads: the optimizer step's accumulated gradient
  DeviceBuffer piece;       // Grads: one accumulation piece's own gradient (diagnostics)
  DeviceBuffer adam_m, adam_v;          // Optimizer
  std::map<std::string, DeviceBuffer> role_ema;  // Grads: running-average gradient per role
  DeviceBuffer rope_cos, rope_sin;      // Workspace: [rope_len, hd/2]
  int rope_len = 0;
  int opt_steps = 0;
  // Bumped by every write to params (init, load, copy, optimizer step, write_params), all of
  // which hold the policy's exclusive lock; invalidates the packed linears.
  uint64_t params_version = 0;
  void params_changed() { ++params_version; }
  // Packed copy above this size is not made (memory over speed: a 4B-parameter config would
  // double its 16 GB of weights); generation then uses plain gemm.
  static constexpr size_t kMaxPackedBytes = size_t(1) << 30;
  // The packed linears for the current params, built on first use after a change; null when the
  // backend has no packed layout or the copy would exceed kMaxPackedBytes. Safe to call from
  // concurrent generate calls (they hold the policy's shared lock, so params cannot change).
  const PackedLinears* packed_linears();
  Activations train_acts;

  void init_random(uint64_t seed);
  void check_positions(int max_pos) const;  // throws when beyond max_position_embeddings
  void build_rope();
  void ensure_grads();
  void ensure_optimizer();

  float* W(size_t offset) const { return params.f32() + offset; }

  // Uploads tokens/positions/cu_seqlens (positions = index within the sequence) into acts.ids.
  DeviceBatch upload_batch(Activations& a, const int32_t* tokens, const int32_t* cu_seqlens, int S);
  // Decode batch: n single tokens at explicit absolute positions, plus per-row slots and
  // attention lengths, all uploaded into acts.ids.
  DeviceBatch upload_decode(Activations& a, const int32_t* tokens, const int32_t* positions,
                            const int32_t* slots, const int32_t* lengths, int n,
                            const int32_t** slots_dev, const int32_t** lengths_dev);
  void reserve(Activations& a, int T, bool keep_layers, MemCategory cat);

  // Embedding -> layers -> final norm; leaves the normed hidden states in a.fnorm [T, D].
  // kv_* non-null: also writes every layer's k/v into the cache (prefill).
  struct KvWrite {
    float* const* k_cache;  // [L] per-layer caches
    float* const* v_cache;
    const int32_t* slots;   // [T] device: cache slot of each token
    int max_len;
    // Decode mode when non-null: each token attends to its slot's cache positions
    // [0, lengths[t]) instead of running packed causal attention over the batch.
    const int32_t* lengths = nullptr;
  };
  // pw: packed linears to use instead of the params for the matmuls (inference), or null.
  void forward_hidden(Activations& a, const DeviceBatch& b, bool keep_layers, const KvWrite* kv,
                      const PackedLinears* pw = nullptr);
  // y[T, N] = x[T, K] @ W^T + beta * y for the linear weight at params offset w_off, from the
  // packed copy at byte offset packed_off when pw is non-null.
  void linear(int T, int N, int K, const float* x, size_t w_off, const PackedLinears* pw,
              size_t packed_off, float beta, float* y);
  // Backward from d(fnorm) (in a.dln) to all parameter gradients, accumulated into grad_base.
  void backward_hidden(Activations& a, const DeviceBatch& b, float* grad_base);
  // logits for rows [r0, r0+n) of a.fnorm into a.logits.
  void lm_head_forward(Activations& a, int r0, int n);
  // From dlogits (in a.logits) for rows [r0, r0+n): d(fnorm) rows into a.dln, d(lm_head) +=.
  void lm_head_backward(Activations& a, int r0, int n, float* grad_base);
  int logits_chunk_rows() const;

 private:
  void plan_packed_linears();
  std::mutex pack_mu_;
  PackedLinears packed_;
};

}  // namespace troupe
