// The core benchmark on the C++ API: per preset, (a) one full training step (forward,
// GRPO loss, backward, clip, AdamW) on 16 x 128 tokens with the first quarter of each sequence
// masked as prompt, vocab 320; (b) sampling 64 prompts x 32 tokens -> 64 new tokens at
// temperature 0.7 with the KV cache. Reports tokens/s, achieved GFLOP/s and MFU against the
// measured GEMM peak.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "train/policy.h"

using namespace troupe;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Matmul FLOPs per token of the forward pass (2 per multiply-add), excluding attention scores.
double dense_flops_per_token(const ModelConfig& c) {
  const double D = c.hidden_size, hd = c.head_dim, I = c.intermediate_size;
  const double per_layer = D * (c.num_heads + 2.0 * c.num_kv_heads) * hd + c.num_heads * hd * D + 3.0 * D * I;
  return 2.0 * (c.num_layers * per_layer + D * c.vocab_size);
}

// Causal attention FLOPs (QK^T and PV) of one sequence of length n, forward.
double attention_flops(const ModelConfig& c, double n) {
  return 2.0 * 2.0 * c.num_layers * c.num_heads * c.head_dim * (n * (n + 1) / 2.0);
}

struct Row {
  std::string preset;
  double train_tps, train_gflops, sample_tps, sample_gflops;
};

}  // namespace

int model_bench_main(int argc, char** argv) {
  std::string presets = "tiny,small,medium";
  int threads = cpu::hardware_cores(), repeats = 3;
  bool do_train = true, do_sample = true;  // --only train|sample, e.g. to profile one phase
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--presets") && i + 1 < argc) presets = argv[++i];
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      const std::string only = argv[++i];
      do_train = only == "train";
      do_sample = only == "sample";
    }
  }
  cpu::set_default_num_threads(threads);
  cpu::set_thread_local_num_threads(threads);
  const double peak = cpu::measure_gemm_peak(0.5).gflops;
  std::printf("GEMM peak (measured, %d threads): %.1f GFLOP/s\n", threads, peak);
  std::vector<Row> rows;
  std::stringstream names(presets);
  std::string name;
  while (std::getline(names, name, ',')) {
    ModelConfig c = preset_config(name, 320);
    Policy pol(c, cpu_backend(), 1);
    std::mt19937 rng(1);
    // (a) training step
    const int S = 16, L = 128;
    std::vector<int32_t> tok(S * L), cu(S + 1);
    for (auto& t : tok) t = rng() % 320;
    for (int s = 0; s <= S; ++s) cu[s] = s * L;
    std::vector<uint8_t> mask(S * L);
    for (int i = 0; i < S * L; ++i) mask[i] = (i % L) >= L / 4;
    std::vector<float> old(S * L), adv(S);
    PackedTokens pk{tok.data(), cu.data(), S};
    pol.forward_logprobs(pk, 1.0f, old.data(), nullptr);
    for (auto& a : adv) a = (rng() % 2) ? 1.0f : -1.0f;
    TrainBatch tb{pk, mask.data(), old.data(), nullptr, adv.data()};
    LossSpec spec;
    PieceOptions po;
    po.track = false;
    OptimParams op;
    std::vector<double> tt;
    for (int r = 0; r < (do_train ? repeats + 1 : 0); ++r) {
      double t0 = now();
      pol.accumulate(tb, spec, po);
      pol.step(op);
      if (r > 0) tt.push_back(now() - t0);
    }
    const double ttrain = do_train ? median(tt) : 0.0 / 0.0;
    const double train_flops = 3.0 * (S * L * dense_flops_per_token(c) + S * attention_flops(c, L));
    // (b) sampling
    const int B = 64, P = 32, N = 64;
    std::vector<int32_t> ptok(B * P), pcu(B + 1), mn(B, N), out(B * N), lens(B);
    for (auto& t : ptok) t = rng() % 320;
    for (int b = 0; b <= B; ++b) pcu[b] = b * P;
    std::vector<float> lp(B * N);
    std::vector<uint64_t> ids(B);
    std::vector<uint8_t> fin(B);
    for (int b = 0; b < B; ++b) ids[b] = b;
    GenerateRequest g;
    g.prompts = PackedTokens{ptok.data(), pcu.data(), B};
    g.max_new = mn.data();
    g.call_ids = ids.data();
    g.sampling.temperature = 0.7f;
    g.stride = N;
    g.out_tokens = out.data();
    g.out_logp = lp.data();
    g.out_lengths = lens.data();
    g.out_finish = fin.data();
    std::vector<double> ts;
    for (int r = 0; r < (do_sample ? repeats + 1 : 0); ++r) {
      double t0 = now();
      pol.generate(g);
      if (r > 0) ts.push_back(now() - t0);
    }
    const double tsample = do_sample ? median(ts) : 0.0 / 0.0;
    double sample_flops = B * P * dense_flops_per_token(c) + B * attention_flops(c, P);
    for (int k = 0; k < N; ++k) sample_flops += B * (dense_flops_per_token(c) + 4.0 * c.num_layers * c.num_heads * c.head_dim * (P + k + 1));
    rows.push_back({name, S * L / ttrain, train_flops / ttrain / 1e9, B * N / tsample,
                    sample_flops / tsample / 1e9});
  }
  std::printf("%-8s %12s %10s %6s %12s %10s %6s\n", "preset", "train tok/s", "GFLOP/s", "MFU",
              "sample tok/s", "GFLOP/s", "MFU");
  for (auto& r : rows)
    std::printf("%-8s %12.0f %10.1f %5.0f%% %12.0f %10.1f %5.0f%%\n", r.preset.c_str(), r.train_tps,
                r.train_gflops, 100 * r.train_gflops / peak, r.sample_tps, r.sample_gflops,
                100 * r.sample_gflops / peak);
  std::printf("{\"peak_gflops\":%.1f,\"threads\":%d,\"results\":[", peak, threads);
  for (size_t i = 0; i < rows.size(); ++i)
    std::printf("%s{\"preset\":\"%s\",\"train_tokens_per_s\":%.0f,\"train_gflops\":%.1f,"
                "\"sample_tokens_per_s\":%.0f,\"sample_gflops\":%.1f}",
                i ? "," : "", rows[i].preset.c_str(), rows[i].train_tps, rows[i].train_gflops,
                rows[i].sample_tps, rows[i].sample_gflops);
  std::printf("]}\n");
  return 0;
}
