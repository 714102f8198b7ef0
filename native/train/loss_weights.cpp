#include "loss_weights.h"

#include <stdexcept>

namespace troupe {

std::vector<int64_t> trained_tokens_per_seq(const TrainBatch& b) {
  std::vector<int64_t> n(static_cast<size_t>(b.seqs.num_seqs), 0);
  for (int s = 0; s < b.seqs.num_seqs; ++s)
    for (int t = b.seqs.cu_seqlens[s] + 1; t < b.seqs.cu_seqlens[s + 1]; ++t)
      n[s] += b.loss_mask[t] ? 1 : 0;
  return n;
}

std::vector<float> token_loss_weights(const TrainBatch& b, const LossSpec& spec) {
  const int S = b.seqs.num_seqs;
  const int T = b.seqs.cu_seqlens[S];
  std::vector<float> w(static_cast<size_t>(T), 0.0f);
  auto per_seq = trained_tokens_per_seq(b);
  int64_t piece_tokens = 0;
  for (auto n : per_seq) piece_tokens += n;
  const double S_step = spec.global_num_seqs > 0 ? spec.global_num_seqs : S;
  const double N_step = spec.global_num_tokens > 0 ? static_cast<double>(spec.global_num_tokens)
                                                   : static_cast<double>(piece_tokens);
  if (spec.agg == LossAgg::ConstantNorm && !(spec.constant_norm > 0))
    throw std::invalid_argument("loss.constantNorm must be > 0 for the 'constant' aggregation");
  for (int s = 0; s < S; ++s) {
    if (per_seq[s] == 0) continue;
    double ws = 0;
    switch (spec.agg) {
      case LossAgg::TokenMean: ws = 1.0 / N_step; break;
      case LossAgg::SeqMeanTokenMean: ws = 1.0 / (S_step * static_cast<double>(per_seq[s])); break;
      case LossAgg::SeqMeanTokenSum: ws = 1.0 / S_step; break;
      case LossAgg::ConstantNorm: ws = 1.0 / (S_step * spec.constant_norm); break;
    }
    for (int t = b.seqs.cu_seqlens[s] + 1; t < b.seqs.cu_seqlens[s + 1]; ++t)
      if (b.loss_mask[t]) w[t] = static_cast<float>(ws);
  }
  return w;
}

}  // namespace troupe
