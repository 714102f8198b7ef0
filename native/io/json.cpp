#include "json.h"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace troupe::io {

namespace {

// Locale-independent number <-> text. std::from_chars/to_chars ignore LC_NUMERIC (a host process
// that calls setlocale must not turn "1.5" into 1) and to_chars gives the shortest round-trip form.
// Standard libraries without the floating-point overloads fall back to strtod / %.17g.
#if defined(__cpp_lib_to_chars)
bool text_to_double(const char* b, const char* e, double& out) {
  auto r = std::from_chars(b, e, out, std::chars_format::general);
  return r.ec == std::errc() && r.ptr == e;
}
void double_to_text(std::string& out, double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}
void float_to_text(std::string& out, float f) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  out.append(buf, r.ptr);
}
#else
bool text_to_double(const char* b, const char* e, double& out) {
  std::string s(b, e);
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}
void double_to_text(std::string& out, double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  out += buf;
}
void float_to_text(std::string& out, float f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  out += buf;
}
#endif

const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return "a boolean";
    case Json::Type::Number: return "a number";
    case Json::Type::String: return "a string";
    case Json::Type::Array: return "an array";
    case Json::Type::Object: return "an object";
  }
  return "?";
}

// Length of the valid UTF-8 sequence starting at s[0] (n bytes available), or 0 when invalid.
// Rejects overlong forms, UTF-16 surrogates and code points above U+10FFFF, as RFC 3629 does.
size_t utf8_sequence_length(const unsigned char* s, size_t n) {
  auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return i < n && s[i] >= lo && s[i] <= hi;
  };
  unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

