#include "validate.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace troupe {
namespace {
[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }
}  // namespace

void validate_packed(const PackedTokens& b, const ModelConfig& c, const char* what) {
  const std::string w(what);
  if (b.num_seqs < 0) bad(w + ".cuSeqlens: negative sequence count");
  if (!b.cu_seqlens) bad(w + ".cuSeqlens is missing");
  if (b.cu_seqlens[0] != 0) bad(w + ".cuSeqlens[0] must be 0");
  for (int s = 0; s < b.num_seqs; ++s)
    if (b.cu_seqlens[s + 1] < b.cu_seqlens[s])
      bad(w + ".cuSeqlens must be non-decreasing (index " + std::to_string(s + 1) + ")");
  const int T = b.cu_seqlens[b.num_seqs];
  if (T > 0 && !b.tokens) bad(w + ".tokens is missing");
  for (int t = 0; t < T; ++t)
    if (b.tokens[t] < 0 || b.tokens[t] >= c.vocab_size)
      bad(w + ".tokens[" + std::to_string(t) + "] = " + std::to_string(b.tokens[t]) +
          " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
}

void validate_train_batch(const TrainBatch& b, const ModelConfig& c) {
  validate_packed(b.seqs, c, "batch");
  const int S = b.seqs.num_seqs, T = b.seqs.cu_seqlens[S];
  if (!b.loss_mask) bad("batch.lossMask is missing");
  for (int t = 0; t < T; ++t) {
    if (!b.loss_mask[t]) continue;
    if (b.old_logp && !std::isfinite(b.old_logp[t]))
      bad("batch.oldLogprobs[" + std::to_string(t) + "] is not finite");
    if (b.ref_logp && !std::isfinite(b.ref_logp[t]))
      bad("batch.refLogprobs[" + std::to_string(t) + "] is not finite");
  }
  if (b.advantages)
    for (int s = 0; s < S; ++s)
      if (!std::isfinite(b.advantages[s]))
        bad("batch.advantages[" + std::to_string(s) + "] is not finite");
}

void validate_generate(const GenerateRequest& r, const ModelConfig& c) {
  validate_packed(r.prompts, c, "prompts");
  const int B = r.prompts.num_seqs;
  for (int b = 0; b < B; ++b) {
    const int len = r.prompts.cu_seqlens[b + 1] - r.prompts.cu_seqlens[b];
    if (len < 1) bad("prompts: prompt " + std::to_string(b) + " is empty (needs >= 1 token)");
    if (r.max_new[b] < 0) bad("maxNewTokens[" + std::to_string(b) + "] is negative");
    if (r.max_new[b] > r.stride)
      bad("maxNewTokens[" + std::to_string(b) + "] exceeds the output row stride " +
          std::to_string(r.stride));
    if (static_cast<int64_t>(len) + r.max_new[b] > c.max_position_embeddings)
      bad("prompt " + std::to_string(b) + " plus maxNewTokens exceeds max_position_embeddings");
  }
  for (int32_t s : r.stop_tokens)
    if (s < 0 || s >= c.vocab_size) bad("stopTokens: " + std::to_string(s) + " is outside the vocabulary");
  if (!(r.sampling.top_p > 0.0f && r.sampling.top_p <= 1.0f)) bad("sampling.topP must be in (0, 1]");
  if (r.sampling.top_k < 0) bad("sampling.topK must be >= 0");
  if (!std::isfinite(r.sampling.temperature)) bad("sampling.temperature must be finite");
}

}  // namespace troupe
