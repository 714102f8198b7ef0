#include "convert.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace troupe::addon {
namespace {

thread_local std::vector<std::pair<std::string, uintptr_t>> t_borrowed;

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

}  // namespace

std::string fmt_number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  std::ostringstream os;
  os.precision(9);
  os << x;
  return os.str();
}

namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

}  // namespace

const std::vector<std::pair<std::string, uintptr_t>>& last_borrowed() { return t_borrowed; }

std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: return "number " + fmt_number(v.As<Napi::Number>().DoubleValue());
    case napi_string: {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "string '" + s + "'";
    }
    case napi_symbol: return "symbol";
    case napi_bigint: return "bigint";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_object:
      if (v.IsTypedArray()) return typed_array_name(v.As<Napi::TypedArray>().TypedArrayType());
      if (v.IsArray()) return "Array";
      if (v.IsArrayBuffer()) return "ArrayBuffer";
      if (v.IsDataView()) return "DataView";
      // SharedArrayBuffer and class instances: the constructor name is the most useful hint.
      try {
        Napi::Value ctor = v.As<Napi::Object>().Get("constructor");
        if (ctor.IsFunction()) {
          Napi::Value name = ctor.As<Napi::Object>().Get("name");
          if (name.IsString() && !name.As<Napi::String>().Utf8Value().empty())
            return name.As<Napi::String>().Utf8Value();
        }
      } catch (const Napi::Error&) {
        // A throwing getter on a hostile object: fall through to the generic name.
      }
      return "object";
  }
  return "value";
}

ArgReader::ArgReader(const Napi::CallbackInfo& info, const char* fn)
    : env_(info.Env()), info_(info), fn_(fn) {
  t_borrowed.clear();
}

Napi::Value ArgReader::arg(size_t i) const { return i < info_.Length() ? info_[i] : env_.Undefined(); }

void ArgReader::type_error(const std::string& name, const std::string& expected,
                           const Napi::Value& got) const {
  throw Napi::TypeError::New(env_, fn_ + ": " + name + " must be " + expected + " (got " +
                                       describe(got) + ")");
}

void ArgReader::range_error(const std::string& name, const std::string& expectation,
                            const std::string& got) const {
  throw Napi::RangeError::New(env_, fn_ + ": " + name + " must be " + expectation + " (got " + got +
                                        ")");
}

void ArgReader::range_error(const std::string& message) const {
  throw Napi::RangeError::New(env_, fn_ + ": " + message);
}

template <typename T>
Span<T> ArgReader::typed(const Napi::Value& v, const std::string& name, napi_typedarray_type want,
                         const char* want_name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want)
    // "an Int32Array", "a Float32Array", "a Uint8Array" (U as in "you").
    type_error(name, std::string(want_name[0] == 'I' ? "an " : "a ") + want_name, v);
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  Span<T> s{arr.Data(), arr.ElementLength()};
  borrowed_.push_back(v.As<Napi::Object>());
  t_borrowed.emplace_back(name, reinterpret_cast<uintptr_t>(s.data));
  return s;
}

Span<int32_t> ArgReader::int32_array(const Napi::Value& v, const std::string& name) {
  return typed<int32_t>(v, name, napi_int32_array, "Int32Array");
}
Span<float> ArgReader::float32_array(const Napi::Value& v, const std::string& name) {
  return typed<float>(v, name, napi_float32_array, "Float32Array");
}
Span<uint8_t> ArgReader::uint8_array(const Napi::Value& v, const std::string& name) {
  return typed<uint8_t>(v, name, napi_uint8_array, "Uint8Array");
}
Span<uint64_t> ArgReader::biguint64_array(const Napi::Value& v, const std::string& name) {
  return typed<uint64_t>(v, name, napi_biguint64_array, "BigUint64Array");
}

double ArgReader::number(const Napi::Value& v, const std::string& name) const {
  if (!v.IsNumber()) type_error(name, "a number", v);
  double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x)) range_error(name, "a finite number", fmt_number(x));
  return x;
}

int64_t ArgReader::integer(const Napi::Value& v, const std::string& name, int64_t lo,
                           int64_t hi) const {
  if (!v.IsNumber()) type_error(name, "an integer", v);
  double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x)
    range_error(name, "an integer", fmt_number(x));
  if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
    range_error(name, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                fmt_number(x));
  return static_cast<int64_t>(x);
}

uint64_t ArgReader::uint64(const Napi::Value& v, const std::string& name) const {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) range_error(name, "a BigInt in [0, 2^64)", "a BigInt outside that range");
    return x;
  }
  if (v.IsNumber()) return static_cast<uint64_t>(integer(v, name, 0, kMaxSafeInteger));
  type_error(name, "a non-negative integer or BigInt", v);
}

