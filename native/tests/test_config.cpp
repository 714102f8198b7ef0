// Tests for native/model/config: presets, Hugging Face config.json in both directions, and
// parameter counts checked against hand arithmetic and an independent per-tensor enumeration.
#include <string>
#include <vector>

#include "harness.h"
#include "io/file.h"
#include "io/json.h"
#include "model/config.h"

using namespace troupe;
using troupe::io::Json;

namespace {

template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}
#define CHECK_CONFIG_ERROR(expr, substr)                                                   \
  do {                                                                                     \
    std::string m_ = config_error([&] { (void)(expr); });                                  \
    CHECK_MSG(m_.find(substr) != std::string::npos, "expected '" << substr << "' in: " << m_); \
  } while (0)

// Sum of numel over the tensors a Hugging Face Qwen3ForCausalLM checkpoint holds, by name.
int64_t count_hf_tensors(const ModelConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> t;
  const int64_t H = c.hidden_size, D = c.head_dim;
  t.push_back({"model.embed_tokens.weight", {c.vocab_size, H}});
  for (int i = 0; i < c.num_layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back({p + "self_attn.q_proj.weight", {c.num_heads * D, H}});
    t.push_back({p + "self_attn.k_proj.weight", {c.num_kv_heads * D, H}});
    t.push_back({p + "self_attn.v_proj.weight", {c.num_kv_heads * D, H}});
    t.push_back({p + "self_attn.o_proj.weight", {H, c.num_heads * D}});
    t.push_back({p + "self_attn.q_norm.weight", {D}});
    t.push_back({p + "self_attn.k_norm.weight", {D}});
    t.push_back({p + "input_layernorm.weight", {H}});
    t.push_back({p + "post_attention_layernorm.weight", {H}});
    t.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, H}});
    t.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, H}});
    t.push_back({p + "mlp.down_proj.weight", {H, c.intermediate_size}});
  }
  t.push_back({"model.norm.weight", {H}});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, H}});
  int64_t n = 0;
  for (const auto& [name, shape] : t) {
    int64_t k = 1;
    for (int64_t d : shape) k *= d;
    n += k;
  }
  return n;
}

