// Shared helpers for the model-level tests: a small config, random parameters, packed batches.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "model/weights.h"
#include "ref_qwen3.h"
#include "train/policy.h"

namespace troupe::test {

inline ModelConfig small_test_config() {
  ModelConfig c;
  c.vocab_size = 37;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 48;
  c.max_position_embeddings = 256;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = false;
  return c;
}

// Parameters large enough that every path matters (HF's 0.02 init makes logits ~0).
inline std::vector<float> random_params(const WeightLayout& L, uint32_t seed, float scale = 0.25f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, scale);
  std::vector<float> p(L.total);
  for (const auto& t : L.tensors)
    for (size_t i = 0; i < t.numel; ++i)
      p[t.offset + i] = t.is_norm ? 1.0f + 0.2f * n(rng) : n(rng);
  return p;
}

inline RefModel make_ref(const ModelConfig& c, const std::vector<float>& p) {
  RefModel r{c, WeightLayout::build(c), std::vector<double>(p.begin(), p.end())};
  return r;
}

struct Packed {
  std::vector<int32_t> tokens, cu;
  int S() const { return static_cast<int>(cu.size()) - 1; }
  PackedTokens view() const { return PackedTokens{tokens.data(), cu.data(), S()}; }
  std::vector<int> seq(int s) const {
    return std::vector<int>(tokens.begin() + cu[s], tokens.begin() + cu[s + 1]);
  }
};

inline Packed random_packed(const std::vector<int>& lens, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  Packed p;
  p.cu.push_back(0);
  for (int len : lens) {
    for (int i = 0; i < len; ++i) p.tokens.push_back(static_cast<int32_t>(rng() % vocab));
    p.cu.push_back(static_cast<int32_t>(p.tokens.size()));
  }
  return p;
}

inline std::vector<double> log_softmax(const double* z, int V, double temperature = 1.0) {
  double mx = -1e300;
  for (int j = 0; j < V; ++j) mx = std::max(mx, z[j] / temperature);
  double s = 0;
  for (int j = 0; j < V; ++j) s += std::exp(z[j] / temperature - mx);
  std::vector<double> out(V);
  for (int j = 0; j < V; ++j) out[j] = z[j] / temperature - mx - std::log(s);
  return out;
}

}  // namespace troupe::test