bool ArgReader::boolean(const Napi::Value& v, const std::string& name) const {
  if (!v.IsBoolean()) type_error(name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string ArgReader::string(const Napi::Value& v, const std::string& name) const {
  if (!v.IsString()) type_error(name, "a string", v);
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object ArgReader::object(const Napi::Value& v, const std::string& name) const {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray() || v.IsFunction())
    type_error(name, "an object", v);
  return v.As<Napi::Object>();
}

std::vector<int32_t> ArgReader::int_list(const Napi::Value& v, const std::string& name, int64_t lo,
                                         int64_t hi) const {
  std::vector<int32_t> out;
  auto check = [&](int64_t x, size_t i) {
    if (x < lo || x >= hi)
      range_error(name + "[" + std::to_string(i) + "]",
                  "in [" + std::to_string(lo) + ", " + std::to_string(hi) + ")", std::to_string(x));
  };
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    auto a = v.As<Napi::Int32Array>();
    for (size_t i = 0; i < a.ElementLength(); ++i) {
      check(a[i], i);
      out.push_back(a[i]);
    }
    return out;
  }
  if (!v.IsArray()) type_error(name, "an array of integers or an Int32Array", v);
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    int64_t x = integer(a.Get(i), name + "[" + std::to_string(i) + "]", INT32_MIN, INT32_MAX);
    check(x, i);
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

// ---- Options ----

Options::Options(ArgReader& r, const Napi::Value& v, const std::string& name,
                 std::initializer_list<const char*> known)
    : r_(r), name_(name) {
  if (!ArgReader::present(v)) return;
  obj_ = r.object(v, name);
  empty_ = false;
  Napi::Array keys = obj_.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).ToString().Utf8Value();
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    // An explicitly undefined unknown field is harmless (object spreads produce them).
    if (!ok && !obj_.Get(key).IsUndefined()) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw Napi::TypeError::New(r.env(), r.fn() + ": " + name + " has unknown field '" + key +
                                              "' (known fields: " + list + ")");
    }
  }
}

Napi::Value Options::get(const char* key) const {
  if (empty_) return r_.env().Undefined();
  return obj_.Get(key);
}

double Options::number(const char* key, double dflt) const {
  Napi::Value v = get(key);
  return ArgReader::present(v) ? r_.number(v, path(key)) : dflt;
}

int64_t Options::integer(const char* key, int64_t dflt, int64_t lo, int64_t hi) const {
  Napi::Value v = get(key);
  return ArgReader::present(v) ? r_.integer(v, path(key), lo, hi) : dflt;
}

bool Options::boolean(const char* key, bool dflt) const {
  Napi::Value v = get(key);
  return ArgReader::present(v) ? r_.boolean(v, path(key)) : dflt;
}

std::string Options::string(const char* key, const std::string& dflt) const {
  Napi::Value v = get(key);
  return ArgReader::present(v) ? r_.string(v, path(key)) : dflt;
}

double Options::bounded(const char* key, double dflt, Bounds b) const {
  Napi::Value v = get(key);
  if (!ArgReader::present(v)) return dflt;
  const double x = r_.number(v, path(key));
  const bool ok = (b.lo_open ? x > b.lo : x >= b.lo) && (b.hi_open ? x < b.hi : x <= b.hi);
  if (!ok) {
    std::string want;
    if (std::isinf(b.hi))
      want = (b.lo_open ? "> " : ">= ") + fmt_number(b.lo);
    else if (std::isinf(b.lo))
      want = (b.hi_open ? "< " : "<= ") + fmt_number(b.hi);
    else
      want = std::string("in ") + (b.lo_open ? "(" : "[") + fmt_number(b.lo) + ", " + fmt_number(b.hi) +
             (b.hi_open ? ")" : "]");
    r_.range_error(path(key), want, fmt_number(x));
  }
  return x;
}

int Options::choice(const char* key, int dflt, std::initializer_list<const char*> choices) const {
  Napi::Value v = get(key);
  if (!ArgReader::present(v)) return dflt;
  std::string list;
  for (const char* c : choices) list += (list.empty() ? "'" : ", '") + std::string(c) + "'";
  if (!v.IsString()) r_.type_error(path(key), "one of " + list, v);
  std::string s = v.As<Napi::String>().Utf8Value();
  int i = 0;
  for (const char* c : choices) {
    if (s == c) return i;
    ++i;
  }
  r_.range_error(path(key), "one of " + list, "'" + s + "'");
}

// ---- content checks ----

int check_packed(const ArgReader& r, Span<int32_t> tokens, Span<int32_t> cu,
                 const std::string& tokens_name, const std::string& cu_name, int64_t max_len) {
  if (cu.size < 2)
    r.range_error(cu_name + " must have at least 2 entries (one sequence), got " +
                  std::to_string(cu.size));
  if (cu.size - 1 > static_cast<size_t>(std::numeric_limits<int>::max()))
    r.range_error(cu_name + " has too many sequences");
  if (cu[0] != 0) r.range_error(cu_name + "[0]", "0", std::to_string(cu[0]));
  for (size_t s = 1; s < cu.size; ++s) {
    if (cu[s] < cu[s - 1])
      r.range_error(cu_name + " must be non-decreasing (" + cu_name + "[" + std::to_string(s) +
                    "] = " + std::to_string(cu[s]) + " < " + cu_name + "[" +
                    std::to_string(s - 1) + "] = " + std::to_string(cu[s - 1]) + ")");
    if (cu[s] - cu[s - 1] > max_len)
      r.range_error("sequence " + std::to_string(s - 1) + " of " + cu_name + " has " +
                    std::to_string(cu[s] - cu[s - 1]) +
                    " tokens, more than the model's max_position_embeddings " +
                    std::to_string(max_len));
  }
  if (static_cast<size_t>(cu[cu.size - 1]) != tokens.size)
    r.range_error(cu_name + " last entry must equal " + tokens_name + ".length = " +
                  std::to_string(tokens.size) + " (got " + std::to_string(cu[cu.size - 1]) + ")");
  return static_cast<int>(cu.size - 1);
}

void check_token_ids(const ArgReader& r, Span<int32_t> tokens, const std::string& name, int vocab) {
  for (size_t i = 0; i < tokens.size; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      r.range_error(name + "[" + std::to_string(i) + "]",
                    "a token id in [0, " + std::to_string(vocab) + ")", std::to_string(tokens[i]));
}

void check_finite(const ArgReader& r, Span<float> x, const std::string& name) {
  for (size_t i = 0; i < x.size; ++i)
    if (!std::isfinite(x[i]))
      r.range_error(name + "[" + std::to_string(i) + "]", "finite", fmt_number(x[i]));
}

}  // namespace troupe::addon
