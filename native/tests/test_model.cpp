// Whole-model checks of the optimized Qwen3 against the float64 reference in ref_qwen3.h.
#include <cmath>
#include <random>

#include "cpu/parallel.h"
#include "harness.h"
#include "model_fixtures.h"

using namespace troupe;
using namespace troupe::test;

TEST(model_forward_matches_float64_reference) {
  ModelConfig c = small_test_config();
  for (bool tied : {false, true}) {
    c.tie_word_embeddings = tied;
    Policy pol(c, cpu_backend(), 1);
    auto p = random_params(WeightLayout::build(c), 7);
    pol.write_params(p.data());
    RefModel ref = make_ref(c, p);
    Packed b = random_packed({5, 1, 9, 3}, c.vocab_size, 3);
    std::vector<float> logits(b.tokens.size() * c.vocab_size);
    pol.forward_logits(b.view(), logits.data());
    double max_err = 0;
    for (int s = 0; s < b.S(); ++s) {
      auto want = ref.forward_seq(b.seq(s));
      for (size_t i = 0; i < want.size(); ++i)
        max_err = std::max(max_err, std::fabs(want[i] - logits[b.cu[s] * c.vocab_size + i]));
    }
    CHECK_MSG(max_err < 2e-4, "tied=" << tied << " max |logit error| = " << max_err);
  }
}

TEST(forward_logprobs_align_with_targets) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 1);
  auto p = random_params(WeightLayout::build(c), 8);
  pol.write_params(p.data());
  RefModel ref = make_ref(c, p);
  Packed b = random_packed({4, 6}, c.vocab_size, 4);
  std::vector<float> lp(b.tokens.size()), ent(b.tokens.size());
  const double temp = 0.7;
  pol.forward_logprobs(b.view(), static_cast<float>(temp), lp.data(), ent.data());
  for (int s = 0; s < b.S(); ++s) {
    auto z = ref.forward_seq(b.seq(s));
    CHECK(lp[b.cu[s]] == 0.0f);
    for (int t = b.cu[s] + 1; t < b.cu[s + 1]; ++t) {
      auto ls = log_softmax(&z[static_cast<size_t>(t - 1 - b.cu[s]) * c.vocab_size], c.vocab_size, temp);
      double H = 0;
      for (double v : ls) H -= std::exp(v) * v;
      CHECK_NEAR(lp[t], ls[b.tokens[t]], 2e-4, 0);
      CHECK_NEAR(ent[t], H, 2e-4, 0);
    }
  }
}

// Loss of the reference model for one batch: PPO (+KL k3, entropy, temperature) or CE.
static double ref_loss(const RefModel& ref, const Packed& b, const std::vector<uint8_t>& mask,
                       const std::vector<float>& old, const std::vector<float>& refl,
                       const std::vector<float>& adv, bool supervised, double temp, double kl_coef,
                       double ent_coef) {
  const int V = ref.c.vocab_size, S = b.S();
  double total = 0;
  for (int s = 0; s < S; ++s) {
    auto z = ref.forward_seq(b.seq(s));
    int n_s = 0;
    for (int t = b.cu[s] + 1; t < b.cu[s + 1]; ++t) n_s += mask[t];
    for (int t = b.cu[s] + 1; t < b.cu[s + 1]; ++t) {
      if (!mask[t]) continue;
      const double w = 1.0 / (static_cast<double>(S) * n_s);  // seq-mean-token-mean
      const double* row = &z[static_cast<size_t>(t - 1 - b.cu[s]) * V];
      if (supervised) {
        total += w * -log_softmax(row, V, 1.0)[b.tokens[t]];
        continue;
      }
      auto ls = log_softmax(row, V, temp);
      const double logp = ls[b.tokens[t]];
      double H = 0;
      for (double v : ls) H -= std::exp(v) * v;
      const double ratio = std::exp(logp - old[t]);
      const double pg = -adv[s] * ratio;  // inputs keep the ratio inside the clip range
      const double d = refl[t] - logp;
      const double k3 = std::exp(d) - d - 1;
      total += w * (pg + kl_coef * k3 - ent_coef * H);
    }
  }
  return total;
}

