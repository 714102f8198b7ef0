// Per-token loss weights for the aggregation modes. The loss op multiplies each token's term by
// its weight and sums, so every aggregation mode (and accumulating a step in several pieces)
// reduces to choosing these weights:
//   token-mean            w = 1 / N_tokens(step)
//   seq-mean-token-mean   w = 1 / (S(step) * n_s)       n_s = trained tokens of sequence s
//   seq-mean-token-sum    w = 1 / S(step)
//   constant (Dr. GRPO)   w = 1 / (S(step) * C)         C = a fixed length, e.g. max new tokens
// where S(step) and N_tokens(step) count the whole optimizer step, not just this piece, so that
// pieces add up to the same gradient as one batch.
#pragma once
#include <cstdint>
#include <vector>

#include "policy.h"

namespace troupe {

// Trained tokens of each sequence (mask, excluding each sequence's first token).
std::vector<int64_t> trained_tokens_per_seq(const TrainBatch& b);

// Weights aligned with tokens (entry t weights the prediction of tokens[t]).
std::vector<float> token_loss_weights(const TrainBatch& b, const LossSpec& spec);

}  // namespace troupe
