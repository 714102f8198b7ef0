// A small strict JSON DOM (RFC 8259) for config.json and safetensors headers. Strict because both
// files come from outside the process: the parser rejects anything JSON does not allow (comments,
// trailing commas, NaN, invalid UTF-8, duplicate keys) with the byte offset of the problem, and
// limits nesting depth and node count so hostile input cannot exhaust the stack or memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace troupe::io {

// Every JSON problem (syntax or a field of the wrong type) is a JsonError.
class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JsonParseOptions {
  int max_depth = 256;           // arrays/objects nested deeper than this are rejected
  size_t max_nodes = 0;          // 0 = unlimited; otherwise reject documents with more values
};

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;  // insertion order preserved

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : v_(b) {}
  // Any integer type (not bool) is an integer number; values beyond int64 become plain doubles.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T i) : v_(make_int(i)) {}
  Json(double d) : v_(Num{d, 0, false}) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(Array a) : v_(std::move(a)) {}
  Json(Object o) : v_(std::move(o)) {}
  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }
  // A float widened so that it prints as the float's shortest decimal (1e-6f -> 1e-06, not
  // 9.9999999747524271e-07): config.json written from float fields then reads naturally.
  static Json from_float(float f);

  // `what` names the document in error messages ("config.json: invalid JSON: ... at byte 17").
  static Json parse(const std::string& text, const std::string& what = "JSON",
                    const JsonParseOptions& opt = {});

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::Null; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_number() const { return type() == Type::Number; }
  // True for a number written without fraction or exponent whose value fits int64.
  bool is_integer() const { return is_number() && std::get<Num>(v_).is_int; }
  bool is_string() const { return type() == Type::String; }
  bool is_array() const { return type() == Type::Array; }
  bool is_object() const { return type() == Type::Object; }

  // Checked accessors: throw JsonError("expected <type>") on a type mismatch.
  bool as_bool() const;
  double as_double() const;
  int64_t as_int() const;  // requires is_integer()
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // Object lookup: nullptr when absent (or when this is not an object). Linear: objects here are small.
  const Json* find(const std::string& key) const;
  // Builders: set() replaces an existing key in place, otherwise appends; push_back() appends.
  Json& set(const std::string& key, Json value);
  Json& push_back(Json value);

  // Compact when indent < 0, otherwise pretty-printed with `indent` spaces. Throws JsonError for
  // non-finite numbers (JSON has none).
  std::string dump(int indent = -1) const;

 private:
  struct Num {
    double d;
    int64_t i;
    bool is_int;
  };
  template <class T>
  static Num make_int(T i) {
    if constexpr (std::is_unsigned_v<T>) {
      if (static_cast<uint64_t>(i) > static_cast<uint64_t>(INT64_MAX)) return Num{static_cast<double>(i), 0, false};
    }
    return Num{static_cast<double>(i), static_cast<int64_t>(i), true};
  }
  friend class JsonParser;
  std::variant<std::nullptr_t, bool, Num, std::string, Array, Object> v_;
  void dump_to(std::string& out, int indent, int level) const;
};

// Typed, named access to the fields of one JSON object. Errors read
// "<what>: field '<key>' must be an integer" / "<what>: field '<key>' is missing".
// The optional getters treat an explicit null like an absent field.
class JsonFields {
 public:
  JsonFields(const Json& obj, std::string what);  // throws unless obj is an object
  const Json* get(const std::string& key) const;  // nullptr when absent
  bool has(const std::string& key) const;         // present and not null
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t dflt) const;
  double get_number(const std::string& key) const;
  double get_number(const std::string& key, double dflt) const;
  bool get_bool(const std::string& key) const;
  bool get_bool(const std::string& key, bool dflt) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  const std::string& what() const { return what_; }

 private:
  const Json& require(const std::string& key) const;
  const Json& obj_;
  std::string what_;
};

// Appends `s` as a quoted JSON string (escaping quotes, backslashes and control characters).
void json_escape_to(std::string& out, const std::string& s);

}  // namespace troupe::io
