// Tests for native/io: strict JSON, atomic files, safetensors (round trip, hand-built files,
// corrupt inputs, fuzzing). Expected values come from the format specs and hand-built bytes,
// never from the code under test.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "harness.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"

using namespace troupe::io;

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

#define CHECK_ERROR(expr, substr)                                                          \
  do {                                                                                     \
    std::string m_ = error_of([&] { (void)(expr); });                                      \
    CHECK_MSG(m_.find(substr) != std::string::npos, "expected '" << substr << "' in: " << m_); \
  } while (0)

// A fresh directory per test, removed with everything in it afterwards.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/troupe_io_XXXXXX";
    if (!::mkdtemp(&tmpl[0])) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> list() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float float_of(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// A safetensors image built byte by byte: u64 LE header length, header text, data.
std::string st_image(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}
std::string u16le(std::initializer_list<uint16_t> vals) {
  std::string s;
  for (uint16_t v : vals) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>(v >> 8);
  }
  return s;
}

}  // namespace

// ---- JSON ----------------------------------------------------------------------------------

TEST(json_parses_values_and_keeps_key_order) {
  Json j = Json::parse(R"( {"z": [1, -2.5, true, false, null, "x"], "a": {}, "m": [] } )");
  CHECK(j.is_object());
  const auto& o = j.as_object();
  CHECK(o.size() == 3 && o[0].first == "z" && o[1].first == "a" && o[2].first == "m");
  const auto& arr = j.find("z")->as_array();
  CHECK(arr.size() == 6);
  CHECK(arr[0].is_integer() && arr[0].as_int() == 1);
  CHECK(arr[1].is_number() && !arr[1].is_integer() && arr[1].as_double() == -2.5);
  CHECK(arr[2].as_bool() == true && arr[3].as_bool() == false && arr[4].is_null());
  CHECK(arr[5].as_string() == "x");
  CHECK(j.find("a")->is_object() && j.find("a")->as_object().empty());
  CHECK(j.find("missing") == nullptr);
  CHECK_THROWS(arr[5].as_int());
}

