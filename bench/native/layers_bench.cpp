// `troupe_native_bench layers [--preset tiny|small|medium|all] [--threads 1,2] [--seconds S]`
// Times the CPU layer and attention kernels (everything but GEMM and the loss) on one layer of a
// training micro-batch of each preset: T = 2048 tokens as 16 sequences of 128, decode with 64
// rows of ~100 cached positions. A "qwen3" row set adds Qwen3-0.6B's attention geometry (hd 128,
// 16 q heads, 8 kv heads) on one 2048-token sequence. Reports median ms per call, and GFLOP/s
// for attention (causal flops: 4*hd per visible (query, key) pair forward, 10*hd backward, as
// flash-attention counts; the kernel's tile padding is not counted). Reports wall and process
// CPU time per call (medians): on a shared machine the CPU time at one thread is the kernel's
// own cost. Human table, then one JSON line.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/parallel.h"

namespace {

namespace cpu = troupe::cpu;
using clock_type = std::chrono::steady_clock;

struct Geometry {
  const char* name;
  int hidden, mlp, heads, kv_heads, head_dim;
  int seqs, seq_len;
};
const Geometry kGeometries[] = {{"tiny", 128, 384, 4, 2, 32, 16, 128},
                                {"small", 256, 768, 8, 4, 32, 16, 128},
                                {"medium", 512, 1536, 8, 4, 64, 16, 128},
                                {"qwen3", 1024, 3072, 16, 8, 128, 1, 2048}};
constexpr int kDecodeRows = 64, kDecodeMaxLen = 128, kVocab = 320;

// CPU time of the whole process (all threads, spinning included).
double process_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// Median wall time and median process CPU time per call. On a shared machine the wall time
// includes time the kernel was descheduled; at one thread the CPU time is the kernel's own cost.
struct Timing {
  double wall_ms, cpu_ms;
};
Timing time_call(const std::function<void()>& call, double seconds) {
  call();  // warm-up: page faults, scratch buffers, thread pool
  std::vector<double> wall, cpu;
  const auto end = clock_type::now() + std::chrono::duration<double>(seconds);
  while (wall.size() < 5 || (clock_type::now() < end && wall.size() < 5000)) {
    const double c0 = process_cpu_ms();
    const auto t0 = clock_type::now();
    call();
    wall.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
    cpu.push_back(process_cpu_ms() - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}

std::vector<float> filled(size_t n, float lo, float hi, unsigned seed) {
  std::vector<float> v(n);
  unsigned x = seed * 2654435761u + 1;
  for (auto& e : v) {
    x = x * 1664525u + 1013904223u;
    e = lo + (hi - lo) * static_cast<float>(x >> 8) / 16777216.0f;
  }
  return v;
}

struct Row {
  std::string kernel;
  double ms, cpu_ms, gflops;  // gflops (from wall time) < 0: not reported
};

std::vector<Row> run_geometry(const Geometry& g, double seconds) {
  const int T = g.seqs * g.seq_len, H = g.hidden, I = g.mlp;
  const int Hq = g.heads, Hkv = g.kv_heads, hd = g.head_dim, heads = Hq + 2 * Hkv;
  const size_t qkv_n = static_cast<size_t>(T) * heads * hd;
  std::vector<int32_t> cu(g.seqs + 1), pos(T), ids(T);
  for (int s = 0; s <= g.seqs; ++s) cu[s] = s * g.seq_len;
  for (int t = 0; t < T; ++t) pos[t] = t % g.seq_len, ids[t] = (t * 7919) % kVocab;
  auto x = filled(static_cast<size_t>(T) * H, -1, 1, 1), dy = filled(x.size(), -1, 1, 2);
  auto w = filled(H, 0.5f, 1.5f, 3), y = x, dx = x, dw = w;
  std::vector<float> rstd(T);
  auto qkv = filled(qkv_n, -2, 2, 4), qkv2 = qkv, dqkv = filled(qkv_n, -1, 1, 5), dqkv2 = qkv;
  auto qw = filled(hd, 0.5f, 1.5f, 6), kw = qw, dqw = qw, dkw = qw;
  std::vector<float> qk_rstd(static_cast<size_t>(T) * (Hq + Hkv));
  std::vector<float> cos_t(static_cast<size_t>(g.seq_len) * hd / 2), sin_t(cos_t.size());
  for (int p = 0; p < g.seq_len; ++p)
    for (int i = 0; i < hd / 2; ++i) {
      const double a = p * std::pow(1e6, -2.0 * i / hd);
      cos_t[p * hd / 2 + i] = static_cast<float>(std::cos(a));
      sin_t[p * hd / 2 + i] = static_cast<float>(std::sin(a));
    }
  auto gu = filled(static_cast<size_t>(T) * 2 * I, -4, 4, 7), dgu = gu;
  auto h = filled(static_cast<size_t>(T) * I, -1, 1, 8), dh = h;
  const size_t attn_n = static_cast<size_t>(T) * Hq * hd;
  auto out = filled(attn_n, -1, 1, 9), dout = filled(attn_n, -1, 1, 10);
  std::vector<float> lse(static_cast<size_t>(T) * Hq);
  auto table = filled(static_cast<size_t>(kVocab) * H, -1, 1, 11), dtable = table;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Attention inputs are realistic only after q/k norm (unit-RMS heads): run it once.
  cpu::qk_norm_rope_forward(qkv.data(), qw.data(), kw.data(), pos.data(), cos_t.data(),
                            sin_t.data(), T, Hq, Hkv, hd, 1e-6f, qkv2.data(), qk_rstd.data());
  cpu::attention_forward(qkv2.data(), cu.data(), g.seqs, g.seq_len, T, Hq, Hkv, hd, scale,
                         out.data(), lse.data());
  // Decode: 64 rows, row b attends to 100 - (b % 8) * 8 cached positions of its own slot.
  const int B = kDecodeRows;
  std::vector<int32_t> slots(B), lengths(B), dpos(B);
  for (int b = 0; b < B; ++b) {
    slots[b] = b, lengths[b] = 100 - (b % 8) * 8;
    dpos[b] = lengths[b] - 1;
  }
  const size_t cache_n = static_cast<size_t>(B) * kDecodeMaxLen * Hkv * hd;
  auto kc = filled(cache_n, -1, 1, 12), vc = filled(cache_n, -1, 1, 13);
  auto dec_qkv = filled(static_cast<size_t>(B) * heads * hd, -1, 1, 14);
  std::vector<float> dec_out(static_cast<size_t>(B) * Hq * hd);

  double pairs = 0;  // causal (query, key) pairs per head
  for (int s = 0; s < g.seqs; ++s) pairs += 0.5 * g.seq_len * (g.seq_len + 1.0);
  const double attn_fwd_flop = 4.0 * hd * pairs * Hq, attn_bwd_flop = 2.5 * attn_fwd_flop;

  std::vector<Row> rows;
  auto time = [&](const char* name, double flop, const std::function<void()>& f) {
    const Timing t = time_call(f, seconds);
    rows.push_back({name, t.wall_ms, t.cpu_ms, flop > 0 ? flop / t.wall_ms * 1e-6 : -1.0});
  };
  const bool attention_only = std::string(g.name) == "qwen3";
  if (!attention_only) {
    time("embedding_forward", 0, [&] {
      cpu::embedding_forward(ids.data(), T, table.data(), H, y.data());
    });
    time("embedding_backward", 0, [&] {
      cpu::embedding_backward(ids.data(), T, dy.data(), H, dtable.data());
    });
    time("rmsnorm_forward", 0, [&] {
      cpu::rmsnorm_forward(x.data(), w.data(), T, H, 1e-6f, y.data(), rstd.data());
    });
    time("rmsnorm_backward", 0, [&] {
      cpu::rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), T, H, dx.data(), dw.data());
    });
    time("add_inplace", 0, [&] { cpu::add_inplace(dx.data(), dy.data(), x.size()); });
    time("swiglu_forward", 0, [&] { cpu::swiglu_forward(gu.data(), T, I, h.data()); });
    time("swiglu_backward", 0, [&] {
      cpu::swiglu_backward(dh.data(), gu.data(), T, I, dgu.data());
    });
  }
  time("qk_norm_rope_forward", 0, [&] {
    cpu::qk_norm_rope_forward(qkv.data(), qw.data(), kw.data(), pos.data(), cos_t.data(),
                              sin_t.data(), T, Hq, Hkv, hd, 1e-6f, qkv2.data(), qk_rstd.data());
  });
  time("qk_norm_rope_backward", 0, [&] {
    cpu::qk_norm_rope_backward(dqkv.data(), qkv.data(), qw.data(), kw.data(), pos.data(),
                               cos_t.data(), sin_t.data(), qk_rstd.data(), T, Hq, Hkv, hd,
                               dqkv2.data(), dqw.data(), dkw.data());
  });
  time("attention_forward", attn_fwd_flop, [&] {
    cpu::attention_forward(qkv2.data(), cu.data(), g.seqs, g.seq_len, T, Hq, Hkv, hd, scale,
                           out.data(), lse.data());
  });
  time("attention_backward", attn_bwd_flop, [&] {
    cpu::attention_backward(dout.data(), qkv2.data(), out.data(), lse.data(), cu.data(), g.seqs,
                            g.seq_len, T, Hq, Hkv, hd, scale, dqkv2.data());
  });
  if (!attention_only) {
    time("kv_cache_write(64)", 0, [&] {
      cpu::kv_cache_write(dec_qkv.data(), slots.data(), dpos.data(), B, Hq, Hkv, hd, kDecodeMaxLen,
                          kc.data(), vc.data());
    });
    time("decode_attention(64)", 0, [&] {
      cpu::decode_attention(dec_qkv.data(), kc.data(), vc.data(), slots.data(), lengths.data(), B,
                            Hq, Hkv, hd, kDecodeMaxLen, scale, dec_out.data());
    });
  }
  return rows;
}

}  // namespace

