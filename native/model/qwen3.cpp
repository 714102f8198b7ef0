#include "qwen3.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../core/philox.h"

namespace troupe {

Qwen3Model::Qwen3Model(const ModelConfig& c, Backend* backend)
    : cfg(c), layout(WeightLayout::build(c)), be(backend) {
  cfg.validate();
  params.ensure(be, &tracker, MemCategory::Weights, layout.total * sizeof(float));
  build_rope();
}

// Hugging Face's init: N(0, 0.02) for linear and embedding weights, 1 for RMSNorm weights.
// Each element's value is a pure function of (seed, tensor index, element index).
void Qwen3Model::init_random(uint64_t seed) {
  std::vector<float> host(layout.total);
  for (size_t ti = 0; ti < layout.tensors.size(); ++ti) {
    const auto& t = layout.tensors[ti];
    float* dst = host.data() + t.offset;
    if (t.is_norm) {
      std::fill(dst, dst + t.numel, 1.0f);
      continue;
    }
    for (size_t i = 0; i < t.numel; i += 2) {
      Philox4 r = philox4x32_10(static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32),
                                static_cast<uint32_t>(ti), 0x1417u, static_cast<uint32_t>(seed),
                                static_cast<uint32_t>(seed >> 32));
      // Box-Muller on two open-interval uniforms.
      double u1 = uint_to_unit_open(r.v[0]), u2 = uint_to_unit_open(r.v[1]);
      double rad = std::sqrt(-2.0 * std::log(u1)), ang = 6.283185307179586 * u2;
      dst[i] = static_cast<float>(0.02 * rad * std::cos(ang));
      if (i + 1 < t.numel) dst[i + 1] = static_cast<float>(0.02 * rad * std::sin(ang));
    }
  }
  be->upload(params.data(), host.data(), layout.total * sizeof(float));
  params_changed();
}

// Rotary tables computed the way Hugging Face does (inv_freq and angle in float32), so logits
// agree with transformers to float rounding; cos/sin themselves are evaluated in double. The
// table covers max_position_embeddings once, so concurrent inference never sees it reallocated.
void Qwen3Model::build_rope() {
  const int n = cfg.max_position_embeddings, half = cfg.head_dim / 2;
  std::vector<float> c(static_cast<size_t>(n) * half), s(c.size());
  for (int i = 0; i < half; ++i) {
    float expo = static_cast<float>(2 * i) / static_cast<float>(cfg.head_dim);
    float inv = 1.0f / static_cast<float>(std::pow(cfg.rope_theta, static_cast<double>(expo)));
    for (int p = 0; p < n; ++p) {
      float ang = static_cast<float>(p) * inv;
      c[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(static_cast<double>(ang)));
      s[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(static_cast<double>(ang)));
    }
  }
  rope_cos.ensure(be, &tracker, MemCategory::Workspace, c.size() * sizeof(float));
  rope_sin.ensure(be, &tracker, MemCategory::Workspace, s.size() * sizeof(float));
  be->upload(rope_cos.data(), c.data(), c.size() * sizeof(float));
  be->upload(rope_sin.data(), s.data(), s.size() * sizeof(float));
  rope_len = n;
}

void Qwen3Model::check_positions(int max_pos) const {
  if (max_pos > rope_len)
    throw std::invalid_argument("sequence of " + std::to_string(max_pos) +
                                " tokens exceeds max_position_embeddings = " +
                                std::to_string(rope_len));
}

void Qwen3Model::ensure_grads() {
  if (grads.empty()) {
    grads.ensure(be, &tracker, MemCategory::Grads, layout.total * sizeof(float));
    be->zero(grads.data(), grads.bytes());
  }
}

void Qwen3Model::ensure_optimizer() {
  if (adam_m.empty()) {
    adam_m.ensure(be, &tracker, MemCategory::Optimizer, layout.total * sizeof(float));
    adam_v.ensure(be, &tracker, MemCategory::Optimizer, layout.total * sizeof(float));
    be->zero(adam_m.data(), adam_m.bytes());
    be->zero(adam_v.data(), adam_v.bytes());
  }
}

int Qwen3Model::logits_chunk_rows() const {
  // Bound the logits buffer to ~32 MB so a 152k vocabulary never needs [T, V] at once.
  return std::max(16, static_cast<int>((size_t(8) << 20) / static_cast<size_t>(cfg.vocab_size)));
}

