#include "config.h"

#include <climits>
#include <stdexcept>

#include "../io/json.h"

namespace troupe {

using io::Json;
using io::JsonFields;

int64_t ModelConfig::num_parameters() const {
  const int64_t H = hidden_size, V = vocab_size, I = intermediate_size, D = head_dim;
  const int64_t q = static_cast<int64_t>(num_heads) * D, kv = static_cast<int64_t>(num_kv_heads) * D;
  const int64_t attn = H * q + 2 * H * kv + q * H;  // q, k, v, o projections (no bias)
  const int64_t norms = 2 * D + 2 * H;              // q_norm, k_norm, input + post-attention norms
  const int64_t mlp = 3 * H * I;                    // gate, up, down
  int64_t total = V * H + num_layers * (attn + norms + mlp) + H;  // embedding, layers, final norm
  if (!tie_word_embeddings) total += V * H;                       // separate lm_head
  return total;
}

void ModelConfig::validate() const {
  auto positive = [](int v, const char* field) {
    if (v <= 0) throw std::invalid_argument(std::string("ModelConfig: ") + field + " must be positive (got " + std::to_string(v) + ")");
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_layers, "num_hidden_layers");
  positive(num_heads, "num_attention_heads");
  positive(num_kv_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(intermediate_size, "intermediate_size");
  positive(max_position_embeddings, "max_position_embeddings");
  if (num_heads % num_kv_heads != 0)
    throw std::invalid_argument("ModelConfig: num_attention_heads (" + std::to_string(num_heads) +
                                ") must be a multiple of num_key_value_heads (" + std::to_string(num_kv_heads) + ")");
  // Rotary embedding rotates dimension pairs (rotate-half form).
  if (head_dim % 2 != 0) throw std::invalid_argument("ModelConfig: head_dim must be even (got " + std::to_string(head_dim) + ")");
  if (!(rms_norm_eps > 0.0f)) throw std::invalid_argument("ModelConfig: rms_norm_eps must be positive");
  if (!(rope_theta > 0.0)) throw std::invalid_argument("ModelConfig: rope_theta must be positive");
  if (bos_token_id < -1 || bos_token_id >= vocab_size)
    throw std::invalid_argument("ModelConfig: bos_token_id " + std::to_string(bos_token_id) + " is outside the vocabulary");
  for (int e : eos_token_ids)
    if (e < 0 || e >= vocab_size)
      throw std::invalid_argument("ModelConfig: eos_token_id " + std::to_string(e) + " is outside the vocabulary");
}

ModelConfig preset_config(const std::string& name, int vocab_size) {
  struct Shape {
    const char* name;
    int hidden, layers, heads, kv, head_dim, mlp;
  };
  static const Shape kPresets[] = {
      {"tiny", 128, 4, 4, 2, 32, 384},
      {"small", 256, 8, 8, 4, 32, 768},
      {"medium", 512, 12, 8, 4, 64, 1536},
  };
  for (const Shape& s : kPresets) {
    if (name != s.name) continue;
    ModelConfig c;  // eps 1e-6, theta 1e6, 40960 positions, tied embeddings: the struct defaults
    c.vocab_size = vocab_size;
    c.hidden_size = s.hidden;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv;
    c.head_dim = s.head_dim;
    c.intermediate_size = s.mlp;
    c.validate();
    return c;
  }
  throw std::invalid_argument("unknown model preset '" + name + "' (valid: tiny, small, medium)");
}

namespace {

int to_int(const JsonFields& f, const std::string& key, int64_t v) {
  if (v < INT_MIN || v > INT_MAX) f.fail(key, "is out of range (" + std::to_string(v) + ")");
  return static_cast<int>(v);
}
int req_int(const JsonFields& f, const std::string& key) { return to_int(f, key, f.get_int(key)); }
int opt_int(const JsonFields& f, const std::string& key, int dflt) { return to_int(f, key, f.get_int(key, dflt)); }

void unsupported(const std::string& field, const std::string& detail) {
  throw io::JsonError("config.json: unsupported " + field + ": " + detail + " (troupe implements dense Qwen3 only)");
}

// HF rope dicts with rope_type "default" (or the legacy key "type") change nothing.
bool is_default_rope(const Json& rope) {
  for (const char* key : {"rope_type", "type"}) {
    const Json* t = rope.find(key);
    if (t && !(t->is_string() && t->as_string() == "default")) return false;
  }
  return true;
}

}  // namespace

ModelConfig config_from_json(const std::string& json_text) {
  Json doc = Json::parse(json_text, "config.json");
  JsonFields f(doc, "config.json");

  // Refuse variants whose computation we do not implement rather than silently mis-load them.
  std::string model_type = f.get_string("model_type", "qwen3");
  if (model_type != "qwen3") unsupported("model_type", "'" + model_type + "' (expected 'qwen3')");
  std::string act = f.get_string("hidden_act", "silu");
  if (act != "silu") unsupported("hidden_act", "'" + act + "' (only 'silu')");
  if (f.get_bool("attention_bias", false)) unsupported("attention_bias", "true (projections without bias only)");
  if (f.get_bool("mlp_bias", false)) unsupported("mlp_bias", "true");
  if (f.get_bool("use_sliding_window", false)) unsupported("use_sliding_window", "true (full attention only)");
  if (const Json* lt = f.get("layer_types"); lt && lt->is_array())
    for (const Json& t : lt->as_array())
      if (!(t.is_string() && t.as_string() == "full_attention")) unsupported("layer_types", "only 'full_attention' layers");
  if (f.has("rope_scaling")) {
    const Json& rs = *f.get("rope_scaling");
    if (!rs.is_object() || !is_default_rope(rs)) unsupported("rope_scaling", rs.dump());
  }

  ModelConfig c;
  c.vocab_size = req_int(f, "vocab_size");
  c.hidden_size = req_int(f, "hidden_size");
  c.num_layers = req_int(f, "num_hidden_layers");
  c.num_heads = req_int(f, "num_attention_heads");
  c.intermediate_size = req_int(f, "intermediate_size");
  // Defaults below are transformers' Qwen3Config defaults, so a file means what it means to HF:
  // an absent num_key_value_heads is 32 (null: one per attention head), an absent head_dim is 128
  // (null: hidden_size / num_attention_heads, as the modeling code falls back).
  if (const Json* kv = f.get("num_key_value_heads"); kv && kv->is_null())
    c.num_kv_heads = c.num_heads;
  else
    c.num_kv_heads = opt_int(f, "num_key_value_heads", 32);
  if (const Json* hd = f.get("head_dim"); hd && hd->is_null())
    c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  else
    c.head_dim = opt_int(f, "head_dim", 128);
  c.rms_norm_eps = static_cast<float>(f.get_number("rms_norm_eps", 1e-6));
  c.max_position_embeddings = opt_int(f, "max_position_embeddings", 32768);
  c.tie_word_embeddings = f.get_bool("tie_word_embeddings", false);
  c.rope_theta = f.get_number("rope_theta", 10000.0);
  // transformers >= 4.56 may carry theta inside rope_parameters instead.
  if (const Json* rp = f.get("rope_parameters"); rp && !rp->is_null()) {
    if (!rp->is_object() || !is_default_rope(*rp)) unsupported("rope_parameters", rp->dump());
    JsonFields rf(*rp, "config.json: rope_parameters");
    c.rope_theta = rf.get_number("rope_theta", c.rope_theta);
  }
  c.bos_token_id = opt_int(f, "bos_token_id", -1);
  if (const Json* eos = f.get("eos_token_id"); eos && !eos->is_null()) {
    if (eos->is_integer()) {
      c.eos_token_ids.push_back(to_int(f, "eos_token_id", eos->as_int()));
    } else if (eos->is_array()) {
      for (const Json& e : eos->as_array()) {
        if (!e.is_integer()) f.fail("eos_token_id", "must be an integer or a list of integers");
        c.eos_token_ids.push_back(to_int(f, "eos_token_id", e.as_int()));
      }
    } else {
      f.fail("eos_token_id", "must be an integer or a list of integers");
    }
  }
  c.validate();
  return c;
}

std::string config_to_json(const ModelConfig& c) {
  c.validate();
  Json eos;  // null when there is none
  if (c.eos_token_ids.size() == 1) {
    eos = Json(c.eos_token_ids[0]);
  } else if (!c.eos_token_ids.empty()) {
    eos = Json::array();
    for (int e : c.eos_token_ids) eos.push_back(Json(e));
  }
  // Keys sorted, as transformers' save_pretrained writes them.
  Json j = Json::object();
  j.set("architectures", Json(Json::Array{Json("Qwen3ForCausalLM")}));
  j.set("attention_bias", false);
  j.set("attention_dropout", 0.0);
  j.set("bos_token_id", c.bos_token_id >= 0 ? Json(c.bos_token_id) : Json());
  j.set("eos_token_id", eos);
  j.set("head_dim", c.head_dim);
  j.set("hidden_act", "silu");
  j.set("hidden_size", c.hidden_size);
  j.set("initializer_range", 0.02);
  j.set("intermediate_size", c.intermediate_size);
  j.set("max_position_embeddings", c.max_position_embeddings);
  j.set("max_window_layers", c.num_layers);
  j.set("model_type", "qwen3");
  j.set("num_attention_heads", c.num_heads);
  j.set("num_hidden_layers", c.num_layers);
  j.set("num_key_value_heads", c.num_kv_heads);
  j.set("rms_norm_eps", Json::from_float(c.rms_norm_eps));
  j.set("rope_scaling", Json());
  j.set("rope_theta", c.rope_theta);
  j.set("sliding_window", Json());
  j.set("tie_word_embeddings", c.tie_word_embeddings);
  j.set("torch_dtype", "float32");
  j.set("use_cache", true);
  j.set("use_sliding_window", false);
  j.set("vocab_size", c.vocab_size);
  return j.dump(2) + "\n";
}

}  // namespace troupe
