// The troupe Node-API addon: module initialisation. Node loads this shared library once per
// process; each JS environment (the main thread, every worker_threads/Piscina worker) runs Init
// and gets its own exports object, while the policy registry behind the handles is process-wide.
#include <napi.h>

#include "exports.h"
#include "handles.h"

namespace troupe::addon {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  init_env_state(env);
  register_policy_functions(env, exports);
  register_inference_functions(env, exports);
  register_training_functions(env, exports);
  register_system_functions(env, exports);
  exports.Set("backend", Napi::String::New(env, "cpu"));
  // Bumped whenever a function's arguments or result change shape; binding.ts checks it so a
  // stale build/ directory fails loudly instead of misbehaving.
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace
}  // namespace troupe::addon

// NODE_API_MODULE pastes its second argument into an identifier, so it needs a plain name.
static Napi::Object InitTroupeAddon(Napi::Env env, Napi::Object exports) {
  return troupe::addon::Init(env, exports);
}
NODE_API_MODULE(troupe, InitTroupeAddon)
