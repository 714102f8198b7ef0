// Registration functions of the addon's files; module.cpp calls each once per environment.
#pragma once
#include <napi.h>

namespace troupe::addon {

void register_policy_functions(Napi::Env env, Napi::Object exports);     // policy_wrap.cpp
void register_inference_functions(Napi::Env env, Napi::Object exports);  // infer_wrap.cpp
void register_training_functions(Napi::Env env, Napi::Object exports);   // train_wrap.cpp
void register_system_functions(Napi::Env env, Napi::Object exports);     // system_wrap.cpp

}  // namespace troupe::addon
