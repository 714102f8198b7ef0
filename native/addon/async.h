// Running a core call in one of the two forms every heavy call has:
//  - `xxxSync(...)`: runs on the calling JS thread (Piscina workers call this: they are already
//    off the main event loop, and a second hop through libuv's pool would only add latency);
//  - `xxx(...)`: returns a Promise; the core runs on a libuv pool thread.
// A Job is split so the worker-thread half never touches JS: `work` sees only C++ values (the
// borrowed typed-array pointers, captured shared_ptr<Policy>), `done` builds the JS result back on
// the JS thread. The async form pins every borrowed typed array with a reference until the
// promise settles, so GC cannot free memory the core is writing into.
#pragma once
#include <napi.h>

#include <functional>

#include "convert.h"

namespace troupe::addon {

struct Job {
  std::function<void()> work;                   // no JS access; may throw std::exception
  std::function<Napi::Value(Napi::Env)> done;   // optional; undefined result when empty
};

// Runs `job` now (async=false) or queues it and returns a Promise (async=true).
Napi::Value dispatch(const ArgReader& args, Job job, bool async);

// The message a core exception becomes in JS ("out of memory" for bad_alloc, else what()).
std::string exception_message(const std::exception& e);

// Registers `name` (Promise) and `nameSync` (synchronous) for one implementation that takes the
// form as its second argument. Errors thrown by the implementation become JS exceptions.
using DualImpl = Napi::Value (*)(const Napi::CallbackInfo&, bool async);
void export_dual(Napi::Env env, Napi::Object exports, const char* name, DualImpl impl);
// Registers a synchronous-only function (cheap calls).
using SyncImpl = Napi::Value (*)(const Napi::CallbackInfo&);
void export_sync(Napi::Env env, Napi::Object exports, const char* name, SyncImpl impl);

}  // namespace troupe::addon
