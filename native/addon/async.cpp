#include "async.h"

#include <new>
#include <string>
#include <utility>
#include <vector>

#include "cpu/parallel.h"

namespace troupe::addon {
namespace {

class PromiseWorker final : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, Job job, const std::vector<Napi::Object>& pins)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)),
        fn_(name),
        // Thread budgets are per OS thread; the pool thread must use the caller's, not its own.
        threads_(cpu::num_threads()) {
    pins_.reserve(pins.size());
    for (const auto& o : pins) pins_.push_back(Napi::Persistent(o));
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    cpu::set_thread_local_num_threads(threads_);
    try {
      job_.work();
    } catch (const std::exception& e) {
      SetError(fn_ + ": " + exception_message(e));
    } catch (...) {
      SetError(fn_ + ": unknown native exception");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(job_.done ? job_.done(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      // Nothing may escape here: this runs from libuv's completion callback.
      deferred_.Reject(Napi::Error::New(env, fn_ + ": " + exception_message(e)).Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  std::string fn_;
  int threads_;
  std::vector<Napi::ObjectReference> pins_;  // released on the JS thread when the worker is deleted
};

// Converts core exceptions thrown on the JS thread into JS errors naming the call.
template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* name, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;  // already a JS error (validation); node-addon-api rethrows it into JS
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(name) + ": " + exception_message(e));
  } catch (...) {
    throw Napi::Error::New(info.Env(), std::string(name) + ": unknown native exception");
  }
}

}  // namespace

std::string exception_message(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory";
  return e.what();
}

Napi::Value dispatch(const ArgReader& args, Job job, bool async) {
  Napi::Env env = args.env();
  if (!async) {
    job.work();
    return job.done ? job.done(env) : env.Undefined();
  }
  // The worker is owned by node-addon-api once queued (deleted after OnOK/OnError).
  auto* worker = new PromiseWorker(env, args.fn().c_str(), std::move(job), args.borrowed());
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

void export_dual(Napi::Env env, Napi::Object exports, const char* name, DualImpl impl) {
  std::string sync_name = std::string(name) + "Sync";
  exports.Set(name, Napi::Function::New(
                        env,
                        [impl, name](const Napi::CallbackInfo& info) -> Napi::Value {
                          // A promise-returning function reports bad arguments by rejecting,
                          // like any async JS function, instead of throwing synchronously.
                          try {
                            return guarded(info, name, [&] { return impl(info, true); });
                          } catch (const Napi::Error& e) {
                            auto d = Napi::Promise::Deferred::New(info.Env());
                            d.Reject(e.Value());
                            return d.Promise();
                          }
                        },
                        name));
  exports.Set(sync_name, Napi::Function::New(
                             env,
                             [impl, name](const Napi::CallbackInfo& info) {
                               return guarded(info, name, [&] { return impl(info, false); });
                             },
                             sync_name));
}

void export_sync(Napi::Env env, Napi::Object exports, const char* name, SyncImpl impl) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [impl, name](const Napi::CallbackInfo& info) {
                          return guarded(info, name, [&] { return impl(info); });
                        },
                        name));
}

}  // namespace troupe::addon
