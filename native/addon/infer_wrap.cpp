// Scoring and sampling: forwardLogprobs, forwardLogits, generate. All outputs are written into
// caller-provided typed arrays (usually SharedArrayBuffer-backed, so a Piscina worker's results
// are visible to the main thread without a copy).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "async.h"
#include "convert.h"
#include "exports.h"
#include "handles.h"
#include "train/policy.h"

namespace troupe::addon {
namespace {

struct PackedArg {
  PackedTokens packed;
  Span<int32_t> tokens, cu;
};

// Reads {tokens: Int32Array, cuSeqlens: Int32Array} and checks it against the model. Extra
// fields are allowed: a TrainBatch can be scored as it is.
PackedArg read_packed(ArgReader& r, const Napi::Value& v, const std::string& name,
                      const ModelConfig& cfg) {
  Napi::Object o = r.object(v, name);
  PackedArg a;
  a.tokens = r.int32_array(o.Get("tokens"), name + ".tokens");
  a.cu = r.int32_array(o.Get("cuSeqlens"), name + ".cuSeqlens");
  a.packed.num_seqs = check_packed(r, a.tokens, a.cu, name + ".tokens", name + ".cuSeqlens",
                                   cfg.max_position_embeddings);
  check_token_ids(r, a.tokens, name + ".tokens", cfg.vocab_size);
  a.packed.tokens = a.tokens.data;
  a.packed.cu_seqlens = a.cu.data;
  return a;
}

// forwardLogprobs(h, batch, temperature, outLogp, outEntropy?)
Napi::Value forward_logprobs(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "forwardLogprobs");
  auto p = policy_arg(r, r.arg(0), "policy");
  PackedArg b = read_packed(r, r.arg(1), "batch", p->config());
  double temperature = r.number(r.arg(2), "temperature");
  if (temperature <= 0) r.range_error("temperature", "> 0", fmt_number(temperature));
  Span<float> logp = r.float32_array(r.arg(3), "outLogp");
  check_length(r, logp, "outLogp", b.tokens.size, false);
  float* entropy = nullptr;
  if (ArgReader::present(r.arg(4))) {
    Span<float> e = r.float32_array(r.arg(4), "outEntropy");
    check_length(r, e, "outEntropy", b.tokens.size, false);
    entropy = e.data;
  }
  PackedTokens packed = b.packed;
  float t = static_cast<float>(temperature);
  return dispatch(
      r, Job{[p, packed, t, logp, entropy] { p->forward_logprobs(packed, t, logp.data, entropy); }, {}},
      async);
}

// forwardLogits(h, batch, outLogits[T * vocab])
Napi::Value forward_logits(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "forwardLogits");
  auto p = policy_arg(r, r.arg(0), "policy");
  PackedArg b = read_packed(r, r.arg(1), "batch", p->config());
  Span<float> logits = r.float32_array(r.arg(2), "outLogits");
  check_length(r, logits, "outLogits",
               static_cast<int64_t>(b.tokens.size) * p->config().vocab_size, false);
  PackedTokens packed = b.packed;
  return dispatch(r, Job{[p, packed, logits] { p->forward_logits(packed, logits.data); }, {}}, async);
}

Napi::Value generate_stats(Napi::Env env, const GenerateStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("promptTokens", static_cast<double>(s.prompt_tokens));
  o.Set("newTokens", static_cast<double>(s.new_tokens));
  o.Set("prefillSeconds", s.prefill_seconds);
  o.Set("decodeSeconds", s.decode_seconds);
  return o;
}

