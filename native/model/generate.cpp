// Batched generation with a KV cache: one packed prefill of all prompts (different lengths, no
// padding), then decode steps over the rows still running. Each row's draw is keyed by
// (seed, call id, completion index), and every kernel on the path treats rows independently, so a
// completion does not depend on which other rows share the batch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

#include "../train/policy.h"
#include "../train/validate.h"
#include "qwen3.h"

namespace troupe {

GenerateStats Policy::generate(const GenerateRequest& req) {
  std::shared_lock lk(mu_);
  Qwen3Model& m = *model_;
  validate_generate(req, m.cfg);
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  const ModelConfig& c = m.cfg;
  const int B = req.prompts.num_seqs, D = c.hidden_size, V = c.vocab_size, L = c.num_layers;
  const int32_t* cu = req.prompts.cu_seqlens;
  GenerateStats gs;
  if (B == 0) return gs;
  for (int b = 0; b < B; ++b) {
    req.out_lengths[b] = 0;
    req.out_finish[b] = 1;
  }
  int max_len = 1, max_new = 0;
  for (int b = 0; b < B; ++b) {
    max_len = std::max(max_len, cu[b + 1] - cu[b] + req.max_new[b]);
    max_new = std::max(max_new, req.max_new[b]);
  }
  gs.prompt_tokens = cu[B];
  if (max_new == 0) return gs;

  // KV cache: per layer [B, max_len, Hkv, hd] for k and v.
  const size_t per_layer = static_cast<size_t>(B) * max_len * c.num_kv_heads * c.head_dim;
  DeviceBuffer kv(m.be, &m.tracker, MemCategory::KvCache, 2 * L * per_layer * sizeof(float));
  std::vector<float*> kc(L), vc(L);
  for (int l = 0; l < L; ++l) {
    kc[l] = kv.f32() + (2 * l) * per_layer;
    vc[l] = kv.f32() + (2 * l + 1) * per_layer;
  }

  // Prefill.
  const int T = cu[B];
  Activations pre;
  m.reserve(pre, T, false, MemCategory::Activations);
  DeviceBatch db = m.upload_batch(pre, req.prompts.tokens, cu, B);
  std::vector<int32_t> slot_of(static_cast<size_t>(T));
  for (int b = 0; b < B; ++b)
    for (int t = cu[b]; t < cu[b + 1]; ++t) slot_of[t] = b;
  DeviceBuffer slots_dev(m.be, &m.tracker, MemCategory::Activations, T * sizeof(int32_t));
  m.be->upload(slots_dev.data(), slot_of.data(), T * sizeof(int32_t));
  Qwen3Model::KvWrite kw{kc.data(), vc.data(), slots_dev.i32(), max_len, nullptr};
  const PackedLinears* pw = m.packed_linears();
  m.forward_hidden(pre, db, false, &kw, pw);

  // Decode state. Rows are compacted as they finish; `rows[i]` is the original row index.
  Activations dec;
  m.reserve(dec, B, false, MemCategory::Activations);
  DeviceBuffer last_hidden(m.be, &m.tracker, MemCategory::Activations,
                           static_cast<size_t>(B) * D * sizeof(float));
  for (int b = 0; b < B; ++b)  // the hidden state of each prompt's last token
    m.be->copy(last_hidden.f32() + static_cast<size_t>(b) * D,
               pre.fnorm.f32() + static_cast<size_t>(cu[b + 1] - 1) * D, D * sizeof(float));
  pre = Activations();  // free prefill activations before decoding
  slots_dev.release();
  gs.prefill_seconds = std::chrono::duration<double>(clock::now() - t_start).count();

  std::vector<int> rows;
  for (int b = 0; b < B; ++b)
    if (req.max_new[b] > 0) rows.push_back(b);
  std::vector<SampleRowKey> keys(static_cast<size_t>(B));
  std::vector<int32_t> tok(static_cast<size_t>(B)), pos(static_cast<size_t>(B)),
      slot(static_cast<size_t>(B)), len(static_cast<size_t>(B));
  std::vector<float> lp(static_cast<size_t>(B));
  DeviceBuffer logits(m.be, &m.tracker, MemCategory::Activations,
                      static_cast<size_t>(B) * V * sizeof(float));
  const float* hidden = nullptr;  // [n, D] hidden states of the rows' latest tokens
  // First step: hidden of the last prompt token, in original row order; compact to `rows`.
  {
    int i = 0;
    for (int b : rows) {
      if (i != b)
        m.be->copy(last_hidden.f32() + static_cast<size_t>(i) * D,
                   last_hidden.f32() + static_cast<size_t>(b) * D, D * sizeof(float));
      ++i;
    }
    hidden = last_hidden.f32();
  }
  auto is_stop = [&](int32_t t) {
    return std::find(req.stop_tokens.begin(), req.stop_tokens.end(), t) != req.stop_tokens.end();
  };
  while (!rows.empty()) {
    const int n = static_cast<int>(rows.size());
    m.linear(n, V, D, hidden, m.layout.lm_head, pw, pw ? pw->lm_head : 0, 0.0f, logits.f32());
    for (int i = 0; i < n; ++i) {
      keys[i].call_id = req.call_ids[rows[i]];
      keys[i].position = req.out_lengths[rows[i]];
      keys[i].pad_ = 0;
    }
    m.be->sample(logits.f32(), n, V, req.sampling, keys.data(), tok.data(), lp.data());
    gs.new_tokens += n;
    std::vector<int> next;
    int kept = 0;
    for (int i = 0; i < n; ++i) {
      const int b = rows[i];
      const int k = req.out_lengths[b];
      req.out_tokens[static_cast<size_t>(b) * req.stride + k] = tok[i];
      req.out_logp[static_cast<size_t>(b) * req.stride + k] = lp[i];
      req.out_lengths[b] = k + 1;
      if (is_stop(tok[i])) { req.out_finish[b] = 0; continue; }
      if (k + 1 >= req.max_new[b]) { req.out_finish[b] = 1; continue; }
      // Feed the sampled token at its absolute position; it attends to the whole prefix.
      const int p = (cu[b + 1] - cu[b]) + k;
      tok[kept] = tok[i];
      pos[kept] = p;
      slot[kept] = b;
      len[kept] = p + 1;
      next.push_back(b);
      ++kept;
    }
    rows.swap(next);
    if (rows.empty()) break;
    const int32_t *slots_d = nullptr, *lens_d = nullptr;
    DeviceBatch step = m.upload_decode(dec, tok.data(), pos.data(), slot.data(), len.data(), kept,
                                       &slots_d, &lens_d);
    Qwen3Model::KvWrite dk{kc.data(), vc.data(), slots_d, max_len, lens_d};
    m.forward_hidden(dec, step, false, &dk, pw);
    hidden = dec.fnorm.f32();
  }
  gs.decode_seconds = std::chrono::duration<double>(clock::now() - t_start).count() - gs.prefill_seconds;
  return gs;
}

}  // namespace troupe
