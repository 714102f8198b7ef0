// Training-step behaviour of Policy: piece accumulation, gradient diagnostics, optimisation
// sanity, checkpoints and memory accounting.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <cstring>

#include "harness.h"
#include "model_fixtures.h"

using namespace troupe;
using namespace troupe::test;

namespace {

struct Batch {
  Packed b;
  std::vector<uint8_t> mask;
  std::vector<float> old, adv;
  TrainBatch view() const {
    TrainBatch t;
    t.seqs = b.view();
    t.loss_mask = mask.data();
    t.old_logp = old.data();
    t.advantages = adv.data();
    return t;
  }
};

Batch make_batch(Policy& pol, const std::vector<int>& lens, uint32_t seed) {
  Batch x;
  x.b = random_packed(lens, pol.config().vocab_size, seed);
  const int T = static_cast<int>(x.b.tokens.size());
  x.mask.assign(T, 0);
  for (int s = 0; s < x.b.S(); ++s)
    for (int t = x.b.cu[s] + (x.b.cu[s + 1] - x.b.cu[s]) / 4; t < x.b.cu[s + 1]; ++t) x.mask[t] = 1;
  x.old.resize(T);
  pol.forward_logprobs(x.b.view(), 1.0f, x.old.data(), nullptr);
  std::mt19937 rng(seed);
  for (int s = 0; s < x.b.S(); ++s) x.adv.push_back((rng() % 2) ? 1.0f : -1.0f);
  return x;
}

Batch slice(const Batch& x, int s0, int s1) {
  Batch y;
  const int t0 = x.b.cu[s0], t1 = x.b.cu[s1];
  y.b.tokens.assign(x.b.tokens.begin() + t0, x.b.tokens.begin() + t1);
  for (int s = s0; s <= s1; ++s) y.b.cu.push_back(x.b.cu[s] - t0);
  y.mask.assign(x.mask.begin() + t0, x.mask.begin() + t1);
  y.old.assign(x.old.begin() + t0, x.old.begin() + t1);
  y.adv.assign(x.adv.begin() + s0, x.adv.begin() + s1);
  return y;
}

std::string temp_dir(const char* tag) {
  std::string d = "/tmp/troupe-test-" + std::string(tag) + "-" + std::to_string(::getpid());
  ::mkdir(d.c_str(), 0755);
  return d;
}

}  // namespace

TEST(accumulating_in_pieces_equals_one_batch) {
  ModelConfig c = small_test_config();
  for (LossAgg agg : {LossAgg::TokenMean, LossAgg::SeqMeanTokenMean, LossAgg::SeqMeanTokenSum}) {
    Policy pol(c, cpu_backend(), 2);
    auto p = random_params(WeightLayout::build(c), 41);
    pol.write_params(p.data());
    Batch all = make_batch(pol, {8, 5, 11, 6}, 42);
    LossSpec spec;
    spec.agg = agg;
    PieceOptions whole;
    whole.track = false;
    pol.accumulate(all.view(), spec, whole);
    std::vector<float> g1(pol.num_parameters()), g2(pol.num_parameters());
    pol.read_grads(g1.data());
    pol.zero_grad();
    // Two pieces (as two roles) with the step-wide normalisers.
    int64_t tokens = 0;
    for (int s = 0; s < 4; ++s)
      for (int t = all.b.cu[s] + 1; t < all.b.cu[s + 1]; ++t) tokens += all.mask[t];
    spec.global_num_seqs = 4;
    spec.global_num_tokens = tokens;
    Batch a = slice(all, 0, 1), b = slice(all, 1, 4);
    PieceOptions pa, pb;
    pa.role = "voter";
    pb.role = "aggregator";
    pa.max_tokens_per_micro = 8;  // forces micro-batches of one sequence
    PieceStats sa = pol.accumulate(a.view(), spec, pa);
    PieceStats sb = pol.accumulate(b.view(), spec, pb);
    pol.read_grads(g2.data());
    double num = 0, den = 0;
    for (size_t i = 0; i < g1.size(); ++i) {
      num += (g1[i] - g2[i]) * double(g1[i] - g2[i]);
      den += double(g1[i]) * g1[i];
    }
    CHECK_MSG(std::sqrt(num / den) < 1e-5, "agg " << int(agg) << " rel diff " << std::sqrt(num / den));
    CHECK(sa.raw_grad_norm > 0 && sb.raw_grad_norm > 0);
    CHECK(!sa.has_ema && !sb.has_ema);
  }
}