static void gradient_check(bool supervised) {
  ModelConfig c = small_test_config();
  c.num_layers = 2;
  Policy pol(c, cpu_backend(), 1);
  WeightLayout L = WeightLayout::build(c);
  auto p = random_params(L, 11);
  pol.write_params(p.data());
  RefModel ref = make_ref(c, p);
  Packed b = random_packed({7, 5}, c.vocab_size, 12);
  const int T = static_cast<int>(b.tokens.size());
  std::vector<uint8_t> mask(T, 0);
  for (int t = 0; t < T; ++t) mask[t] = (t % 7) >= 2;  // a prompt-like prefix is masked out
  const double temp = 0.8, kl_coef = 0.1, ent_coef = 0.05;
  // old log-probs near the current ones so every ratio is inside [1-eps, 1+eps].
  std::vector<float> cur(T), old(T), refl(T);
  pol.forward_logprobs(b.view(), static_cast<float>(temp), cur.data(), nullptr);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  for (int t = 0; t < T; ++t) {
    old[t] = cur[t] + u(rng);
    refl[t] = cur[t] + 3 * u(rng);
  }
  std::vector<float> adv = {1.0f, -0.7f};
  TrainBatch tb;
  tb.seqs = b.view();
  tb.loss_mask = mask.data();
  tb.old_logp = old.data();
  tb.ref_logp = refl.data();
  tb.advantages = adv.data();
  LossSpec spec;
  spec.supervised = supervised;
  spec.agg = LossAgg::SeqMeanTokenMean;
  spec.ppo.temperature = static_cast<float>(temp);
  spec.ppo.kl = KlEstimator::K3;
  spec.ppo.kl_coef = static_cast<float>(kl_coef);
  spec.ppo.entropy_coef = static_cast<float>(ent_coef);
  PieceOptions opt;
  opt.track = false;
  PieceStats st = pol.accumulate(tb, spec, opt);
  std::vector<float> g(L.total);
  pol.read_grads(g.data());
  const double L0 = ref_loss(ref, b, mask, old, refl, adv, supervised, temp, kl_coef, ent_coef);
  CHECK_NEAR(st.loss, L0, 1e-4, 1e-3);
  CHECK(st.clip_low_frac == 0 && st.clip_high_frac == 0);
  // Finite differences on the float64 reference: all norm weights + random other entries.
  std::vector<size_t> idx;
  for (const auto& t : L.tensors)
    if (t.is_norm) for (size_t i = 0; i < t.numel; i += 3) idx.push_back(t.offset + i);
  std::mt19937 pick(9);
  for (int i = 0; i < 150; ++i) idx.push_back(pick() % L.total);
  double gmax = 0;
  for (float v : g) gmax = std::max(gmax, static_cast<double>(std::fabs(v)));
  int bad = 0;
  for (size_t i : idx) {
    const double h = 1e-5, keep = ref.p[i];
    ref.p[i] = keep + h;
    double lp = ref_loss(ref, b, mask, old, refl, adv, supervised, temp, kl_coef, ent_coef);
    ref.p[i] = keep - h;
    double lm = ref_loss(ref, b, mask, old, refl, adv, supervised, temp, kl_coef, ent_coef);
    ref.p[i] = keep;
    const double fd = (lp - lm) / (2 * h);
    if (std::fabs(fd - g[i]) > 2e-4 * gmax + 2e-3 * std::fabs(fd)) {
      if (++bad <= 5) CHECK_MSG(false, "param " << i << ": backward " << g[i] << " vs fd " << fd);
    }
  }
  CHECK_MSG(bad == 0, bad << " of " << idx.size() << " gradient entries disagree");
}

TEST(whole_model_gradient_check_ppo) { gradient_check(false); }
TEST(whole_model_gradient_check_supervised) { gradient_check(true); }