TEST(json_numbers) {
  CHECK(Json::parse("0").as_int() == 0);
  Json negzero = Json::parse("-0");
  CHECK(negzero.is_integer() && negzero.as_int() == 0);
  Json e3 = Json::parse("1e3");
  CHECK(!e3.is_integer() && e3.as_double() == 1000.0);
  CHECK(!Json::parse("1.0").is_integer());
  CHECK(Json::parse("9223372036854775807").as_int() == INT64_MAX);
  CHECK(Json::parse("-9223372036854775808").as_int() == INT64_MIN);
  Json big = Json::parse("12345678901234567890");  // beyond int64: a double, not an integer
  CHECK(!big.is_integer() && big.as_double() == 12345678901234567890.0);
  CHECK(Json::parse("0.1").as_double() == 0.1);
  CHECK(Json::parse("-1.5E-3").as_double() == -0.0015);
  CHECK(Json::parse("2.2250738585072014e-308").as_double() == DBL_MIN);
  for (const char* bad : {"01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "--1", "1.e5", "- 1"})
    CHECK_MSG(error_of([&] { Json::parse(bad); }).find("invalid JSON") != std::string::npos, bad);
  CHECK_ERROR(Json::parse("1e400"), "out of range");
}

TEST(json_string_escapes_and_utf8) {
  CHECK(Json::parse(R"("\"\\\/\b\f\n\r\t")").as_string() == "\"\\/\b\f\n\r\t");
  CHECK(Json::parse(R"("\u00e9")").as_string() == "\xC3\xA9");
  CHECK(Json::parse(R"("\u20AC")").as_string() == "\xE2\x82\xAC");
  CHECK(Json::parse(R"("\ud83d\ude00")").as_string() == "\xF0\x9F\x98\x80");  // U+1F600 via surrogates
  CHECK(Json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));
  CHECK(Json::parse("\"\xC3\xA9\xF0\x9F\x98\x80\"").as_string() == "\xC3\xA9\xF0\x9F\x98\x80");
  CHECK_ERROR(Json::parse(R"("\ud83d")"), "low surrogate");
  CHECK_ERROR(Json::parse(R"("\ude00")"), "unpaired low surrogate");
  CHECK_ERROR(Json::parse(R"("\ud83d\u0041")"), "low surrogate");
  CHECK_ERROR(Json::parse(R"("\u12G4")"), "hex digit");
  CHECK_ERROR(Json::parse(R"("\x")"), "invalid escape");
  CHECK_ERROR(Json::parse("\"a\nb\""), "control character");
  CHECK_ERROR(Json::parse("\"\xFF\""), "UTF-8");
  CHECK_ERROR(Json::parse("\"\xC0\xAF\""), "UTF-8");          // overlong '/'
  CHECK_ERROR(Json::parse("\"\xED\xA0\x80\""), "UTF-8");      // encoded surrogate
  CHECK_ERROR(Json::parse("\"\xF4\x90\x80\x80\""), "UTF-8");  // above U+10FFFF
  CHECK_ERROR(Json::parse("\"\xE2\x82\""), "UTF-8");          // truncated sequence
  CHECK_ERROR(Json::parse("\"abc"), "unterminated string");
}

TEST(json_rejects_invalid_documents_with_offsets) {
  for (const char* bad : {"", " ", "{", "[", "[1,]", "{\"a\":1,}", "{a:1}", "[1 2]", "tru", "nul", "NaN",
                          "Infinity", "// c\n1", "{\"a\" 1}", "1 2", "'x'", "[\"abc]", "{\"a\":}", "{,}", "[,1]"})
    CHECK_MSG(error_of([&] { Json::parse(bad); }).find("invalid JSON") != std::string::npos, "accepted: " << bad);
  CHECK_ERROR(Json::parse("[1, 2, x]", "doc.json"), "doc.json: invalid JSON: unexpected character 'x' at byte 7");
  CHECK_ERROR(Json::parse("{\"a\":1,\"b\":2,\"a\":3}"), "duplicate key 'a' at byte 13");
  CHECK_ERROR(Json::parse("[1] x"), "after the JSON value at byte 4");
}

TEST(json_depth_and_node_limits) {
  std::string ok = std::string(256, '[') + std::string(256, ']');
  CHECK(Json::parse(ok).is_array());
  std::string deep = std::string(257, '[') + std::string(257, ']');
  CHECK_ERROR(Json::parse(deep), "nesting deeper than 256");
  // Far deeper than any stack could recurse: must fail cleanly at the limit.
  CHECK_ERROR(Json::parse(std::string(1000000, '[')), "nesting");
  CHECK_ERROR(Json::parse(std::string(100000, '{') ), "invalid JSON");
  JsonParseOptions opt;
  opt.max_nodes = 3;
  CHECK(Json::parse("[1,2]", "x", opt).is_array());
  CHECK_ERROR(Json::parse("[1,2,3]", "x", opt), "more than 3 values");
}

TEST(json_writer_formats_and_round_trips) {
  Json j = Json::object();
  j.set("i", 42);
  j.set("neg", -7);
  j.set("f", 0.0);
  j.set("tenth", 0.1);
  j.set("eps", Json::from_float(1e-6f));
  j.set("big", 1e300);
  j.set("s", "q\"\\\n\x01\xC3\xA9");
  j.set("a", Json(Json::Array{Json(), Json(true), Json(1.5)}));
  j.set("i", 43);  // replaces in place
  CHECK(j.dump() ==
        R"({"i":43,"neg":-7,"f":0.0,"tenth":0.1,"eps":1e-06,"big":1e+300,"s":"q\"\\\n\u0001)"
        "\xC3\xA9"
        R"(","a":[null,true,1.5]})");
  CHECK(Json::parse("{\"a\":[1,{}],\"b\":[]}").dump(2) == "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
  // Beyond int64 an integer is written as the nearest double (2^64), still marked as a float.
  CHECK(Json(static_cast<uint64_t>(UINT64_MAX)).dump() == "18446744073709551616.0");
  CHECK_ERROR(Json(std::nan("")).dump(), "non-finite");
  CHECK_ERROR(Json(INFINITY).dump(), "non-finite");
  CHECK_ERROR(Json("\xFF").dump(), "UTF-8");

  // Every finite double survives dump -> parse bit for bit.
  SplitMix rng{1};
  for (int i = 0; i < 20000; ++i) {
    uint64_t b = rng.next();
    double d;
    std::memcpy(&d, &b, 8);
    if (!std::isfinite(d)) continue;
    double back = Json::parse(Json(d).dump()).as_double();
    CHECK_MSG(std::memcmp(&back, &d, 8) == 0, Json(d).dump());
  }
  // Every ASCII character survives string escaping.
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  CHECK(Json::parse(Json(all).dump()).as_string() == all);
}

TEST(json_fields_name_the_key) {
  Json j = Json::parse(R"({"hidden_size": 12.5, "name": 3, "flag": "yes", "n": null, "k": 7})");
  JsonFields f(j, "config.json");
  CHECK_ERROR(f.get_int("hidden_size"), "config.json: field 'hidden_size' must be an integer");
  CHECK_ERROR(f.get_int("absent"), "config.json: field 'absent' is missing");
  CHECK_ERROR(f.get_string("name"), "field 'name' must be a string");
  CHECK_ERROR(f.get_bool("flag"), "field 'flag' must be true or false");
  CHECK_ERROR(f.get_int("n"), "field 'n' must be an integer");  // null is not a value when required
  CHECK(f.get_int("n", 5) == 5);                                 // but means "default" when optional
  CHECK(f.get_int("absent", 9) == 9);
  CHECK(f.get_int("k", 9) == 7);
  CHECK(f.get_number("k") == 7.0);
  CHECK(f.has("k") && !f.has("n") && !f.has("absent"));
  CHECK_ERROR(JsonFields(Json::parse("[1]"), "config.json"), "config.json: expected a JSON object");
}

// ---- files -----------------------------------------------------------------------------------

TEST(file_read_errors_name_the_path) {
  TempDir d;
  CHECK_ERROR(read_file(d.file("nope.bin")), "nope.bin");
  CHECK_ERROR(read_file(d.file("nope.bin")), "No such file");
  CHECK_ERROR(read_file(d.path), "Is a directory");
  CHECK_ERROR(write_file_atomic(d.file("no/such/dir/x"), std::string("a")), "no/such/dir/x");
}

TEST(file_atomic_write_replaces_and_leaves_no_temp) {
  TempDir d;
  std::string p = d.file("ckpt.bin");
  write_file_atomic(p, std::string("old content"));
  CHECK(read_file(p) == "old content");
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  write_file_atomic(p, big);
  CHECK(read_file(p) == big);
  std::string a = "first-", b = "second";
  write_file_atomic(p, std::vector<ByteChunk>{{a.data(), a.size()}, {nullptr, 0}, {b.data(), b.size()}});
  CHECK(read_file(p) == "first-second");
  CHECK(d.list() == std::vector<std::string>{"ckpt.bin"});
  write_file_atomic(p, std::string());
  CHECK(read_file(p).empty());
}

TEST(file_atomic_write_abandoned_keeps_old_content) {
  TempDir d;
  std::string p = d.file("ckpt.bin");
  write_file_atomic(p, std::string("old"));
  {
    AtomicFileWriter w(p);
    w.write("new new new", 11);
  }  // destroyed without commit, as when producing the data throws
  CHECK(read_file(p) == "old");
  CHECK(d.list() == std::vector<std::string>{"ckpt.bin"});

  // A process that dies mid-write (no destructor runs) leaves the target untouched.
  pid_t pid = ::fork();
  if (pid == 0) {
    AtomicFileWriter w(p);
    w.write("partial", 7);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(read_file(p) == "old");
}

TEST(file_atomic_write_readers_see_old_or_new) {
  TempDir d;
  std::string p = d.file("state.bin");
  const std::string A(100000, 'a'), B(250000, 'b');
  write_file_atomic(p, A);
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      std::string s = read_file(p);
      if (s != A && s != B) ++torn;
      ++reads;
    }
  });
  for (int i = 0; i < 60; ++i) write_file_atomic(p, i % 2 ? A : B);
  done = true;
  reader.join();
  CHECK(torn.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(d.list().size() == 1);
}

