// Argument conversion and validation for the addon. Everything the core receives is checked here
// first, because the core trusts its inputs (a token id outside the vocabulary is an out-of-bounds
// read, not an exception). Every error is a JS TypeError (wrong kind of value) or RangeError
// (right kind, bad value) whose message starts with the call's name and names the argument path,
// e.g. "accumulate: batch.oldLogp[12] is NaN (must be finite)".
//
// Typed arrays are borrowed, never copied: a Span points into the caller's ArrayBuffer or
// SharedArrayBuffer, and the reader remembers each borrowed array so async calls can pin them.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace troupe::addon {

template <typename T>
struct Span {
  T* data = nullptr;
  size_t size = 0;
  T& operator[](size_t i) const { return data[i]; }
};

// One (argument name, address) pair per typed array borrowed by the latest call on this thread;
// read by the bufferAddress test hook to prove the core got the caller's memory.
const std::vector<std::pair<std::string, uintptr_t>>& last_borrowed();

// A number as JS would print it in a message (NaN, Infinity, 0.2).
std::string fmt_number(double x);

// Short human description of a JS value's kind ("Float32Array", "string", "undefined", ...).
std::string describe(const Napi::Value& v);

class ArgReader {
 public:
  ArgReader(const Napi::CallbackInfo& info, const char* fn);
  Napi::Env env() const { return env_; }
  const std::string& fn() const { return fn_; }
  // The i-th argument (undefined when missing).
  Napi::Value arg(size_t i) const;

  [[noreturn]] void type_error(const std::string& name, const std::string& expected,
                               const Napi::Value& got) const;
  // "fn: name must be <expectation> (got <got>)"
  [[noreturn]] void range_error(const std::string& name, const std::string& expectation,
                                const std::string& got) const;
  // "fn: <message>"
  [[noreturn]] void range_error(const std::string& message) const;

  static bool present(const Napi::Value& v) { return !v.IsUndefined() && !v.IsNull(); }

  // Typed arrays whose memory is borrowed (exact element type required).
  Span<int32_t> int32_array(const Napi::Value& v, const std::string& name);
  Span<float> float32_array(const Napi::Value& v, const std::string& name);
  Span<uint8_t> uint8_array(const Napi::Value& v, const std::string& name);
  Span<uint64_t> biguint64_array(const Napi::Value& v, const std::string& name);
  // Typed arrays whose memory the call reads or writes; async calls pin each of them.
  const std::vector<Napi::Object>& borrowed() const { return borrowed_; }

  double number(const Napi::Value& v, const std::string& name) const;  // finite
  // An integer-valued number in [lo, hi].
  int64_t integer(const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) const;
  // A non-negative safe integer or a BigInt in [0, 2^64).
  uint64_t uint64(const Napi::Value& v, const std::string& name) const;
  bool boolean(const Napi::Value& v, const std::string& name) const;
  std::string string(const Napi::Value& v, const std::string& name) const;
  Napi::Object object(const Napi::Value& v, const std::string& name) const;
  // Integers in [lo, hi) from an Int32Array or a plain array of numbers (copied: small lists).
  std::vector<int32_t> int_list(const Napi::Value& v, const std::string& name, int64_t lo,
                                int64_t hi) const;

 private:
  template <typename T>
  Span<T> typed(const Napi::Value& v, const std::string& name, napi_typedarray_type want,
                const char* want_name);

  Napi::Env env_;
  const Napi::CallbackInfo& info_;
  std::string fn_;
  std::vector<Napi::Object> borrowed_;
};

// An options object: undefined/null means "all defaults"; unknown keys are rejected so a typo
// (`epsLow` for `clipEpsLow`) is an error instead of a silently ignored setting.
class Options {
 public:
  Options(ArgReader& r, const Napi::Value& v, const std::string& name,
          std::initializer_list<const char*> known);
  Napi::Value get(const char* key) const;  // undefined when absent
  bool has(const char* key) const { return ArgReader::present(get(key)); }
  std::string path(const char* key) const { return name_ + "." + key; }

  double number(const char* key, double dflt) const;
  int64_t integer(const char* key, int64_t dflt, int64_t lo, int64_t hi) const;
  bool boolean(const char* key, bool dflt) const;
  std::string string(const char* key, const std::string& dflt) const;
  // A finite number inside `b` (checked before narrowing, so messages show the value as given).
  struct Bounds {
    double lo = -HUGE_VAL, hi = HUGE_VAL;
    bool lo_open = false, hi_open = false;
  };
  double bounded(const char* key, double dflt, Bounds b) const;
  float bounded_f32(const char* key, float dflt, Bounds b) const {
    return static_cast<float>(bounded(key, dflt, b));
  }
  // One of `choices` (the string form); returns its index.
  int choice(const char* key, int dflt, std::initializer_list<const char*> choices) const;

 private:
  ArgReader& r_;
  Napi::Object obj_;
  bool empty_ = true;
  std::string name_;
};

// ---- content checks shared by several calls ----

// The packed-batch contract: cuSeqlens = [0, ..., T], non-decreasing, at least one sequence,
// every sequence at most max_len tokens. Returns the number of sequences.
int check_packed(const ArgReader& r, Span<int32_t> tokens, Span<int32_t> cu,
                 const std::string& tokens_name, const std::string& cu_name, int64_t max_len);
// Every token id in [0, vocab).
void check_token_ids(const ArgReader& r, Span<int32_t> tokens, const std::string& name, int vocab);
void check_finite(const ArgReader& r, Span<float> x, const std::string& name);
// Exactly n elements (inputs) or at least n (outputs the caller may over-allocate).
template <typename T>
void check_length(const ArgReader& r, Span<T> x, const std::string& name, int64_t n, bool exact) {
  if (exact ? static_cast<int64_t>(x.size) != n : static_cast<int64_t>(x.size) < n)
    r.range_error(name + " must have " + (exact ? "exactly " : "at least ") + std::to_string(n) +
                  " elements (got " + std::to_string(x.size) + ")");
}

}  // namespace troupe::addon