TEST(kv_cache_generation_matches_full_forward) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 1);
  auto p = random_params(WeightLayout::build(c), 21);
  pol.write_params(p.data());
  Packed prompts = random_packed({3, 8, 1}, c.vocab_size, 22);
  for (bool greedy : {true, false}) {
    const int B = 3, stride = 10;
    std::vector<int32_t> max_new = {10, 6, 9}, out(B * stride, -1), lens(B);
    std::vector<float> lp(B * stride);
    std::vector<uint64_t> ids = {100, 200, 300};
    std::vector<uint8_t> fin(B);
    GenerateRequest r;
    r.prompts = prompts.view();
    r.max_new = max_new.data();
    r.call_ids = ids.data();
    r.sampling.greedy = greedy;
    r.sampling.temperature = 0.7f;
    r.stride = stride;
    r.out_tokens = out.data();
    r.out_logp = lp.data();
    r.out_lengths = lens.data();
    r.out_finish = fin.data();
    pol.generate(r);
    for (int b = 0; b < B; ++b) {
      CHECK(lens[b] == max_new[b]);
      CHECK(fin[b] == 1);
      Packed full;
      full.tokens = std::vector<int32_t>(prompts.tokens.begin() + prompts.cu[b],
                                         prompts.tokens.begin() + prompts.cu[b + 1]);
      const int plen = static_cast<int>(full.tokens.size());
      for (int k = 0; k < lens[b]; ++k) full.tokens.push_back(out[b * stride + k]);
      full.cu = {0, static_cast<int32_t>(full.tokens.size())};
      std::vector<float> z(full.tokens.size() * c.vocab_size);
      pol.forward_logits(full.view(), z.data());
      for (int k = 0; k < lens[b]; ++k) {
        const float* row = &z[static_cast<size_t>(plen + k - 1) * c.vocab_size];
        std::vector<double> zd(row, row + c.vocab_size);
        auto ls = log_softmax(zd.data(), c.vocab_size, greedy ? 1.0 : 0.7);
        const int tok = out[b * stride + k];
        CHECK_NEAR(lp[b * stride + k], ls[tok], 1e-4, 0);
        if (greedy) {
          int arg = 0;
          for (int j = 1; j < c.vocab_size; ++j) if (zd[j] > zd[arg]) arg = j;
          CHECK_MSG(arg == tok || zd[arg] - zd[tok] < 1e-4, "row " << b << " step " << k);
        }
      }
    }
  }
}

static std::vector<int32_t> gen_rows(Policy& pol, const Packed& prompts, std::vector<uint64_t> ids,
                                     std::vector<float>* logp_out) {
  const int B = prompts.S(), stride = 12;
  std::vector<int32_t> max_new(B, 12), out(B * stride, -1), lens(B);
  std::vector<float> lp(B * stride, 0.0f);
  std::vector<uint8_t> fin(B);
  GenerateRequest r;
  r.prompts = prompts.view();
  r.max_new = max_new.data();
  r.call_ids = ids.data();
  r.sampling.temperature = 0.9f;
  r.sampling.seed = 77;
  r.stop_tokens = {5};
  r.stride = stride;
  r.out_tokens = out.data();
  r.out_logp = lp.data();
  r.out_lengths = lens.data();
  r.out_finish = fin.data();
  pol.generate(r);
  for (int b = 0; b < B; ++b) {
    for (int k = lens[b]; k < stride; ++k) { out[b * stride + k] = -1; lp[b * stride + k] = 0; }
    if (lens[b] > 0 && out[b * stride + lens[b] - 1] == 5) CHECK(fin[b] == 0);
  }
  if (logp_out) *logp_out = lp;
  return out;
}

TEST(generation_independent_of_batch_composition_and_threads) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 1);
  auto p = random_params(WeightLayout::build(c), 31);
  pol.write_params(p.data());
  Packed all = random_packed({4, 9, 2, 6}, c.vocab_size, 32);
  std::vector<uint64_t> ids = {11, 12, 13, 14};
  std::vector<float> lp_all;
  auto out_all = gen_rows(pol, all, ids, &lp_all);
  for (int b = 0; b < 4; ++b) {  // each row alone
    Packed one;
    one.tokens = all.seq(b).size() ? std::vector<int32_t>(all.tokens.begin() + all.cu[b], all.tokens.begin() + all.cu[b + 1]) : std::vector<int32_t>();
    one.cu = {0, static_cast<int32_t>(one.tokens.size())};
    std::vector<float> lp1;
    auto o1 = gen_rows(pol, one, {ids[b]}, &lp1);
    for (int k = 0; k < 12; ++k) {
      CHECK(o1[k] == out_all[b * 12 + k]);
      CHECK(lp1[k] == lp_all[b * 12 + k]);
    }
  }
  cpu::set_thread_local_num_threads(1);
  std::vector<float> lp_t1;
  auto out_t1 = gen_rows(pol, all, ids, &lp_t1);
  cpu::set_thread_local_num_threads(cpu::hardware_cores());
  CHECK(out_t1 == out_all);
  CHECK(lp_t1 == lp_all);
}