// ---- safetensors: conversions -----------------------------------------------------------------

TEST(safetensors_f16_conversion_is_exact_for_all_halves) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    int sign = (h >> 15) ? -1 : 1;
    int exp = (h >> 10) & 0x1F;
    int mant = h & 0x3FF;
    if (exp == 31 && mant != 0) {
      // NaN: payload moves to the top of the float mantissa, sign kept.
      CHECK_MSG(std::isnan(f) && bits_of(f) == (((h & 0x8000u) << 16) | 0x7F800000u | (mant << 13)), h);
      continue;
    }
    double ref = exp == 31 ? sign * HUGE_VAL
               : exp == 0  ? sign * std::ldexp(mant, -24)                 // subnormal
                           : sign * std::ldexp(1024 + mant, exp - 25);    // normal
    CHECK_MSG(static_cast<double>(f) == ref && std::signbit(f) == (sign < 0), "h=" << h);
  }
}

TEST(safetensors_bf16_conversion_is_exact) {
  for (uint32_t b = 0; b < 65536; ++b) CHECK(bits_of(bf16_to_f32(static_cast<uint16_t>(b))) == b << 16);
}

// ---- safetensors: round trip ------------------------------------------------------------------

TEST(safetensors_round_trip_bit_exact) {
  TempDir d;
  std::vector<float> special = {float_of(0x7FC00001u), float_of(0xFFBFFFFFu), float_of(0x7F800001u),  // NaN payloads
                                -0.0f, 0.0f, float_of(0x00000001u), float_of(0x807FFFFFu),           // denormals
                                INFINITY, -INFINITY, FLT_MAX, -FLT_MIN, 1.0f / 3.0f};
  std::vector<float> random(1000);
  SplitMix rng{7};
  for (auto& x : random) x = float_of(static_cast<uint32_t>(rng.next()));
  float scalar = 2.5f;
  std::vector<TensorToWrite> ts = {
      {"model.layers.0.self_attn.q_proj.weight", {3, 4}, special.data(), {}},
      {"scalar", {}, &scalar, {}},
      {"empty", {0, 5}, nullptr, {}},
      {"random", {10, 10, 10}, random.data(), {}},
      {"filled", {3}, nullptr, [](float* dst) { dst[0] = 1; dst[1] = 2; dst[2] = 3; }},
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "caf\xC3\xA9 \"quoted\"\n"}};
  std::string p = d.file("model.safetensors");
  write_safetensors(p, ts, meta);
  CHECK(d.list() == std::vector<std::string>{"model.safetensors"});

  // Layout, checked on the raw bytes: header length a multiple of 8, padded with spaces, data
  // contiguous in the order given.
  std::string raw = read_file(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[i]);
  CHECK(n % 8 == 0);
  CHECK(raw[8] == '{');
  size_t close = raw.find_last_of('}', 8 + n - 1);
  CHECK(close != std::string::npos && raw.find_first_not_of(' ', close + 1) >= 8 + n);
  const size_t data_bytes = (12 + 1 + 0 + 1000 + 3) * 4;
  CHECK(raw.size() == 8 + n + data_bytes);
  const char* data = raw.data() + 8 + n;
  CHECK(std::memcmp(data, special.data(), 48) == 0);
  CHECK(std::memcmp(data + 48, &scalar, 4) == 0);
  CHECK(std::memcmp(data + 52, random.data(), 4000) == 0);

  SafetensorsReader r = SafetensorsReader::open(p);
  CHECK(r.names().size() == 5);
  CHECK(r.metadata() == meta);
  const TensorInfo& q = r.info("model.layers.0.self_attn.q_proj.weight");
  CHECK(q.dtype == DType::F32 && q.shape == (std::vector<int64_t>{3, 4}) && q.numel == 12);
  CHECK(r.info("scalar").shape.empty() && r.info("scalar").numel == 1);
  CHECK(r.info("empty").numel == 0 && r.read_f32("empty").empty());
  std::vector<float> back = r.read_f32("model.layers.0.self_attn.q_proj.weight");
  CHECK(std::memcmp(back.data(), special.data(), 48) == 0);
  back = r.read_f32("random");
  CHECK(std::memcmp(back.data(), random.data(), 4000) == 0);
  CHECK(r.read_f32("scalar")[0] == 2.5f);
  CHECK(r.read_f32("filled") == (std::vector<float>{1, 2, 3}));

  // Same file again from memory; overwriting an existing checkpoint works.
  SafetensorsReader m = SafetensorsReader::from_bytes(raw, "mem");
  CHECK(m.names() == r.names());
  write_safetensors(p, {{"only", {2}, special.data(), {}}});
  CHECK(SafetensorsReader::open(p).names() == std::vector<std::string>{"only"});
  // Without metadata the file still carries the "format" key transformers checks for.
  CHECK(SafetensorsReader::open(p).metadata() == (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST(safetensors_writer_rejects_bad_tensors_and_keeps_old_file) {
  TempDir d;
  std::string p = d.file("m.safetensors");
  float x[2] = {1, 2};
  write_safetensors(p, {{"a", {2}, x, {}}});
  std::string before = read_file(p);
  CHECK_ERROR(write_safetensors(p, {{"a", {2}, x, {}}, {"a", {2}, x, {}}}), "duplicate");
  CHECK_ERROR(write_safetensors(p, {{"__metadata__", {2}, x, {}}}), "reserved");
  CHECK_ERROR(write_safetensors(p, {{"b", {2}, nullptr, {}}}), "tensor 'b'");
  CHECK_ERROR(write_safetensors(p, {{"b", {-1}, x, {}}}), "invalid shape");
  CHECK_ERROR(write_safetensors(p, {{"b", {2}, nullptr, [](float*) { throw std::runtime_error("device lost"); }}}),
              "device lost");
  CHECK(read_file(p) == before);
  CHECK(d.list().size() == 1);
  write_safetensors(p, {{"a", {2}, x, {}}}, {{"format", "np"}});  // a caller's format is kept
  CHECK(SafetensorsReader::open(p).metadata().at("format") == "np");
}

// ---- safetensors: hand-built files --------------------------------------------------------------

TEST(safetensors_reads_hand_built_bf16_and_f16) {
  // BF16: 1.0, -2.0, +inf, 2^-133 (smallest subnormal), -0.0, 3.140625
  std::string bf = u16le({0x3F80, 0xC000, 0x7F80, 0x0001, 0x8000, 0x4049});
  // F16: 1.0, 2^-24 (smallest subnormal), 1023*2^-24 (largest subnormal), 65504, -inf, 0.333251953125
  std::string hf = u16le({0x3C00, 0x0001, 0x03FF, 0x7BFF, 0xFC00, 0x3555, 0x7E00});
  std::string i64(16, '\0');
  i64[0] = 5;
  std::string header =
      R"({"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
      R"("h":{"dtype":"F16","shape":[7],"data_offsets":[12,26]},)"
      R"("ids":{"dtype":"I64","shape":[2],"data_offsets":[26,42]},)"
      R"("__metadata__":{"format":"pt"}})";
  SafetensorsReader r = SafetensorsReader::from_bytes(st_image(header, bf + hf + i64), "hand.safetensors");
  CHECK(r.names() == (std::vector<std::string>{"b", "h", "ids"}));
  CHECK(r.metadata().at("format") == "pt");
  std::vector<float> b = r.read_f32("b");
  CHECK(b.size() == 6);
  CHECK(b[0] == 1.0f && b[1] == -2.0f && b[2] == INFINITY);
  CHECK(b[3] == std::ldexp(1.0f, -133));
  CHECK(b[4] == 0.0f && std::signbit(b[4]));
  CHECK(b[5] == 3.140625f);
  std::vector<float> h = r.read_f32("h");
  CHECK(h[0] == 1.0f && h[1] == std::ldexp(1.0f, -24) && h[2] == 1023 * std::ldexp(1.0f, -24));
  CHECK(h[3] == 65504.0f && h[4] == -INFINITY && h[5] == 0.333251953125f && std::isnan(h[6]));
  CHECK(r.info("ids").dtype == DType::I64 && r.info("ids").numel == 2);
  CHECK(r.raw_data("ids")[0] == 5);
  CHECK_ERROR(r.read_f32("ids"), "I64, which does not convert");
  std::vector<float> small(5);
  CHECK_ERROR(r.read_f32("b", small.data(), 5), "tensor 'b' has 6 elements");
  CHECK_ERROR(r.info("nope"), "hand.safetensors: no tensor named 'nope'");
}

// ---- safetensors: corrupt inputs ---------------------------------------------------------------

namespace {
std::string read_error(const std::string& bytes) {
  return error_of([&] { SafetensorsReader::from_bytes(bytes, "bad.safetensors"); });
}
std::string one_tensor(const std::string& entry, size_t data_bytes = 8) {
  return st_image("{\"t\":" + entry + "}", std::string(data_bytes, '\0'));
}
}  // namespace

#define CHECK_CORRUPT(bytes, substr)                                                                 \
  do {                                                                                               \
    std::string m_ = read_error(bytes);                                                              \
    CHECK_MSG(m_.find("bad.safetensors") != std::string::npos && m_.find(substr) != std::string::npos, \
              "expected '" << substr << "' in: " << m_);                                             \
  } while (0)

TEST(safetensors_corrupt_inputs_name_the_problem) {
  const std::string ok = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  CHECK(read_error(one_tensor(ok)) == "<no exception>");
  CHECK_CORRUPT("", "empty");
  CHECK_CORRUPT(std::string("\x10\0\0", 3), "truncated");
  CHECK_CORRUPT(st_image("{}", "").substr(0, 7), "truncated");
  std::string longer = st_image("{}", "");
  longer[0] = 100;
  CHECK_CORRUPT(longer, "header length 100 exceeds the file size (10 bytes)");
  std::string huge = st_image("{}", "");
  for (int i = 0; i < 7; ++i) huge[i] = 0;
  huge[7] = static_cast<char>(0x80);  // 2^63
  CHECK_CORRUPT(huge, "header length 9223372036854775808 exceeds the limit");
  CHECK_CORRUPT(st_image("{\"t\":", ""), "invalid JSON");
  CHECK_CORRUPT(st_image("[1,2]", ""), "not a JSON object");
  CHECK_CORRUPT(one_tensor("[1]"), "tensor 't': entry must be an object");
  CHECK_CORRUPT(one_tensor(R"({"shape":[2],"data_offsets":[0,8]})"), "tensor 't': field 'dtype' is missing");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","data_offsets":[0,8]})"), "field 'shape' is missing");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[2]})"), "field 'data_offsets' is missing");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"Q4","shape":[2],"data_offsets":[0,8]})"), "unknown value 'Q4'");
  CHECK_CORRUPT(one_tensor(R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})"), "field 'dtype' must be a string");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), "negative");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,8]})"), "must be an integer");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), "field 'shape' must be an array");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), "size mismatch");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"),
                "too many elements");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,0]})"), "size mismatch");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})"), "outside the data section");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"), "begin after end");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), "data_offsets' must be [begin, end]");
  CHECK_CORRUPT(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), "data_offsets");
  CHECK_CORRUPT(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                         std::string(12, '\0')),
                "tensors 'a' and 'b' overlap");
  CHECK_CORRUPT(st_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                         std::string(8, '\0')),
                "duplicate key 'a'");
  CHECK_CORRUPT(st_image(R"({"__metadata__":{"k":1}})", ""), "__metadata__ value of 'k' must be a string");
  CHECK_CORRUPT(st_image(R"({"__metadata__":[]})", ""), "__metadata__ must be an object");
  // Zero-sized tensors may share an offset with anything; gaps between tensors are allowed.
  CHECK(read_error(st_image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            std::string(8, '\0'))) == "<no exception>");

  TempDir d;
  CHECK_ERROR(SafetensorsReader::open(d.file("missing.safetensors")), "missing.safetensors: cannot open: No such file");
  CHECK_ERROR(SafetensorsReader::open(d.path), "not a regular file");
  write_file_atomic(d.file("empty.safetensors"), std::string());
  CHECK_ERROR(SafetensorsReader::open(d.file("empty.safetensors")), "empty.safetensors: file is empty");
}