int layers_bench_main(int argc, char** argv) {
  std::string preset = "all";
  std::vector<int> threads = {1, 2};
  double seconds = 0.3;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--preset" && i + 1 < argc) {
      preset = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      threads.clear();
      for (const char* p = argv[++i]; *p;) {
        threads.push_back(std::max(1, std::atoi(p)));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    }
  }
  const int saved_threads = cpu::num_threads();
  std::string json = "{\"bench\":\"layers\",\"runs\":[";
  bool first = true, any = false;
  for (int nt : threads) {
    cpu::set_thread_local_num_threads(nt);
    for (const Geometry& g : kGeometries) {
      if (preset != "all" && preset != g.name) continue;
      any = true;
      std::printf("\n%s (T=%d as %dx%d, hidden %d, mlp %d, heads %d/%d, hd %d)  threads=%d\n",
                  g.name, g.seqs * g.seq_len, g.seqs, g.seq_len, g.hidden, g.mlp, g.heads,
                  g.kv_heads, g.head_dim, nt);
      std::printf("  %-24s %10s %10s %9s\n", "kernel", "wall ms", "cpu ms", "GFLOP/s");
      for (const Row& r : run_geometry(g, seconds)) {
        if (r.gflops >= 0)
          std::printf("  %-24s %10.3f %10.3f %9.1f\n", r.kernel.c_str(), r.ms, r.cpu_ms, r.gflops);
        else
          std::printf("  %-24s %10.3f %10.3f %9s\n", r.kernel.c_str(), r.ms, r.cpu_ms, "");
        char buf[320];
        std::snprintf(buf, sizeof buf,
                      "%s{\"preset\":\"%s\",\"threads\":%d,\"kernel\":\"%s\",\"ms\":%.4f,"
                      "\"cpu_ms\":%.4f%s",
                      first ? "" : ",", g.name, nt, r.kernel.c_str(), r.ms, r.cpu_ms,
                      r.gflops >= 0 ? "" : "}");
        json += buf;
        if (r.gflops >= 0) {
          std::snprintf(buf, sizeof buf, ",\"gflops\":%.2f}", r.gflops);
          json += buf;
        }
        first = false;
      }
    }
  }
  cpu::set_thread_local_num_threads(saved_threads);
  if (!any) {
    std::fprintf(stderr, "layers bench: unknown preset '%s' (tiny, small, medium, qwen3, all)\n",
                 preset.c_str());
    return 2;
  }
  std::printf("%s]}\n", json.c_str());
  return 0;
}