// Recursive descent over the byte buffer; recursion depth is bounded by opt.max_depth.
class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& what, const JsonParseOptions& opt)
      : s_(text.data()), n_(text.size()), what_(what), opt_(opt) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != n_) fail("unexpected content after the JSON value");
    return v;
  }

 private:
  const char* s_;
  size_t n_;
  size_t pos_ = 0;
  size_t nodes_ = 0;
  const std::string& what_;
  const JsonParseOptions& opt_;

  [[noreturn]] void fail(const std::string& msg, size_t at) const {
    throw JsonError(what_ + ": invalid JSON: " + msg + " at byte " + std::to_string(at));
  }
  [[noreturn]] void fail(const std::string& msg) const { fail(msg, pos_); }

  void skip_ws() {
    while (pos_ < n_ && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() const { return pos_ < n_ ? s_[pos_] : '\0'; }
  void expect_literal(const char* lit) {
    size_t len = std::strlen(lit);
    if (n_ - pos_ < len || std::memcmp(s_ + pos_, lit, len) != 0) fail("invalid literal (expected '" + std::string(lit) + "')");
    pos_ += len;
  }

  Json parse_value(int depth) {
    if (opt_.max_nodes && ++nodes_ > opt_.max_nodes)
      fail("more than " + std::to_string(opt_.max_nodes) + " values");
    if (pos_ >= n_) fail("unexpected end of input");
    char c = s_[pos_];
    switch (c) {
      case 'n': expect_literal("null"); return Json();
      case 't': expect_literal("true"); return Json(true);
      case 'f': expect_literal("false"); return Json(false);
      case '"': return Json(parse_string());
      case '[': return parse_array(depth + 1);
      case '{': return parse_object(depth + 1);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F)
          fail("unexpected byte 0x" + hex2(static_cast<unsigned char>(c)));
        fail(std::string("unexpected character '") + c + "'");
    }
  }

  static std::string hex2(unsigned v) {
    char b[3];
    std::snprintf(b, sizeof b, "%02X", v & 0xFF);
    return b;
  }

  void enter(int depth) {
    if (depth > opt_.max_depth) fail("nesting deeper than " + std::to_string(opt_.max_depth) + " levels");
  }

  Json parse_array(int depth) {
    enter(depth);
    ++pos_;  // '['
    Json::Array items;
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return Json(std::move(items));
    }
    for (;;) {
      skip_ws();
      items.push_back(parse_value(depth));
      skip_ws();
      if (pos_ >= n_) fail("unterminated array");
      char c = s_[pos_++];
      if (c == ']') return Json(std::move(items));
      if (c != ',') fail("expected ',' or ']' in array", pos_ - 1);
    }
  }

  Json parse_object(int depth) {
    enter(depth);
    ++pos_;  // '{'
    Json::Object members;
    std::vector<size_t> key_offsets;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return Json(std::move(members));
    }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail(pos_ >= n_ ? "unterminated object" : "expected a string key in object");
      key_offsets.push_back(pos_);
      std::string key = parse_string();
      skip_ws();
      if (peek() != ':') fail("expected ':' after object key");
      ++pos_;
      skip_ws();
      members.emplace_back(std::move(key), parse_value(depth));
      skip_ws();
      if (pos_ >= n_) fail("unterminated object");
      char c = s_[pos_++];
      if (c == '}') break;
      if (c != ',') fail("expected ',' or '}' in object", pos_ - 1);
    }
    reject_duplicate_keys(members, key_offsets);
    return Json(std::move(members));
  }

  // Sorting keeps this O(n log n): a hostile header with a million keys must not take hours.
  void reject_duplicate_keys(const Json::Object& m, const std::vector<size_t>& offsets) const {
    if (m.size() < 2) return;
    std::vector<size_t> idx(m.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      int c = m[a].first.compare(m[b].first);
      return c != 0 ? c < 0 : a < b;
    });
    size_t worst = SIZE_MAX;  // report the first duplicate in document order
    for (size_t i = 1; i < idx.size(); ++i)
      if (m[idx[i]].first == m[idx[i - 1]].first) worst = std::min(worst, idx[i]);
    if (worst != SIZE_MAX) fail("duplicate key '" + m[worst].first + "'", offsets[worst]);
  }

  uint32_t parse_hex4() {
    if (n_ - pos_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else fail("invalid hex digit in \\u escape", pos_ + i);
    }
    pos_ += 4;
    return v;
  }

  std::string parse_string() {
    size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      // Copy the run of ordinary ASCII bytes in one go.
      size_t run = pos_;
      while (run < n_) {
        unsigned char c = static_cast<unsigned char>(s_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      out.append(s_ + pos_, run - pos_);
      pos_ = run;
      if (pos_ >= n_) fail("unterminated string", start);
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("unescaped control character 0x" + hex2(c) + " in string");
      if (c >= 0x80) {
        size_t len = utf8_sequence_length(reinterpret_cast<const unsigned char*>(s_ + pos_), n_ - pos_);
        if (len == 0) fail("invalid UTF-8 in string");
        out.append(s_ + pos_, len);
        pos_ += len;
        continue;
      }
      // Backslash escape.
      size_t esc = pos_++;
      if (pos_ >= n_) fail("unterminated string", start);
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in \\u escape", esc);
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n_ - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
              fail("high surrogate not followed by a low surrogate", esc);
            pos_ += 2;
            uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate not followed by a low surrogate", esc);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("invalid escape '\\") + e + "'", esc);
      }
    }
  }

  // Grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Json parse_number() {
    size_t start = pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (peek() >= '0' && peek() <= '9') fail("leading zero in number", start);
    } else if (digits() == 0) {
      fail("invalid number", start);
    }
    bool integral = true;
    if (peek() == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0) fail("expected digits after '.'", start);
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      integral = false;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected digits in exponent", start);
    }
    const char* b = s_ + start;
    const char* e = s_ + pos_;
    double d = 0;
    if (!text_to_double(b, e, d)) fail("number out of range", start);
    Json j(d);
    if (integral) {
      int64_t i = 0;
      auto r = std::from_chars(b, e, i);
      // Beyond int64 the literal stays a (rounded) double, so get_int reports it as not an integer.
      if (r.ec == std::errc() && r.ptr == e) j.v_ = Json::Num{d, i, true};
    }
    return j;
  }
};

Json Json::parse(const std::string& text, const std::string& what, const JsonParseOptions& opt) {
  return JsonParser(text, what, opt).parse_document();
}

Json Json::from_float(float f) {
  std::string s;
  float_to_text(s, f);
  double d = 0;
  if (!std::isfinite(f) || !text_to_double(s.data(), s.data() + s.size(), d)) d = static_cast<double>(f);
  return Json(d);
}

namespace {
[[noreturn]] void type_error(const char* expected, Json::Type got) {
  throw JsonError(std::string("JSON: expected ") + expected + ", got " + type_name(got));
}
}  // namespace

bool Json::as_bool() const {
  if (!is_bool()) type_error("a boolean", type());
  return std::get<bool>(v_);
}
double Json::as_double() const {
  if (!is_number()) type_error("a number", type());
  return std::get<Num>(v_).d;
}
int64_t Json::as_int() const {
  if (!is_integer()) type_error("an integer", type());
  return std::get<Num>(v_).i;
}
const std::string& Json::as_string() const {
  if (!is_string()) type_error("a string", type());
  return std::get<std::string>(v_);
}
const Json::Array& Json::as_array() const {
  if (!is_array()) type_error("an array", type());
  return std::get<Array>(v_);
}
const Json::Object& Json::as_object() const {
  if (!is_object()) type_error("an object", type());
  return std::get<Object>(v_);
}

