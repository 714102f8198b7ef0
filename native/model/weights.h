// Where each Hugging Face tensor lives inside a policy's single flat parameter buffer.
// One flat buffer (and one for gradients, one per Adam moment) makes AdamW, the global gradient
// norm and zero_grad single kernels. Inside a layer, q/k/v rows are adjacent so the three
// projections run as one GEMM over a [q;k;v] weight, and gate/up likewise; the HF names are
// views of those row ranges, so checkpoints keep Hugging Face's names and shapes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace troupe {

struct TensorSlot {
  std::string name;             // Hugging Face name, e.g. model.layers.0.self_attn.q_proj.weight
  std::vector<int64_t> shape;   // Hugging Face shape
  size_t offset = 0;            // in floats, into the flat buffer
  size_t numel = 0;
  bool is_norm = false;         // RMSNorm weights initialise to 1
};

// Offsets (in floats) of one layer's parameters.
struct LayerOffsets {
  size_t input_norm, qkv, q_norm, k_norm, o_proj, post_norm, gate_up, down;
};

struct WeightLayout {
  std::vector<TensorSlot> tensors;
  std::vector<LayerOffsets> layers;
  size_t embed = 0, final_norm = 0, lm_head = 0;  // lm_head == embed when tied
  size_t total = 0;                                // floats

  static WeightLayout build(const ModelConfig& c);
  const TensorSlot* find(const std::string& name) const;
};

}  // namespace troupe
