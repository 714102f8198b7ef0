// JS-facing policy handles. The registry (registry.h) counts references process-wide; this file
// additionally remembers which references each JS environment (main thread, each worker) holds,
// so a worker that exits or crashes without disposing gives its references back instead of
// leaking the policy, and one thread cannot dispose a reference another thread holds.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "convert.h"
#include "registry.h"

namespace troupe::addon {

// Installs the per-environment reference table (module init, once per environment).
void init_env_state(Napi::Env env);

// Registers a new policy and records the creating environment's reference.
PolicyHandle register_policy(Napi::Env env, std::shared_ptr<Policy> policy);
// Adds a reference held by `env`; false for an unknown handle.
bool env_retain(Napi::Env env, PolicyHandle h);
// Drops one of `env`'s references; false when `env` holds none for h.
bool env_release(Napi::Env env, PolicyHandle h);

// Reads a handle argument and returns its policy; RangeError naming `name` if unknown.
std::shared_ptr<Policy> policy_arg(const ArgReader& r, const Napi::Value& v,
                                   const std::string& name);
PolicyHandle handle_arg(const ArgReader& r, const Napi::Value& v, const std::string& name);

}  // namespace troupe::addon
