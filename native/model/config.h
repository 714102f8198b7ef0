// Qwen3 model configuration: the subset of Hugging Face's Qwen3Config that defines the
// computation, with HF field names in comments. Presets tiny/small/medium match DESIGN.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace troupe {

struct ModelConfig {
  int vocab_size = 320;               // vocab_size
  int hidden_size = 128;              // hidden_size
  int num_layers = 4;                 // num_hidden_layers
  int num_heads = 4;                  // num_attention_heads
  int num_kv_heads = 2;               // num_key_value_heads
  int head_dim = 32;                  // head_dim
  int intermediate_size = 384;        // intermediate_size
  float rms_norm_eps = 1e-6f;         // rms_norm_eps
  double rope_theta = 1000000.0;      // rope_theta
  int max_position_embeddings = 40960;// max_position_embeddings
  bool tie_word_embeddings = true;    // tie_word_embeddings
  int bos_token_id = -1;              // bos_token_id (-1 = none)
  std::vector<int> eos_token_ids;     // eos_token_id (int or list)

  int qkv_rows() const { return (num_heads + 2 * num_kv_heads) * head_dim; }
  int64_t num_parameters() const;
  // Throws std::invalid_argument naming the bad field.
  void validate() const;
};

// "tiny" | "small" | "medium" with the given vocabulary size; throws for an unknown name.
ModelConfig preset_config(const std::string& name, int vocab_size = 320);
// Parses a Hugging Face config.json text (Qwen3 fields; unknown fields ignored). Throws with the
// field name on a missing or malformed required field.
ModelConfig config_from_json(const std::string& json_text);
// Serialises to a config.json that transformers' Qwen3ForCausalLM loads unchanged.
std::string config_to_json(const ModelConfig& c);

}  // namespace troupe