// generate(h, request) -> {promptTokens, newTokens, prefillSeconds, decodeSeconds}
Napi::Value generate(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "generate");
  auto p = policy_arg(r, r.arg(0), "policy");
  const ModelConfig& cfg = p->config();
  if (!ArgReader::present(r.arg(1))) r.type_error("request", "an object", r.arg(1));
  Options o(r, r.arg(1), "request",
            {"prompts", "maxNewTokens", "callIds", "temperature", "topK", "topP", "greedy", "seed",
             "stopTokens", "stride", "outTokens", "outLogp", "outLengths", "outFinish"});

  GenerateRequest req;
  PackedArg prompts = read_packed(r, o.get("prompts"), "request.prompts", cfg);
  req.prompts = prompts.packed;
  const int B = prompts.packed.num_seqs;

  Span<int32_t> max_new = r.int32_array(o.get("maxNewTokens"), "request.maxNewTokens");
  check_length(r, max_new, "request.maxNewTokens", B, true);
  int32_t longest = 0;
  for (int b = 0; b < B; ++b) {
    const int64_t plen = prompts.cu[b + 1] - prompts.cu[b];
    // Sampling conditions on the prompt's last token; an empty prompt has nothing to condition on.
    if (plen == 0)
      r.range_error("request.prompts sequence " + std::to_string(b) +
                    " is empty (every prompt needs at least one token)");
    if (max_new[b] < 0)
      r.range_error("request.maxNewTokens[" + std::to_string(b) + "]", ">= 0", std::to_string(max_new[b]));
    if (plen + max_new[b] > cfg.max_position_embeddings)
      r.range_error("request.maxNewTokens[" + std::to_string(b) + "] = " + std::to_string(max_new[b]) +
                    " plus the prompt's " + std::to_string(plen) +
                    " tokens exceeds max_position_embeddings " +
                    std::to_string(cfg.max_position_embeddings));
    longest = std::max(longest, max_new[b]);
  }
  req.max_new = max_new.data;

  Span<uint64_t> call_ids = r.biguint64_array(o.get("callIds"), "request.callIds");
  check_length(r, call_ids, "request.callIds", B, true);
  req.call_ids = call_ids.data;

  SampleParams& sp = req.sampling;
  sp.temperature = o.bounded_f32("temperature", 1.0f, {0, HUGE_VAL, false, false});  // 0 = greedy
  sp.top_k = static_cast<int>(o.integer("topK", 0, 0, cfg.vocab_size));
  sp.top_p = o.bounded_f32("topP", 1.0f, {0, 1, true, false});
  sp.greedy = o.boolean("greedy", false);
  sp.seed = o.has("seed") ? r.uint64(o.get("seed"), o.path("seed")) : 0;
  if (o.has("stopTokens")) req.stop_tokens = r.int_list(o.get("stopTokens"), o.path("stopTokens"), 0, cfg.vocab_size);

  req.stride = static_cast<int>(o.integer("stride", longest, 0, std::numeric_limits<int32_t>::max()));
  if (req.stride < longest)
    r.range_error(o.path("stride"), ">= the largest request.maxNewTokens (" + std::to_string(longest) + ")",
                  std::to_string(req.stride));
  const int64_t out_n = static_cast<int64_t>(B) * req.stride;
  Span<int32_t> out_tokens = r.int32_array(o.get("outTokens"), "request.outTokens");
  check_length(r, out_tokens, "request.outTokens", out_n, false);
  Span<float> out_logp = r.float32_array(o.get("outLogp"), "request.outLogp");
  check_length(r, out_logp, "request.outLogp", out_n, false);
  Span<int32_t> out_len = r.int32_array(o.get("outLengths"), "request.outLengths");
  check_length(r, out_len, "request.outLengths", B, false);
  Span<uint8_t> out_finish = r.uint8_array(o.get("outFinish"), "request.outFinish");
  check_length(r, out_finish, "request.outFinish", B, false);
  req.out_tokens = out_tokens.data;
  req.out_logp = out_logp.data;
  req.out_lengths = out_len.data;
  req.out_finish = out_finish.data;

  auto stats = std::make_shared<GenerateStats>();
  Job job;
  job.work = [p, req, stats] { *stats = p->generate(req); };
  job.done = [stats](Napi::Env env) { return generate_stats(env, *stats); };
  return dispatch(r, std::move(job), async);
}

}  // namespace

void register_inference_functions(Napi::Env env, Napi::Object exports) {
  export_dual(env, exports, "forwardLogprobs", forward_logprobs);
  export_dual(env, exports, "forwardLogits", forward_logits);
  export_dual(env, exports, "generate", generate);
}

}  // namespace troupe::addon