TEST(piece_cosine_with_running_average_and_damping) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 2);
  auto p = random_params(WeightLayout::build(c), 51);
  pol.write_params(p.data());
  Batch x1 = make_batch(pol, {9, 7}, 52), x2 = make_batch(pol, {6, 10}, 53);
  const size_t n = pol.num_parameters();
  std::vector<float> g1(n), g2(n), g2d(n);
  LossSpec spec;
  PieceOptions o;
  o.role = "worker";
  o.ema_decay = 0.5f;
  PieceStats s1 = pol.accumulate(x1.view(), spec, o);
  pol.read_grads(g1.data());
  pol.zero_grad();
  CHECK(!s1.has_ema);
  PieceOptions plain;
  plain.track = false;
  pol.accumulate(x2.view(), spec, plain);  // g2 measured without touching the role's average
  pol.read_grads(g2.data());
  pol.zero_grad();
  o.damping_lambda = 0.5f;
  PieceStats s2 = pol.accumulate(x2.view(), spec, o);
  pol.read_grads(g2d.data());
  double d = 0, a = 0, b = 0;
  for (size_t i = 0; i < n; ++i) { d += double(g1[i]) * g2[i]; a += double(g1[i]) * g1[i]; b += double(g2[i]) * g2[i]; }
  const double cos = d / std::sqrt(a * b);
  CHECK(s2.has_ema);
  CHECK_NEAR(s2.cos_ema, cos, 1e-5, 0);
  CHECK_NEAR(s2.ema_norm, std::sqrt(a), 1e-6, 1e-5);
  CHECK_NEAR(s2.raw_grad_norm, std::sqrt(b), 1e-6, 1e-5);
  const double scale = 1.0 - 0.5 * std::min(1.0, std::max(0.0, cos));
  CHECK_NEAR(s2.damping_scale, scale, 1e-6, 0);
  for (size_t i = 0; i < n; i += 97) CHECK_NEAR(g2d[i], scale * g2[i], 1e-7, 1e-5);
}

TEST(supervised_training_fits_a_small_corpus) {
  ModelConfig c = preset_config("tiny", 64);
  Policy pol(c, cpu_backend(), 3);
  Packed corpus;
  corpus.cu.push_back(0);
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < 40; ++i) corpus.tokens.push_back((s * 7 + i * (s + 1)) % 64);
    corpus.cu.push_back(static_cast<int32_t>(corpus.tokens.size()));
  }
  std::vector<uint8_t> mask(corpus.tokens.size(), 1);
  TrainBatch tb;
  tb.seqs = corpus.view();
  tb.loss_mask = mask.data();
  LossSpec spec;
  spec.supervised = true;
  OptimParams op;
  op.lr = 3e-3f;
  op.weight_decay = 0.0f;
  double first = 0, last = 0;
  for (int it = 0; it < 40; ++it) {
    PieceStats s = pol.accumulate(tb, spec, PieceOptions{});
    StepStats st = pol.step(op);
    CHECK(!st.skipped);
    if (it == 0) first = s.loss;
    last = s.loss;
  }
  CHECK_MSG(last < 0.3 * first, "loss " << first << " -> " << last);
}

TEST(grpo_steps_raise_the_rewarded_tokens_probability) {
  ModelConfig c = preset_config("tiny", 16);
  Policy pol(c, cpu_backend(), 4);
  std::vector<int32_t> prompt = {1, 2, 3};
  auto p_even = [&]() {  // probability of an even first token after the prompt
    Packed pr;
    pr.tokens = prompt;
    pr.cu = {0, 3};
    std::vector<float> z(3 * c.vocab_size);
    pol.forward_logits(pr.view(), z.data());
    std::vector<double> row(z.begin() + 2 * c.vocab_size, z.end());
    auto ls = log_softmax(row.data(), c.vocab_size);
    double pe = 0;
    for (int j = 0; j < c.vocab_size; j += 2) pe += std::exp(ls[j]);
    return pe;
  };
  const double before = p_even();
  OptimParams op;
  op.lr = 2e-3f;
  uint64_t call = 0;
  for (int step = 0; step < 15; ++step) {
    const int G = 16;
    Packed pr;
    pr.cu.push_back(0);
    for (int g = 0; g < G; ++g) {
      pr.tokens.insert(pr.tokens.end(), prompt.begin(), prompt.end());
      pr.cu.push_back(static_cast<int32_t>(pr.tokens.size()));
    }
    std::vector<int32_t> max_new(G, 1), out(G), lens(G);
    std::vector<float> lp(G);
    std::vector<uint64_t> ids(G);
    std::vector<uint8_t> fin(G);
    for (auto& id : ids) id = call++;
    GenerateRequest r;
    r.prompts = pr.view();
    r.max_new = max_new.data();
    r.call_ids = ids.data();
    r.sampling.temperature = 1.0f;
    r.stride = 1;
    r.out_tokens = out.data();
    r.out_logp = lp.data();
    r.out_lengths = lens.data();
    r.out_finish = fin.data();
    pol.generate(r);
    // reward 1 for an even token; group-normalised advantage
    double mean = 0;
    for (int g = 0; g < G; ++g) mean += (out[g] % 2 == 0);
    mean /= G;
    double var = 0;
    for (int g = 0; g < G; ++g) var += std::pow((out[g] % 2 == 0) - mean, 2);
    const double sd = std::sqrt(var / (G - 1));
    Batch x;
    x.b.cu.push_back(0);
    for (int g = 0; g < G; ++g) {
      x.b.tokens.insert(x.b.tokens.end(), prompt.begin(), prompt.end());
      x.b.tokens.push_back(out[g]);
      x.b.cu.push_back(static_cast<int32_t>(x.b.tokens.size()));
      x.mask.insert(x.mask.end(), {0, 0, 0, 1});
      x.old.insert(x.old.end(), {0, 0, 0, lp[g]});
      x.adv.push_back(static_cast<float>(((out[g] % 2 == 0) - mean) / (sd + 1e-6)));
    }
    LossSpec spec;
    spec.ppo.temperature = 1.0f;
    pol.accumulate(x.view(), spec, PieceOptions{});
    pol.step(op);
  }
  const double after = p_even();
  CHECK_MSG(after > before + 0.25, "P(even) " << before << " -> " << after);
}