const Json* Json::find(const std::string& key) const {
  if (!is_object()) return nullptr;
  for (const auto& kv : std::get<Object>(v_))
    if (kv.first == key) return &kv.second;
  return nullptr;
}

Json& Json::set(const std::string& key, Json value) {
  if (is_null()) v_ = Object{};
  if (!is_object()) type_error("an object", type());
  auto& obj = std::get<Object>(v_);
  for (auto& kv : obj)
    if (kv.first == key) return kv.second = std::move(value);
  obj.emplace_back(key, std::move(value));
  return obj.back().second;
}

Json& Json::push_back(Json value) {
  if (is_null()) v_ = Array{};
  if (!is_array()) type_error("an array", type());
  auto& arr = std::get<Array>(v_);
  arr.push_back(std::move(value));
  return arr.back();
}

void json_escape_to(std::string& out, const std::string& s) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c >= 0x80) {
      // Refusing invalid UTF-8 here keeps every document we write parseable by strict readers
      // (ours, serde_json in the safetensors reference, Python's json).
      size_t len = utf8_sequence_length(p + i, n - i);
      if (len == 0) throw JsonError("JSON: string is not valid UTF-8 (byte " + std::to_string(i) + ")");
      out.append(s, i, len);
      i += len;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void Json::dump_to(std::string& out, int indent, int level) const {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * lvl, ' ');
  };
  switch (type()) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += std::get<bool>(v_) ? "true" : "false"; break;
    case Type::Number: {
      const Num& n = std::get<Num>(v_);
      if (n.is_int) {
        out += std::to_string(n.i);
      } else {
        if (!std::isfinite(n.d)) throw JsonError("JSON: cannot write a non-finite number");
        size_t at = out.size();
        double_to_text(out, n.d);
        // Keep floats recognisable as floats (0.0 stays 0.0, as Python writes it), so a reader
        // that types by syntax (Python's json) sees the same type we had.
        if (out.find_first_of(".eEn", at) == std::string::npos) out += ".0";
      }
      break;
    }
    case Type::String: json_escape_to(out, std::get<std::string>(v_)); break;
    case Type::Array: {
      const auto& a = std::get<Array>(v_);
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        newline(level + 1);
        a[i].dump_to(out, indent, level + 1);
      }
      if (!a.empty()) newline(level);
      out += ']';
      break;
    }
    case Type::Object: {
      const auto& o = std::get<Object>(v_);
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += ',';
        newline(level + 1);
        json_escape_to(out, o[i].first);
        out += indent < 0 ? ":" : ": ";
        o[i].second.dump_to(out, indent, level + 1);
      }
      if (!o.empty()) newline(level);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

// ---- JsonFields --------------------------------------------------------------------------

JsonFields::JsonFields(const Json& obj, std::string what) : obj_(obj), what_(std::move(what)) {
  if (!obj.is_object()) throw JsonError(what_ + ": expected a JSON object, got " + type_name(obj.type()));
}

void JsonFields::fail(const std::string& key, const std::string& problem) const {
  throw JsonError(what_ + ": field '" + key + "' " + problem);
}

const Json* JsonFields::get(const std::string& key) const { return obj_.find(key); }

bool JsonFields::has(const std::string& key) const {
  const Json* j = get(key);
  return j && !j->is_null();
}

const Json& JsonFields::require(const std::string& key) const {
  const Json* j = get(key);
  if (!j) fail(key, "is missing");
  return *j;
}

int64_t JsonFields::get_int(const std::string& key) const {
  const Json& j = require(key);
  if (!j.is_integer()) fail(key, "must be an integer");
  return j.as_int();
}
int64_t JsonFields::get_int(const std::string& key, int64_t dflt) const {
  return has(key) ? get_int(key) : dflt;
}
double JsonFields::get_number(const std::string& key) const {
  const Json& j = require(key);
  if (!j.is_number()) fail(key, "must be a number");
  return j.as_double();
}
double JsonFields::get_number(const std::string& key, double dflt) const {
  return has(key) ? get_number(key) : dflt;
}
bool JsonFields::get_bool(const std::string& key) const {
  const Json& j = require(key);
  if (!j.is_bool()) fail(key, "must be true or false");
  return j.as_bool();
}
bool JsonFields::get_bool(const std::string& key, bool dflt) const { return has(key) ? get_bool(key) : dflt; }
std::string JsonFields::get_string(const std::string& key) const {
  const Json& j = require(key);
  if (!j.is_string()) fail(key, "must be a string");
  return j.as_string();
}
std::string JsonFields::get_string(const std::string& key, const std::string& dflt) const {
  return has(key) ? get_string(key) : dflt;
}

}  // namespace troupe::io