void Qwen3Model::reserve(Activations& a, int T, bool keep, MemCategory cat) {
  const int L = cfg.num_layers, D = cfg.hidden_size, hd = cfg.head_dim;
  const int Hq = cfg.num_heads, Hkv = cfg.num_kv_heads, I = cfg.intermediate_size;
  const size_t Ht = static_cast<size_t>(Hq + 2 * Hkv);
  if (a.capacity >= T && a.layers_kept == (keep ? L : 1)) return;
  const size_t t = static_cast<size_t>(T), nl = keep ? L : 1, f = sizeof(float);
  a.capacity = T;
  a.layers_kept = keep ? L : 1;
  a.res.ensure(be, &tracker, cat, (keep ? L + 1 : 1) * t * D * f);
  a.ln1.ensure(be, &tracker, cat, nl * t * D * f);
  a.rstd1.ensure(be, &tracker, cat, nl * t * f);
  a.qkv_raw.ensure(be, &tracker, cat, nl * t * Ht * hd * f);
  a.qkv.ensure(be, &tracker, cat, nl * t * Ht * hd * f);
  a.qk_rstd.ensure(be, &tracker, cat, nl * t * (Hq + Hkv) * f);
  a.att.ensure(be, &tracker, cat, nl * t * Hq * hd * f);
  a.lse.ensure(be, &tracker, cat, nl * t * Hq * f);
  a.mid.ensure(be, &tracker, cat, nl * t * D * f);
  a.ln2.ensure(be, &tracker, cat, nl * t * D * f);
  a.rstd2.ensure(be, &tracker, cat, nl * t * f);
  a.gu.ensure(be, &tracker, cat, nl * t * 2 * I * f);
  a.h.ensure(be, &tracker, cat, nl * t * I * f);
  a.fnorm.ensure(be, &tracker, cat, t * D * f);
  a.frstd.ensure(be, &tracker, cat, t * f);
  const int chunk = std::min(T, logits_chunk_rows());
  a.logits.ensure(be, &tracker, cat, static_cast<size_t>(chunk) * cfg.vocab_size * f);
  a.ids.ensure(be, &tracker, cat, (4 * t + 8) * sizeof(int32_t));
  a.loss_in.ensure(be, &tracker, cat, 4 * t * f);
  a.stats.ensure(be, &tracker, cat, t * kTokenStatCols * f);
  a.dln.ensure(be, &tracker, cat, t * D * f);
  if (keep) {
    a.dx.ensure(be, &tracker, cat, t * D * f);
    a.dqkv.ensure(be, &tracker, cat, t * Ht * hd * f);
    a.dqkv_raw.ensure(be, &tracker, cat, t * Ht * hd * f);
    a.datt.ensure(be, &tracker, cat, t * Hq * hd * f);
    a.dgu.ensure(be, &tracker, cat, t * 2 * I * f);
    a.dh.ensure(be, &tracker, cat, t * I * f);
  }
}

DeviceBatch Qwen3Model::upload_batch(Activations& a, const int32_t* tokens, const int32_t* cu,
                                     int S) {
  DeviceBatch b;
  b.S = S;
  b.T = cu[S];
  std::vector<int32_t> host(static_cast<size_t>(2 * b.T + S + 1));
  std::copy(tokens, tokens + b.T, host.begin());
  for (int s = 0; s < S; ++s) {
    b.max_seqlen = std::max(b.max_seqlen, cu[s + 1] - cu[s]);
    for (int t = cu[s]; t < cu[s + 1]; ++t) host[b.T + t] = t - cu[s];
  }
  std::copy(cu, cu + S + 1, host.begin() + 2 * b.T);
  check_positions(b.max_seqlen);
  // Room for the batch ids plus one int32 per token that callers use for targets.
  const size_t need = (host.size() + static_cast<size_t>(b.T) + 8) * sizeof(int32_t);
  if (a.ids.bytes() < need) a.ids.ensure(be, &tracker, MemCategory::Activations, need);
  be->upload(a.ids.data(), host.data(), host.size() * sizeof(int32_t));
  b.tokens = a.ids.i32();
  b.positions = a.ids.i32() + b.T;
  b.cu_seqlens = a.ids.i32() + 2 * b.T;
  return b;
}