TEST(checkpoint_round_trip_is_bit_exact) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 5);
  Batch x = make_batch(pol, {8, 6}, 61);
  pol.accumulate(x.view(), LossSpec{}, PieceOptions{});
  pol.step(OptimParams{});
  const std::string dir = temp_dir("ckpt");
  pol.save(dir, true);
  auto loaded = Policy::load(dir, cpu_backend());
  const size_t n = pol.num_parameters();
  std::vector<float> a(n), b(n);
  pol.read_params(a.data());
  loaded->read_params(b.data());
  CHECK(std::memcmp(a.data(), b.data(), n * sizeof(float)) == 0);
  CHECK(loaded->optimizer_steps() == 1);
  // The same next step on both gives bit-identical parameters (optimizer state restored).
  pol.accumulate(x.view(), LossSpec{}, PieceOptions{});
  pol.step(OptimParams{});
  loaded->accumulate(x.view(), LossSpec{}, PieceOptions{});
  loaded->step(OptimParams{});
  pol.read_params(a.data());
  loaded->read_params(b.data());
  CHECK(std::memcmp(a.data(), b.data(), n * sizeof(float)) == 0);
  std::system(("rm -rf " + dir).c_str());
  CHECK_THROWS(Policy::load("/tmp/definitely-not-a-checkpoint-dir", cpu_backend()));
}

TEST(memory_accounting_by_category) {
  ModelConfig c = small_test_config();
  Policy pol(c, cpu_backend(), 6);
  MemorySnapshot m0 = pol.memory();
  const int64_t wbytes = pol.num_parameters() * 4;
  CHECK(m0.current[int(MemCategory::Weights)] == wbytes);
  CHECK(m0.current[int(MemCategory::Grads)] == 0);
  CHECK(m0.current[int(MemCategory::Optimizer)] == 0);
  Batch x = make_batch(pol, {8, 6}, 71);
  PieceOptions o;
  o.role = "r";
  pol.accumulate(x.view(), LossSpec{}, o);
  pol.step(OptimParams{});
  MemorySnapshot m1 = pol.memory();
  // step gradient + piece gradient + one role running average
  CHECK(m1.current[int(MemCategory::Grads)] == 3 * wbytes);
  CHECK(m1.current[int(MemCategory::Optimizer)] == 2 * wbytes);
  CHECK(m1.peak[int(MemCategory::Activations)] > 0);
  CHECK(m1.peak[int(MemCategory::KvCache)] == 0);

  {
    Packed pr = random_packed({4, 4}, c.vocab_size, 1);
    std::vector<int32_t> mn = {3, 3}, out(6), lens(2);
    std::vector<float> lp(6);
    std::vector<uint64_t> ids = {1, 2};
    std::vector<uint8_t> fin(2);
    GenerateRequest r{pr.view(), mn.data(), ids.data(), SampleParams{}, {}, 3, out.data(), lp.data(), lens.data(), fin.data()};
    pol.generate(r);
  }
  MemorySnapshot m2 = pol.memory();
  CHECK(m2.peak[int(MemCategory::KvCache)] > 0);
  CHECK(m2.current[int(MemCategory::KvCache)] == 0);  // freed after the call
  pol.release_training_state();
  MemorySnapshot m3 = pol.memory();
  CHECK(m3.current[int(MemCategory::Grads)] == 0 && m3.current[int(MemCategory::Optimizer)] == 0);
}
