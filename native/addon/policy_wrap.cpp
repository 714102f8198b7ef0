// Policy lifecycle: create, load, save, copy, attach/dispose by handle, introspection, memory and
// flat parameter access.
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "async.h"
#include "convert.h"
#include "cpu/cpu_backend.h"
#include "exports.h"
#include "handles.h"
#include "model/config.h"
#include "train/policy.h"

namespace troupe::addon {
namespace {

Napi::Value json_parse(Napi::Env env, const std::string& text) {
  Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
  return json.Get("parse").As<Napi::Function>().Call(json, {Napi::String::New(env, text)});
}

std::string json_stringify(Napi::Env env, const Napi::Value& v) {
  Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
  Napi::Value s = json.Get("stringify").As<Napi::Function>().Call(json, {v});
  return s.IsString() ? s.As<Napi::String>().Utf8Value() : std::string();
}

// The core reports a bad preset name or config field with std::invalid_argument naming the field;
// that is a bad argument value, so it surfaces as a RangeError from the JS thread.
template <typename F>
ModelConfig config_or_range_error(const ArgReader& r, const std::string& what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    r.range_error(what + ": " + e.what());
  }
}

// createPolicy({preset | config, vocabSize, seed}) -> handle
Napi::Value create_policy(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "createPolicy");
  Options o(r, r.arg(0), "options", {"preset", "config", "vocabSize", "seed"});
  if (o.has("preset") == o.has("config"))
    throw Napi::TypeError::New(r.env(), "createPolicy: options must have exactly one of "
                                        "options.preset ('tiny' | 'small' | 'medium') or "
                                        "options.config (a Hugging Face config.json object)");
  const bool has_vocab = o.has("vocabSize");
  const int vocab = static_cast<int>(o.integer("vocabSize", 320, 1, std::numeric_limits<int>::max()));
  const uint64_t seed = o.has("seed") ? r.uint64(o.get("seed"), o.path("seed")) : 0;
  ModelConfig cfg;
  if (o.has("preset")) {
    std::string name = o.string("preset", "");
    cfg = config_or_range_error(r, "options.preset", [&] { return preset_config(name, vocab); });
  } else {
    Napi::Value c = o.get("config");
    std::string text = c.IsString() ? c.As<Napi::String>().Utf8Value()
                                    : json_stringify(r.env(), r.object(c, "options.config"));
    cfg = config_or_range_error(r, "options.config", [&] {
      ModelConfig m = config_from_json(text);
      if (has_vocab) m.vocab_size = vocab;
      m.validate();
      return m;
    });
  }
  auto made = std::make_shared<std::shared_ptr<Policy>>();
  Job job;
  job.work = [made, cfg, seed] { *made = std::make_shared<Policy>(cfg, cpu_backend(), seed); };
  job.done = [made](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, register_policy(env, std::move(*made)));
  };
  return dispatch(r, std::move(job), async);
}

// loadPolicy(dir) -> handle
Napi::Value load_policy(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "loadPolicy");
  std::string dir = r.string(r.arg(0), "dir");
  if (dir.empty()) r.range_error("dir", "a non-empty directory path", "''");
  auto made = std::make_shared<std::shared_ptr<Policy>>();
  Job job;
  job.work = [made, dir] { *made = std::shared_ptr<Policy>(Policy::load(dir, cpu_backend())); };
  job.done = [made](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, register_policy(env, std::move(*made)));
  };
  return dispatch(r, std::move(job), async);
}

// savePolicy(h, dir, {optimizer})
Napi::Value save_policy(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "savePolicy");
  auto p = policy_arg(r, r.arg(0), "policy");
  std::string dir = r.string(r.arg(1), "dir");
  if (dir.empty()) r.range_error("dir", "a non-empty directory path", "''");
  Options o(r, r.arg(2), "options", {"optimizer"});
  bool with_opt = o.boolean("optimizer", false);
  return dispatch(r, Job{[p, dir, with_opt] { p->save(dir, with_opt); }, {}}, async);
}

// copyPolicy(dst, src, {optimizer})
Napi::Value copy_policy(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "copyPolicy");
  auto dst = policy_arg(r, r.arg(0), "dst");
  auto src = policy_arg(r, r.arg(1), "src");
  // Both locks are taken by copy_from; the same policy twice would wait on itself.
  if (dst == src) r.range_error("dst and src must be different policies");
  Options o(r, r.arg(2), "options", {"optimizer"});
  bool with_opt = o.boolean("optimizer", false);
  return dispatch(r, Job{[dst, src, with_opt] {
                    // copy_from locks dst, then src; two copies in opposite directions running on
                    // two pool threads would each hold the lock the other waits for. Copies are
                    // rare and short, so serialising them all removes every such cycle.
                    static std::mutex copy_mu;
                    std::lock_guard<std::mutex> lk(copy_mu);
                    dst->copy_from(*src, with_opt);
                  }, {}},
                  async);
}

// retainPolicy(h) -> h: this environment (e.g. a worker) takes its own reference.
Napi::Value retain_policy(const Napi::CallbackInfo& info) {
  ArgReader r(info, "retainPolicy");
  PolicyHandle h = handle_arg(r, r.arg(0), "policy");
  if (!env_retain(r.env(), h))
    r.range_error("policy " + std::to_string(h) +
                  " is not a live policy (never created, or already disposed)");
  return Napi::Number::New(r.env(), h);
}

