#include "weights.h"

namespace troupe {

WeightLayout WeightLayout::build(const ModelConfig& c) {
  WeightLayout L;
  const int64_t D = c.hidden_size, hd = c.head_dim, I = c.intermediate_size;
  const int64_t q_rows = int64_t(c.num_heads) * hd, kv_rows = int64_t(c.num_kv_heads) * hd;
  size_t off = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm = false) {
    size_t n = 1;
    for (auto d : shape) n *= static_cast<size_t>(d);
    L.tensors.push_back({name, std::move(shape), off, n, norm});
    size_t at = off;
    off += n;
    return at;
  };
  L.embed = add("model.embed_tokens.weight", {c.vocab_size, D});
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerOffsets lo;
    lo.input_norm = add(p + "input_layernorm.weight", {D}, true);
    lo.qkv = add(p + "self_attn.q_proj.weight", {q_rows, D});
    add(p + "self_attn.k_proj.weight", {kv_rows, D});
    add(p + "self_attn.v_proj.weight", {kv_rows, D});
    lo.q_norm = add(p + "self_attn.q_norm.weight", {hd}, true);
    lo.k_norm = add(p + "self_attn.k_norm.weight", {hd}, true);
    lo.o_proj = add(p + "self_attn.o_proj.weight", {D, q_rows});
    lo.post_norm = add(p + "post_attention_layernorm.weight", {D}, true);
    lo.gate_up = add(p + "mlp.gate_proj.weight", {I, D});
    add(p + "mlp.up_proj.weight", {I, D});
    lo.down = add(p + "mlp.down_proj.weight", {D, I});
    L.layers.push_back(lo);
  }
  L.final_norm = add("model.norm.weight", {D}, true);
  L.lm_head = c.tie_word_embeddings ? L.embed : add("lm_head.weight", {c.vocab_size, D});
  L.total = off;
  return L;
}

const TensorSlot* WeightLayout::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace troupe