// The repository's configs/ folder, found from this source file's path or the working directory.
std::string repo_file(const std::string& rel) {
  std::string here = __FILE__;
  size_t cut = here.rfind("native/tests/");
  std::vector<std::string> roots;
  if (cut != std::string::npos) roots.push_back(here.substr(0, cut));
  for (const char* r : {"", "../", "../../"}) roots.push_back(r);
  for (const auto& r : roots) {
    try {
      return io::read_file(r + rel);
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error("cannot find " + rel);
}

}  // namespace

TEST(config_presets_shapes_and_parameter_counts) {
  ModelConfig t = preset_config("tiny");
  CHECK(t.vocab_size == 320 && t.hidden_size == 128 && t.num_layers == 4 && t.num_heads == 4 &&
        t.num_kv_heads == 2 && t.head_dim == 32 && t.intermediate_size == 384);
  CHECK(t.rms_norm_eps == 1e-6f && t.rope_theta == 1e6 && t.max_position_embeddings == 40960 && t.tie_word_embeddings);
  CHECK(t.qkv_rows() == (4 + 2 * 2) * 32);
  // tiny, V=320: embed 320*128 = 40960; per layer q 128*128 = 16384, k = v = 128*64 = 8192,
  // o 16384, norms 32+32+128+128 = 320, mlp 3*128*384 = 147456 -> 196928; x4 = 787712;
  // + final norm 128 -> 828800 (DESIGN.md: 0.8 M).
  CHECK(t.num_parameters() == 828800);
  // small, V=320: embed 81920; per layer q 65536, k = v = 32768, o 65536, norms 576,
  // mlp 589824 -> 787008; x8 = 6296064; + 256 -> 6378240 (6.3 M).
  ModelConfig s = preset_config("small");
  CHECK(s.hidden_size == 256 && s.num_layers == 8 && s.num_heads == 8 && s.num_kv_heads == 4 && s.head_dim == 32 &&
        s.intermediate_size == 768);
  CHECK(s.num_parameters() == 6378240);
  // medium, V=320: embed 163840; per layer q 262144, k = v = 131072, o 262144, norms 1152,
  // mlp 2359296 -> 3146880; x12 = 37762560; + 512 -> 37926912 (38 M).
  ModelConfig m = preset_config("medium");
  CHECK(m.hidden_size == 512 && m.num_layers == 12 && m.num_heads == 8 && m.num_kv_heads == 4 && m.head_dim == 64 &&
        m.intermediate_size == 1536);
  CHECK(m.num_parameters() == 37926912);
  for (const ModelConfig* c : {&t, &s, &m}) CHECK(c->num_parameters() == count_hf_tensors(*c));

  ModelConfig big_vocab = preset_config("tiny", 1000);
  CHECK(big_vocab.vocab_size == 1000 && big_vocab.num_parameters() == 828800 + (1000 - 320) * 128);
  big_vocab.tie_word_embeddings = false;  // a separate lm_head adds V*H
  CHECK(big_vocab.num_parameters() == 828800 + (1000 - 320) * 128 + 1000 * 128);
  CHECK(big_vocab.num_parameters() == count_hf_tensors(big_vocab));
  CHECK_CONFIG_ERROR(preset_config("huge"), "unknown model preset 'huge' (valid: tiny, small, medium)");
  CHECK_CONFIG_ERROR(preset_config("tiny", 0), "vocab_size");
}

TEST(config_reads_the_real_qwen3_configs) {
  ModelConfig a = config_from_json(repo_file("configs/qwen3-0.6b.json"));
  CHECK(a.vocab_size == 151936 && a.hidden_size == 1024 && a.num_layers == 28 && a.num_heads == 16 &&
        a.num_kv_heads == 8 && a.head_dim == 128 && a.intermediate_size == 3072);
  CHECK(a.rms_norm_eps == 1e-6f && a.rope_theta == 1e6 && a.max_position_embeddings == 40960 && a.tie_word_embeddings);
  CHECK(a.bos_token_id == 151643 && a.eos_token_ids == std::vector<int>{151645});
  // 0.6B: embed 151936*1024 = 155582464; per layer q 1024*2048 = 2097152, k = v = 1024*1024 =
  // 1048576, o 2097152, norms 128+128+1024+1024 = 2304, mlp 3*1024*3072 = 9437184 -> 15730944;
  // x28 = 440466432; + final norm 1024 -> 596049920 (tied: no lm_head).
  CHECK(a.num_parameters() == 596049920);

  ModelConfig b = config_from_json(repo_file("configs/qwen3-1.7b.json"));
  CHECK(b.hidden_size == 2048 && b.num_layers == 28 && b.num_heads == 16 && b.num_kv_heads == 8 &&
        b.head_dim == 128 && b.intermediate_size == 6144 && b.tie_word_embeddings);
  // 1.7B: embed 151936*2048 = 311164928; per layer q 4194304, k = v = 2097152, o 4194304,
  // norms 128+128+2048+2048 = 4352, mlp 3*2048*6144 = 37748736 -> 50336000; x28 = 1409408000;
  // + 2048 -> 1720574976.
  CHECK(b.num_parameters() == 1720574976);

  ModelConfig c = config_from_json(repo_file("configs/qwen3-4b.json"));
  CHECK(c.hidden_size == 2560 && c.num_layers == 36 && c.num_heads == 32 && c.num_kv_heads == 8 &&
        c.head_dim == 128 && c.intermediate_size == 9728 && c.tie_word_embeddings);
  // 4B: embed 151936*2560 = 388956160; per layer q 2560*4096 = 10485760, k = v = 2560*1024 =
  // 2621440, o 10485760, norms 128+128+2560+2560 = 5376, mlp 3*2560*9728 = 74711040 ->
  // 100930816; x36 = 3633509376; + 2560 -> 4022468096.
  CHECK(c.num_parameters() == 4022468096LL);
  for (const ModelConfig* x : {&a, &b, &c}) CHECK(x->num_parameters() == count_hf_tensors(*x));
}

TEST(config_json_round_trip_and_hf_fields) {
  std::vector<ModelConfig> cases = {preset_config("tiny"), preset_config("medium", 151936),
                                    config_from_json(repo_file("configs/qwen3-4b.json"))};
  ModelConfig odd = preset_config("small", 777);
  odd.tie_word_embeddings = false;
  odd.rms_norm_eps = 1e-5f;
  odd.rope_theta = 500000.5;
  odd.max_position_embeddings = 2048;
  odd.bos_token_id = 1;
  odd.eos_token_ids = {2, 7, 776};
  cases.push_back(odd);
  for (const ModelConfig& c : cases) {
    std::string text = config_to_json(c);
    ModelConfig r = config_from_json(text);
    CHECK(r.vocab_size == c.vocab_size && r.hidden_size == c.hidden_size && r.num_layers == c.num_layers &&
          r.num_heads == c.num_heads && r.num_kv_heads == c.num_kv_heads && r.head_dim == c.head_dim &&
          r.intermediate_size == c.intermediate_size && r.rms_norm_eps == c.rms_norm_eps &&
          r.rope_theta == c.rope_theta && r.max_position_embeddings == c.max_position_embeddings &&
          r.tie_word_embeddings == c.tie_word_embeddings && r.bos_token_id == c.bos_token_id &&
          r.eos_token_ids == c.eos_token_ids);

    // The fields transformers' Qwen3Config expects, with the values that select our computation.
    Json j = Json::parse(text);
    CHECK(j.find("architectures")->as_array().at(0).as_string() == "Qwen3ForCausalLM");
    CHECK(j.find("model_type")->as_string() == "qwen3");
    CHECK(j.find("hidden_act")->as_string() == "silu");
    CHECK(j.find("attention_bias")->as_bool() == false);
    CHECK(j.find("attention_dropout")->is_number() && !j.find("attention_dropout")->is_integer() &&
          j.find("attention_dropout")->as_double() == 0.0);
    CHECK(j.find("initializer_range")->as_double() == 0.02);
    CHECK(j.find("use_cache")->as_bool() && !j.find("use_sliding_window")->as_bool());
    CHECK(j.find("sliding_window")->is_null() && j.find("rope_scaling")->is_null());
    CHECK(j.find("max_window_layers")->as_int() == c.num_layers);
    CHECK(j.find("torch_dtype")->as_string() == "float32");
    CHECK(j.find("num_hidden_layers")->as_int() == c.num_layers);
    CHECK(j.find("tie_word_embeddings")->as_bool() == c.tie_word_embeddings);
  }
  std::string tiny = config_to_json(preset_config("tiny"));
  CHECK(tiny.find("\"rms_norm_eps\": 1e-06") != std::string::npos);
  CHECK(tiny.find("\"bos_token_id\": null") != std::string::npos);
  CHECK(tiny.find("\"eos_token_id\": null") != std::string::npos);
  CHECK(config_to_json(cases[2]).find("\"eos_token_id\": 151645") != std::string::npos);
  CHECK(config_to_json(odd).find("\"eos_token_id\": [\n    2,") != std::string::npos);
}

TEST(config_defaults_follow_transformers) {
  const std::string base = R"("vocab_size": 100, "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 32,
                              "intermediate_size": 512)";
  ModelConfig c = config_from_json("{" + base + "}");
  CHECK(c.num_kv_heads == 32 && c.head_dim == 128);  // Qwen3Config defaults when absent
  CHECK(!c.tie_word_embeddings && c.rope_theta == 10000.0 && c.rms_norm_eps == 1e-6f);
  CHECK(c.max_position_embeddings == 32768 && c.bos_token_id == -1 && c.eos_token_ids.empty());
  ModelConfig n = config_from_json("{" + base + R"(, "num_key_value_heads": null, "head_dim": null, "eos_token_id": [3, 4],
                                                    "bos_token_id": null, "rope_scaling": {"rope_type": "default"},
                                                    "some_future_field": {"x": [1]}})");
  CHECK(n.num_kv_heads == 32 && n.head_dim == 8);  // null: one kv head per head, hidden / heads
  CHECK(n.eos_token_ids == (std::vector<int>{3, 4}) && n.bos_token_id == -1);
  ModelConfig p = config_from_json("{" + base + R"(, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}})");
  CHECK(p.rope_theta == 500000.0);
}