TEST(generation_sees_every_weight_change) {
  // Generation runs on a packed copy of the weights made on first use; every way the weights can
  // change (write_params, an optimizer step, copy_from) must be visible to the next generate
  // call: its output equals that of a fresh policy holding the same weights.
  ModelConfig c = small_test_config();
  const WeightLayout layout = WeightLayout::build(c);
  Packed prompts = random_packed({4, 7, 3}, c.vocab_size, 41);
  const std::vector<uint64_t> ids = {1, 2, 3};
  auto same_as_fresh = [&](Policy& pol, const char* what) {
    std::vector<float> w(layout.total);
    pol.read_params(w.data());
    Policy fresh(c, cpu_backend(), 99);
    fresh.write_params(w.data());
    std::vector<float> lp_a, lp_b;
    const auto a = gen_rows(pol, prompts, ids, &lp_a);
    const auto b = gen_rows(fresh, prompts, ids, &lp_b);
    CHECK_MSG(a == b && lp_a == lp_b, "generation after " << what << " used stale weights");
    return lp_a;
  };
  Policy pol(c, cpu_backend(), 1);
  const auto lp0 = same_as_fresh(pol, "construction");
  const int64_t workspace = pol.memory().current[static_cast<int>(MemCategory::Workspace)];
  CHECK(workspace > 0);
  auto p2 = random_params(layout, 42);
  pol.write_params(p2.data());
  CHECK(same_as_fresh(pol, "write_params") != lp0);
  // One GRPO step on a generated completion.
  std::vector<float> lp;
  gen_rows(pol, prompts, ids, &lp);
  Packed seqs = random_packed({6, 9}, c.vocab_size, 43);
  std::vector<uint8_t> mask(seqs.tokens.size(), 1);
  std::vector<float> old(seqs.tokens.size()), adv = {1.0f, -1.0f};
  pol.forward_logprobs(seqs.view(), 1.0f, old.data(), nullptr);
  TrainBatch tb;
  tb.seqs = seqs.view();
  tb.loss_mask = mask.data();
  tb.old_logp = old.data();
  tb.advantages = adv.data();
  pol.accumulate(tb, LossSpec{}, PieceOptions{});
  OptimParams op;
  op.lr = 1e-2f;
  pol.step(op);
  same_as_fresh(pol, "an optimizer step");
  Policy other(c, cpu_backend(), 7);
  pol.copy_from(other, false);
  same_as_fresh(pol, "copy_from");
  // The packed copy is workspace memory of this policy, rebuilt in place (not accumulated).
  CHECK(pol.memory().current[static_cast<int>(MemCategory::Workspace)] == workspace);
}

TEST(bad_inputs_throw_naming_the_argument) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 1);
  Packed b = random_packed({3, 3}, c.vocab_size, 1);
  std::vector<float> lp(6);
  b.tokens[4] = c.vocab_size;
  CHECK_THROWS(pol.forward_logprobs(b.view(), 1.0f, lp.data(), nullptr));
  b.tokens[4] = 0;
  b.cu = {0, 4, 3};
  CHECK_THROWS(pol.forward_logprobs(b.view(), 1.0f, lp.data(), nullptr));
  b.cu = {0, 3, 6};
  std::vector<uint8_t> mask(6, 1);
  std::vector<float> old(6, -1.0f), adv = {1.0f, NAN};
  TrainBatch tb{b.view(), mask.data(), old.data(), nullptr, adv.data()};
  try {
    pol.accumulate(tb, LossSpec{}, PieceOptions{});
    CHECK_MSG(false, "NaN advantage accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("advantages[1]") != std::string::npos);
  }
}