// disposePolicy(h): drops one reference held by this environment.
Napi::Value dispose_policy(const Napi::CallbackInfo& info) {
  ArgReader r(info, "disposePolicy");
  PolicyHandle h = handle_arg(r, r.arg(0), "policy");
  if (!env_release(r.env(), h))
    r.range_error("policy " + std::to_string(h) +
                  " is not held by this thread (already disposed, or never created/attached here)");
  return r.env().Undefined();
}

// listPolicies() -> [{handle, refs}] for every live policy in the process.
Napi::Value list_policies(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto entries = PolicyRegistry::instance().list();
  Napi::Array out = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("handle", entries[i].handle);
    e.Set("refs", entries[i].refs);
    out.Set(static_cast<uint32_t>(i), e);
  }
  return out;
}

// policyInfo(h) -> {handle, config (HF JSON), numParameters, optimizerSteps, backend, tensors}
Napi::Value policy_info(const Napi::CallbackInfo& info) {
  ArgReader r(info, "policyInfo");
  PolicyHandle h = handle_arg(r, r.arg(0), "policy");
  auto p = policy_arg(r, r.arg(0), "policy");
  Napi::Env env = r.env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", h);
  out.Set("config", json_parse(env, config_to_json(p->config())));
  out.Set("numParameters", static_cast<double>(p->num_parameters()));
  out.Set("optimizerSteps", p->optimizer_steps());
  out.Set("backend", p->backend()->name());
  const auto& tensors = p->tensors();
  Napi::Array list = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("name", tensors[i].name);
    Napi::Array shape = Napi::Array::New(env, tensors[i].shape.size());
    for (size_t d = 0; d < tensors[i].shape.size(); ++d)
      shape.Set(static_cast<uint32_t>(d), static_cast<double>(tensors[i].shape[d]));
    t.Set("shape", shape);
    t.Set("offset", static_cast<double>(tensors[i].offset));
    t.Set("numel", static_cast<double>(tensors[i].numel));
    list.Set(static_cast<uint32_t>(i), t);
  }
  out.Set("tensors", list);
  return out;
}

Napi::Object categories(Napi::Env env, const std::array<int64_t, kMemCategories>& v) {
  Napi::Object o = Napi::Object::New(env);
  for (int c = 0; c < kMemCategories; ++c)
    o.Set(mem_category_name(static_cast<MemCategory>(c)), static_cast<double>(v[c]));
  return o;
}

// memory(h) -> {current: {weights, grads, ...}, peak: {...}, totalCurrent, totalPeak} (bytes)
Napi::Value memory(const Napi::CallbackInfo& info) {
  ArgReader r(info, "memory");
  auto p = policy_arg(r, r.arg(0), "policy");
  MemorySnapshot s = p->memory();
  Napi::Env env = r.env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("current", categories(env, s.current));
  out.Set("peak", categories(env, s.peak));
  out.Set("totalCurrent", static_cast<double>(s.total_current));
  out.Set("totalPeak", static_cast<double>(s.total_peak));
  return out;
}

// readParams/writeParams/readGrads(h, Float32Array of exactly numParameters)
Napi::Value read_params(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "readParams");
  auto p = policy_arg(r, r.arg(0), "policy");
  Span<float> out = r.float32_array(r.arg(1), "out");
  check_length(r, out, "out", p->num_parameters(), true);
  return dispatch(r, Job{[p, out] { p->read_params(out.data); }, {}}, async);
}

Napi::Value write_params(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "writeParams");
  auto p = policy_arg(r, r.arg(0), "policy");
  Span<float> src = r.float32_array(r.arg(1), "params");
  check_length(r, src, "params", p->num_parameters(), true);
  check_finite(r, src, "params");
  return dispatch(r, Job{[p, src] { p->write_params(src.data); }, {}}, async);
}

Napi::Value read_grads(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "readGrads");
  auto p = policy_arg(r, r.arg(0), "policy");
  Span<float> out = r.float32_array(r.arg(1), "out");
  check_length(r, out, "out", p->num_parameters(), true);
  return dispatch(r, Job{[p, out] { p->read_grads(out.data); }, {}}, async);
}

}  // namespace

void register_policy_functions(Napi::Env env, Napi::Object exports) {
  export_dual(env, exports, "createPolicy", create_policy);
  export_dual(env, exports, "loadPolicy", load_policy);
  export_dual(env, exports, "savePolicy", save_policy);
  export_dual(env, exports, "copyPolicy", copy_policy);
  export_dual(env, exports, "readParams", read_params);
  export_dual(env, exports, "writeParams", write_params);
  export_dual(env, exports, "readGrads", read_grads);
  export_sync(env, exports, "retainPolicy", retain_policy);
  export_sync(env, exports, "disposePolicy", dispose_policy);
  export_sync(env, exports, "listPolicies", list_policies);
  export_sync(env, exports, "policyInfo", policy_info);
  export_sync(env, exports, "memory", memory);
}

}  // namespace troupe::addon