DeviceBatch Qwen3Model::upload_decode(Activations& a, const int32_t* tokens,
                                      const int32_t* positions, const int32_t* slots,
                                      const int32_t* lengths, int n, const int32_t** slots_dev,
                                      const int32_t** lengths_dev) {
  DeviceBatch b;
  b.T = n;
  b.S = n;
  b.max_seqlen = 1;
  std::vector<int32_t> host(static_cast<size_t>(4 * n));
  int max_pos = 0;
  for (int i = 0; i < n; ++i) {
    host[i] = tokens[i];
    host[n + i] = positions[i];
    host[2 * n + i] = slots[i];
    host[3 * n + i] = lengths[i];
    max_pos = std::max(max_pos, positions[i] + 1);
  }
  check_positions(max_pos);
  if (a.ids.bytes() < host.size() * sizeof(int32_t))
    a.ids.ensure(be, &tracker, MemCategory::Activations, host.size() * sizeof(int32_t));
  be->upload(a.ids.data(), host.data(), host.size() * sizeof(int32_t));
  b.tokens = a.ids.i32();
  b.positions = a.ids.i32() + n;
  *slots_dev = a.ids.i32() + 2 * n;
  *lengths_dev = a.ids.i32() + 3 * n;
  return b;
}

void Qwen3Model::plan_packed_linears() {
  const int L = cfg.num_layers, D = cfg.hidden_size, hd = cfg.head_dim, I = cfg.intermediate_size;
  const int qkv_n = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd, att_n = cfg.num_heads * hd;
  PackedLinears& p = packed_;
  p.planned = true;
  p.qkv.assign(L, 0), p.o.assign(L, 0), p.gate_up.assign(L, 0), p.down.assign(L, 0);
  std::vector<std::pair<PackedLinears::Entry, size_t*>> plan;
  for (int l = 0; l < L; ++l) {
    const LayerOffsets& lo = layout.layers[l];
    plan.push_back({{lo.qkv, qkv_n, D, 0}, &p.qkv[l]});
    plan.push_back({{lo.o_proj, D, att_n, 0}, &p.o[l]});
    plan.push_back({{lo.gate_up, 2 * I, D, 0}, &p.gate_up[l]});
    plan.push_back({{lo.down, D, I, 0}, &p.down[l]});
  }
  plan.push_back({{layout.lm_head, cfg.vocab_size, D, 0}, &p.lm_head});
  size_t total = 0;
  for (auto& [e, slot] : plan) {
    const size_t bytes = be->packed_weight_bytes(e.N, e.K);
    if (bytes == 0) return;  // the backend has no packed layout: total stays 0
    e.offset = *slot = total;
    total += (bytes + 63) / 64 * 64;
    p.entries.push_back(e);
  }
  if (total <= kMaxPackedBytes) p.total = total;
}

const PackedLinears* Qwen3Model::packed_linears() {
  std::lock_guard lk(pack_mu_);
  if (!packed_.planned) plan_packed_linears();
  if (packed_.total == 0) return nullptr;
  if (packed_.version != params_version) {
    packed_.buf.ensure(be, &tracker, MemCategory::Workspace, packed_.total);
    for (const PackedLinears::Entry& e : packed_.entries)
      be->pack_weight(W(e.w_off), e.N, e.K, static_cast<char*>(packed_.buf.data()) + e.offset);
    packed_.version = params_version;
  }
  return &packed_;
}

void Qwen3Model::linear(int T, int N, int K, const float* x, size_t w_off, const PackedLinears* pw,
                        size_t packed_off, float beta, float* y) {
  if (pw)
    be->gemm_packed_weight(T, N, K, 1.0f, x, K,
                           static_cast<const char*>(pw->buf.data()) + packed_off, beta, y, N);
  else
    be->gemm(false, true, T, N, K, 1.0f, x, K, W(w_off), K, beta, y, N);
}