// ---- safetensors: fuzzing ----------------------------------------------------------------------

namespace {
// Opens `bytes` and touches everything a loader would; returns false when it threw.
bool exercise(const std::string& bytes) {
  try {
    SafetensorsReader r = SafetensorsReader::from_bytes(bytes, "fuzz");
    for (const auto& n : r.names()) {
      const TensorInfo& ti = r.info(n);
      if (dtype_converts_to_f32(ti.dtype)) {
        std::vector<float> v = r.read_f32(n);
        volatile float sink = v.empty() ? 0.0f : v.back();
        (void)sink;
      }
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string fuzz_seed_file(size_t* header_end) {
  TempDir d;
  std::vector<float> w(24), s(3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * i - 3;
  write_safetensors(d.file("seed"), {{"w", {4, 6}, w.data(), {}}, {"s", {3}, s.data(), {}}}, {{"format", "pt"}});
  std::string base = read_file(d.file("seed"));
  // Append BF16 and F16 tensors by rebuilding with a hand-written header.
  std::string header = std::string(base, 8, base.size() - 8 - 108);
  header.erase(header.find_last_not_of(' ') + 1);
  header.pop_back();  // drop the closing brace
  header += R"(,"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[108,116]},"h":{"dtype":"F16","shape":[4],"data_offsets":[116,124]}})";
  std::string data = base.substr(base.size() - 108) + u16le({0x3F80, 0x0001, 0x7FC1, 0x8000, 0x3C00, 0x0001, 0x7C01, 0xFBFF});
  std::string img = st_image(header, data);
  *header_end = 8 + header.size();
  return img;
}
}  // namespace

TEST(safetensors_fuzz_never_crashes) {
  size_t header_end = 0;
  const std::string seed = fuzz_seed_file(&header_end);
  CHECK(exercise(seed));
  SplitMix rng{2024};
  int ok = 0, threw = 0;
  auto run = [&](const std::string& b) { exercise(b) ? ++ok : ++threw; };

  // Truncation at every length through the end of the header, and a few into the data.
  for (size_t len = 0; len <= header_end + 16 && len < seed.size(); ++len) run(seed.substr(0, len));
  // Byte mutations, mostly in the header where the parser lives.
  const char interesting[] = "{}[]\",:0123456789-eE.\\u \x00\xff";
  for (int iter = 0; iter < 6000; ++iter) {
    std::string m = seed;
    int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng.below(4) ? 8 + rng.below(header_end - 8) : rng.below(m.size());
      switch (rng.below(3)) {
        case 0: m[pos] = static_cast<char>(rng.next()); break;
        case 1: m[pos] ^= static_cast<char>(1u << rng.below(8)); break;
        default: m[pos] = interesting[rng.below(sizeof interesting - 1)]; break;
      }
    }
    if (rng.below(8) == 0) m.resize(rng.below(m.size() + 1));
    run(m);
  }
  // Offsets and shapes rewritten to random numbers (overlaps, out-of-range, overflow).
  for (int iter = 0; iter < 3000; ++iter) {
    std::string m = seed;
    for (int k = 0; k < 3; ++k) {
      size_t pos = 8 + rng.below(header_end - 8);
      if (m[pos] >= '0' && m[pos] <= '9') m[pos] = static_cast<char>('0' + rng.below(10));
    }
    run(m);
  }
  // Random length prefixes: tiny, near the true length, huge.
  for (int iter = 0; iter < 2000; ++iter) {
    std::string m = seed;
    uint64_t n = header_end - 8;
    switch (rng.below(3)) {
      case 0: n = rng.below(64); break;
      case 1: n = n + rng.below(17) - 8; break;
      default: n = rng.next(); break;
    }
    for (int i = 0; i < 8; ++i) m[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    run(m);
  }
  // Through the file path (mmap) too.
  TempDir d;
  for (int iter = 0; iter < 200; ++iter) {
    std::string m = seed;
    m[8 + rng.below(header_end - 8)] = static_cast<char>(rng.next());
    write_file_atomic(d.file("f.safetensors"), m);
    try {
      SafetensorsReader r = SafetensorsReader::open(d.file("f.safetensors"));
      for (const auto& n : r.names())
        if (dtype_converts_to_f32(r.info(n).dtype)) r.read_f32(n);
      ++ok;
    } catch (const std::exception&) {
      ++threw;
    }
  }
  std::printf("    fuzz: %d opened, %d rejected\n", ok, threw);
  CHECK(ok > 0 && threw > 0);
}

// ---- Hugging Face model directories ----------------------------------------------------------

TEST(safetensors_checkpoint_dir_single_and_sharded) {
  TempDir d;
  float a[2] = {1, 2}, b[3] = {3, 4, 5};
  write_safetensors(d.file("model.safetensors"), {{"a", {2}, a, {}}, {"b", {3}, b, {}}});
  SafetensorsCheckpoint one = SafetensorsCheckpoint::open_dir(d.path);
  CHECK(one.names() == (std::vector<std::string>{"a", "b"}));

  TempDir s;
  write_safetensors(s.file("model-00001-of-00002.safetensors"), {{"a", {2}, a, {}}});
  write_safetensors(s.file("model-00002-of-00002.safetensors"), {{"b", {3}, b, {}}});
  write_file_atomic(s.file("model.safetensors.index.json"),
                    std::string(R"({"metadata":{"total_size":20},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
                                R"("b":"model-00002-of-00002.safetensors"}})"));
  SafetensorsCheckpoint two = SafetensorsCheckpoint::open_dir(s.path);
  CHECK(two.names() == (std::vector<std::string>{"a", "b"}));
  float got[3];
  two.read_f32("b", got, 3);
  CHECK(got[0] == 3 && got[2] == 5);
  CHECK(two.info("a").numel == 2);
  CHECK_ERROR(two.read_f32("c", got, 1), "no tensor named 'c'");

  write_file_atomic(s.file("model.safetensors.index.json"), std::string(R"({"weight_map":{"a":"../x"}})"));
  CHECK_ERROR(SafetensorsCheckpoint::open_dir(s.path), "invalid shard file '../x'");
  write_file_atomic(s.file("model.safetensors.index.json"),
                    std::string(R"({"weight_map":{"c":"model-00001-of-00002.safetensors"}})"));
  CHECK_ERROR(SafetensorsCheckpoint::open_dir(s.path), "tensor 'c' is listed in");
  TempDir empty;
  CHECK_ERROR(SafetensorsCheckpoint::open_dir(empty.path), "no model.safetensors");
}
