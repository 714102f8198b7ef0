#include "handles.h"

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace troupe::addon {
namespace {

// One per JS environment; node deletes it when the environment is torn down (worker exit or
// process exit), which is exactly when that environment's references must be returned.
struct EnvState {
  std::unordered_map<PolicyHandle, int> refs;
  ~EnvState() {
    auto& reg = PolicyRegistry::instance();
    for (const auto& [h, n] : refs)
      for (int i = 0; i < n; ++i) reg.release(h);
  }
};

EnvState& state(Napi::Env env) {
  EnvState* s = env.GetInstanceData<EnvState>();
  if (!s) throw Napi::Error::New(env, "troupe addon: environment state missing (module not initialised)");
  return *s;
}

}  // namespace

void init_env_state(Napi::Env env) {
  if (!env.GetInstanceData<EnvState>()) env.SetInstanceData<EnvState>(new EnvState());
}

PolicyHandle register_policy(Napi::Env env, std::shared_ptr<Policy> policy) {
  PolicyHandle h = PolicyRegistry::instance().add(std::move(policy));
  ++state(env).refs[h];
  return h;
}

bool env_retain(Napi::Env env, PolicyHandle h) {
  if (!PolicyRegistry::instance().retain(h)) return false;
  ++state(env).refs[h];
  return true;
}

bool env_release(Napi::Env env, PolicyHandle h) {
  auto& refs = state(env).refs;
  auto it = refs.find(h);
  if (it == refs.end()) return false;
  if (--it->second == 0) refs.erase(it);
  PolicyRegistry::instance().release(h);
  return true;
}

PolicyHandle handle_arg(const ArgReader& r, const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) r.type_error(name, "a policy handle (number)", v);
  return static_cast<PolicyHandle>(r.integer(v, name, 1, UINT32_MAX));
}

std::shared_ptr<Policy> policy_arg(const ArgReader& r, const Napi::Value& v,
                                   const std::string& name) {
  PolicyHandle h = handle_arg(r, v, name);
  auto p = PolicyRegistry::instance().get(h);
  if (!p)
    r.range_error(name + " " + std::to_string(h) +
                  " is not a live policy (never created, or already disposed)");
  return p;
}

}  // namespace troupe::addon