void Qwen3Model::forward_hidden(Activations& a, const DeviceBatch& b, bool keep, const KvWrite* kv,
                                const PackedLinears* pw) {
  const int L = cfg.num_layers, D = cfg.hidden_size, hd = cfg.head_dim, T = b.T;
  const int Hq = cfg.num_heads, Hkv = cfg.num_kv_heads, I = cfg.intermediate_size;
  const int Ht = Hq + 2 * Hkv, qkv_n = Ht * hd;
  const size_t td = static_cast<size_t>(T) * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto slot = [&](const DeviceBuffer& buf, int l, size_t per_token) {
    return buf.f32() + (keep ? static_cast<size_t>(l) : 0) * T * per_token;
  };
  // Training keeps every layer's residual input and mid-layer sum for the backward. Inference
  // keeps neither: the residual stream is updated in place (the o_proj and down GEMMs add into
  // it with beta = 1), which gives the same bits without two copies per layer.
  auto res = [&](int l) { return a.res.f32() + (keep ? static_cast<size_t>(l) : 0) * td; };

  be->embedding_forward(b.tokens, T, W(layout.embed), D, res(0));
  for (int l = 0; l < L; ++l) {
    const LayerOffsets& lo = layout.layers[l];
    float *x = res(l), *ln1 = slot(a.ln1, l, D), *qkv_raw = slot(a.qkv_raw, l, qkv_n);
    float *qkv = slot(a.qkv, l, qkv_n), *att = slot(a.att, l, Hq * hd), *mid = slot(a.mid, l, D);
    float *ln2 = slot(a.ln2, l, D), *gu = slot(a.gu, l, 2 * I), *h = slot(a.h, l, I);
    be->rmsnorm_forward(x, W(lo.input_norm), T, D, cfg.rms_norm_eps, ln1, slot(a.rstd1, l, 1));
    linear(T, qkv_n, D, ln1, lo.qkv, pw, pw ? pw->qkv[l] : 0, 0.0f, qkv_raw);
    be->qk_norm_rope_forward(qkv_raw, W(lo.q_norm), W(lo.k_norm), b.positions, rope_cos.f32(),
                             rope_sin.f32(), T, Hq, Hkv, hd, cfg.rms_norm_eps, qkv,
                             slot(a.qk_rstd, l, Hq + Hkv));
    if (kv) be->kv_cache_write(qkv, kv->slots, b.positions, T, Hq, Hkv, hd, kv->max_len,
                               kv->k_cache[l], kv->v_cache[l]);
    if (kv && kv->lengths)
      be->decode_attention(qkv, kv->k_cache[l], kv->v_cache[l], kv->slots, kv->lengths, T, Hq,
                           Hkv, hd, kv->max_len, scale, att);
    else
      be->attention_forward(qkv, b.cu_seqlens, b.S, b.max_seqlen, T, Hq, Hkv, hd, scale, att,
                            slot(a.lse, l, Hq));
    if (!keep) mid = x;
    else be->copy(mid, x, td * sizeof(float));
    linear(T, D, Hq * hd, att, lo.o_proj, pw, pw ? pw->o[l] : 0, 1.0f, mid);
    be->rmsnorm_forward(mid, W(lo.post_norm), T, D, cfg.rms_norm_eps, ln2, slot(a.rstd2, l, 1));
    linear(T, 2 * I, D, ln2, lo.gate_up, pw, pw ? pw->gate_up[l] : 0, 0.0f, gu);
    be->swiglu_forward(gu, T, I, h);
    float* out = res(l + 1);
    if (out != mid) be->copy(out, mid, td * sizeof(float));
    linear(T, D, I, h, lo.down, pw, pw ? pw->down[l] : 0, 1.0f, out);
  }
  be->rmsnorm_forward(res(L), W(layout.final_norm), T, D, cfg.rms_norm_eps, a.fnorm.f32(),
                      a.frstd.f32());
}

void Qwen3Model::lm_head_forward(Activations& a, int r0, int n) {
  const int D = cfg.hidden_size, V = cfg.vocab_size;
  be->gemm(false, true, n, V, D, 1.0f, a.fnorm.f32() + static_cast<size_t>(r0) * D, D,
           W(layout.lm_head), D, 0.0f, a.logits.f32(), V);
}

void Qwen3Model::lm_head_backward(Activations& a, int r0, int n, float* g) {
  const int D = cfg.hidden_size, V = cfg.vocab_size;
  // d fnorm rows = dlogits @ W_lm ; dW_lm += dlogits^T @ fnorm rows
  be->gemm(false, false, n, D, V, 1.0f, a.logits.f32(), V, W(layout.lm_head), D, 0.0f,
           a.dln.f32() + static_cast<size_t>(r0) * D, D);
  be->gemm(true, false, V, D, n, 1.0f, a.logits.f32(), V,
           a.fnorm.f32() + static_cast<size_t>(r0) * D, D, 1.0f, g + layout.lm_head, D);
}

