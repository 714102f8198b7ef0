// Process-level functions: thread budget, core count, GEMM peak measurement, and two test hooks
// that expose buffer addresses (only ever compared with each other, never dereferenced in JS).
#include <cstdint>
#include <memory>
#include <string>

#include "async.h"
#include "convert.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "exports.h"

namespace troupe::addon {
namespace {

// setThreads(n, scope = 'process'): 'process' sets the default for every thread that has not
// chosen its own count; 'thread' sets it for calls made from the calling JS thread only (a
// Piscina worker). Async calls use the count of the thread that made them.
Napi::Value set_threads(const Napi::CallbackInfo& info) {
  ArgReader r(info, "setThreads");
  int n = static_cast<int>(r.integer(r.arg(0), "n", 1, 4096));
  std::string scope = ArgReader::present(r.arg(1)) ? r.string(r.arg(1), "scope") : "process";
  if (scope == "process")
    cpu::set_default_num_threads(n);
  else if (scope == "thread")
    cpu::set_thread_local_num_threads(n);
  else
    r.range_error("scope", "'process' or 'thread'", "'" + scope + "'");
  return r.env().Undefined();
}

// getThreads() -> threads a call from this JS thread would use now.
Napi::Value get_threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::num_threads());
}

Napi::Value hardware_cores(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::hardware_cores());
}

// measureGemmPeak(seconds) -> {gflops, threads, size}
Napi::Value measure_gemm_peak(const Napi::CallbackInfo& info, bool async) {
  ArgReader r(info, "measureGemmPeak");
  double seconds = ArgReader::present(r.arg(0)) ? r.number(r.arg(0), "seconds") : 0.5;
  if (!(seconds > 0 && seconds <= 60)) r.range_error("seconds", "in (0, 60]", fmt_number(seconds));
  auto peak = std::make_shared<cpu::GemmPeak>();
  Job job;
  job.work = [peak, seconds] { *peak = cpu::measure_gemm_peak(seconds); };
  job.done = [peak](Napi::Env env) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("gflops", static_cast<double>(peak->gflops));
    o.Set("threads", static_cast<double>(peak->threads));
    o.Set("size", static_cast<double>(peak->size));
    return o;
  };
  return dispatch(r, std::move(job), async);
}

// bufferAddress(typedArray) -> BigInt: where the array's first element lives. Deliberately not an
// ArgReader (that would reset the lastBorrowed record this hook is compared against).
Napi::Value buffer_address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw Napi::TypeError::New(env, "bufferAddress: array must be a typed array (got " +
                                        (info.Length() < 1 ? std::string("undefined") : describe(info[0])) + ")");
  napi_typedarray_type type;
  size_t length;
  void* data = nullptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, info[0], &type, &length, &data, &ab, &offset) != napi_ok)
    throw Napi::Error::New(env, "bufferAddress: could not read the typed array");
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

// lastBorrowed() -> {argumentName: BigInt address} for the latest addon call on this JS thread.
Napi::Value last_borrowed_fn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, addr] : last_borrowed())
    o.Set(name, Napi::BigInt::New(env, static_cast<uint64_t>(addr)));
  return o;
}

}  // namespace

void register_system_functions(Napi::Env env, Napi::Object exports) {
  export_sync(env, exports, "setThreads", set_threads);
  export_sync(env, exports, "getThreads", get_threads);
  export_sync(env, exports, "hardwareCores", hardware_cores);
  export_dual(env, exports, "measureGemmPeak", measure_gemm_peak);
  export_sync(env, exports, "bufferAddress", buffer_address);
  export_sync(env, exports, "lastBorrowed", last_borrowed_fn);
}

}  // namespace troupe::addon