TEST(config_errors_name_the_field) {
  const std::string tail = R"("num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                              "head_dim": 32, "intermediate_size": 384, "vocab_size": 320)";
  auto with = [&](const std::string& extra) { return "{" + extra + (extra.empty() ? "" : ", ") + tail + "}"; };
  CHECK(config_from_json(with(R"("hidden_size": 128)")).hidden_size == 128);
  CHECK_CONFIG_ERROR(config_from_json(with("")), "config.json: field 'hidden_size' is missing");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128.5)")), "config.json: field 'hidden_size' must be an integer");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": "128")")), "field 'hidden_size' must be an integer");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 1099511627776)")), "field 'hidden_size' is out of range");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 0)")), "hidden_size must be positive");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "rms_norm_eps": "small")")), "field 'rms_norm_eps' must be a number");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "tie_word_embeddings": 1)")), "field 'tie_word_embeddings'");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "eos_token_id": "x")")), "field 'eos_token_id'");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "eos_token_id": 5000)")), "eos_token_id 5000");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "rope_scaling": {"rope_type": "yarn", "factor": 4.0})")),
                     "unsupported rope_scaling");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "hidden_act": "gelu")")), "unsupported hidden_act: 'gelu'");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "attention_bias": true)")), "unsupported attention_bias");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "model_type": "qwen2")")), "unsupported model_type: 'qwen2'");
  CHECK_CONFIG_ERROR(config_from_json(with(R"("hidden_size": 128, "use_sliding_window": true)")), "use_sliding_window");
  CHECK_CONFIG_ERROR(config_from_json("[]"), "config.json: expected a JSON object");
  CHECK_CONFIG_ERROR(config_from_json("{\"hidden_size\": }"), "config.json: invalid JSON");

  ModelConfig c = preset_config("tiny");
  c.num_kv_heads = 3;
  CHECK_CONFIG_ERROR(c.validate(), "num_key_value_heads (3)");
  c = preset_config("tiny");
  c.head_dim = 31;
  CHECK_CONFIG_ERROR(c.validate(), "head_dim must be even");
  c = preset_config("tiny");
  c.num_layers = -1;
  CHECK_CONFIG_ERROR(c.validate(), "num_hidden_layers must be positive");
  c = preset_config("tiny");
  c.intermediate_size = 0;
  CHECK_CONFIG_ERROR(config_to_json(c), "intermediate_size");
}