void Qwen3Model::backward_hidden(Activations& a, const DeviceBatch& b, float* g) {
  const int L = cfg.num_layers, D = cfg.hidden_size, hd = cfg.head_dim, T = b.T;
  const int Hq = cfg.num_heads, Hkv = cfg.num_kv_heads, I = cfg.intermediate_size;
  const int Ht = Hq + 2 * Hkv, qkv_n = Ht * hd;
  const size_t td = static_cast<size_t>(T) * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto slot = [&](const DeviceBuffer& buf, int l, size_t per_token) {
    return buf.f32() + static_cast<size_t>(l) * T * per_token;
  };
  auto res = [&](int l) { return a.res.f32() + static_cast<size_t>(l) * td; };
  float* dx = a.dx.f32();  // gradient w.r.t. the residual stream, updated in place layer by layer
  be->zero(dx, td * sizeof(float));
  be->rmsnorm_backward(a.dln.f32(), res(L), W(layout.final_norm), a.frstd.f32(), T, D,
                       dx, g + layout.final_norm);
  for (int l = L - 1; l >= 0; --l) {
    const LayerOffsets& lo = layout.layers[l];
    float *mid = slot(a.mid, l, D), *ln2 = slot(a.ln2, l, D), *gu = slot(a.gu, l, 2 * I);
    float *h = slot(a.h, l, I), *att = slot(a.att, l, Hq * hd), *qkv = slot(a.qkv, l, qkv_n);
    float *qkv_raw = slot(a.qkv_raw, l, qkv_n), *ln1 = slot(a.ln1, l, D);
    // MLP: out = mid + swiglu(ln2 Wgu^T) Wd^T ; dx currently holds d out (= d mid so far).
    be->gemm(false, false, T, I, D, 1.0f, dx, D, W(lo.down), I, 0.0f, a.dh.f32(), I);
    be->gemm(true, false, D, I, T, 1.0f, dx, D, h, I, 1.0f, g + lo.down, I);
    be->swiglu_backward(a.dh.f32(), gu, T, I, a.dgu.f32());
    be->gemm(false, false, T, D, 2 * I, 1.0f, a.dgu.f32(), 2 * I, W(lo.gate_up), D, 0.0f,
             a.dln.f32(), D);
    be->gemm(true, false, 2 * I, D, T, 1.0f, a.dgu.f32(), 2 * I, ln2, D, 1.0f, g + lo.gate_up, D);
    be->rmsnorm_backward(a.dln.f32(), mid, W(lo.post_norm), slot(a.rstd2, l, 1), T, D, dx,
                         g + lo.post_norm);
    // Attention: mid = x + att Wo^T ; dx now holds d mid.
    be->gemm(false, false, T, Hq * hd, D, 1.0f, dx, D, W(lo.o_proj), Hq * hd, 0.0f, a.datt.f32(),
             Hq * hd);
    be->gemm(true, false, D, Hq * hd, T, 1.0f, dx, D, att, Hq * hd, 1.0f, g + lo.o_proj, Hq * hd);
    be->attention_backward(a.datt.f32(), qkv, att, slot(a.lse, l, Hq), b.cu_seqlens, b.S,
                           b.max_seqlen, T, Hq, Hkv, hd, scale, a.dqkv.f32());
    be->qk_norm_rope_backward(a.dqkv.f32(), qkv_raw, W(lo.q_norm), W(lo.k_norm), b.positions,
                              rope_cos.f32(), rope_sin.f32(), slot(a.qk_rstd, l, Hq + Hkv), T, Hq,
                              Hkv, hd, a.dqkv_raw.f32(), g + lo.q_norm, g + lo.k_norm);
    be->gemm(false, false, T, D, qkv_n, 1.0f, a.dqkv_raw.f32(), qkv_n, W(lo.qkv), D, 0.0f,
             a.dln.f32(), D);
    be->gemm(true, false, qkv_n, D, T, 1.0f, a.dqkv_raw.f32(), qkv_n, ln1, D, 1.0f, g + lo.qkv, D);
    be->rmsnorm_backward(a.dln.f32(), res(l), W(lo.input_norm), slot(a.rstd1, l, 1), T, D, dx,
                         g + lo.input_norm);
  }
  be->embedding_backward(b.tokens, T, dx, D, g + layout.embed);
}

}  // namespace troupe
