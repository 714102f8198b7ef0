#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "file.h"
#include "json.h"

// F32 tensors are copied byte for byte between the file and float arrays.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors I/O assumes a little-endian host"
#endif

namespace troupe::io {

namespace {

// The reference implementation's limit; a larger header is a corrupt length prefix, not a model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Real headers have ~8 JSON values per tensor and at most some 10^5 tensors; the cap keeps a
// hostile 100 MB header of "[0,0,0,..." from becoming gigabytes of DOM.
constexpr size_t kMaxHeaderValues = 4'000'000;

struct DTypeDesc {
  DType type;
  const char* name;
  size_t size;
};
constexpr DTypeDesc kDTypes[] = {
    {DType::BOOL, "BOOL", 1},       {DType::U8, "U8", 1},           {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E8M0, "F8_E8M0", 1},
    {DType::I16, "I16", 2},         {DType::U16, "U16", 2},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::I32, "I32", 4},         {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},         {DType::F64, "F64", 8},         {DType::C64, "C64", 8},
    {DType::I64, "I64", 8},         {DType::U64, "U64", 8},
};

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Element count with overflow detection; a zero dimension makes the product 0 regardless of the
// others (the count is mathematically 0, so no overflow can matter).
bool checked_numel(const std::vector<int64_t>& shape, int64_t* out) {
  for (int64_t d : shape)
    if (d == 0) return *out = 0, true;
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || n > static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  *out = static_cast<int64_t>(n);
  return true;
}

}  // namespace

const char* dtype_name(DType t) { return kDTypes[static_cast<int>(t)].name; }
size_t dtype_size(DType t) { return kDTypes[static_cast<int>(t)].size; }
bool dtype_converts_to_f32(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
bool dtype_from_name(const std::string& name, DType* out) {
  for (const auto& d : kDTypes)
    if (name == d.name) return *out = d.type, true;
  return false;
}

float bf16_to_f32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;  // BF16 is the top half of an f32
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf, or NaN with its payload kept
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half (mant * 2^-24) is a normal float: shift the leading 1 into the implicit bit.
    uint32_t e = 113;  // biased exponent of 2^-14
    while (!(mant & 0x400)) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ---- reader ------------------------------------------------------------------------------

struct SafetensorsReader::Storage {
  const uint8_t* data = nullptr;
  size_t size = 0;
  void* map = nullptr;  // non-null when mmap'ed
  std::string owned;    // the bytes when not mapped
  ~Storage() {
    if (map) ::munmap(map, size);
  }
};

void SafetensorsReader::fail(const std::string& msg) const { throw SafetensorsError(path_ + ": " + msg); }

SafetensorsReader SafetensorsReader::open(const std::string& path) {
  auto st = std::make_shared<Storage>();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SafetensorsError(path + ": cannot open: " + std::strerror(errno));
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) {
    int err = errno;
    ::close(fd);
    throw SafetensorsError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(sb.st_mode)) {
    ::close(fd);
    throw SafetensorsError(path + ": not a regular file");
  }
  st->size = static_cast<size_t>(sb.st_size);
  if (st->size > 0) {
    void* m = ::mmap(nullptr, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      st->map = m;
      st->data = static_cast<const uint8_t*>(m);
    }
  }
  ::close(fd);  // a mapping outlives its descriptor
  if (!st->map && st->size > 0) {
    try {
      st->owned = read_file(path);
    } catch (const std::exception& e) {
      throw SafetensorsError(e.what());
    }
    st->data = reinterpret_cast<const uint8_t*>(st->owned.data());
    st->size = st->owned.size();
  }
  SafetensorsReader r;
  r.path_ = path;
  r.storage_ = std::move(st);
  r.parse();
  return r;
}

SafetensorsReader SafetensorsReader::from_bytes(std::string bytes, const std::string& label) {
  auto st = std::make_shared<Storage>();
  st->owned = std::move(bytes);
  st->data = reinterpret_cast<const uint8_t*>(st->owned.data());
  st->size = st->owned.size();
  SafetensorsReader r;
  r.path_ = label;
  r.storage_ = std::move(st);
  r.parse();
  return r;
}

void SafetensorsReader::parse() {
  const uint8_t* base = storage_->data;
  const uint64_t size = storage_->size;
  if (size == 0) fail("file is empty (expected an 8-byte header length)");
  if (size < 8) fail("truncated: " + std::to_string(size) + " bytes, less than the 8-byte header length");
  const uint64_t n = load_le64(base);
  if (n > kMaxHeaderBytes)
    fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    fail("header length " + std::to_string(n) + " exceeds the file size (" + std::to_string(size) + " bytes)");
  data_ = base + 8 + n;
  data_size_ = size - 8 - n;

  try {
    JsonParseOptions opt;
    opt.max_nodes = kMaxHeaderValues;
    Json root = Json::parse(std::string(reinterpret_cast<const char*>(base + 8), n), path_ + ": header", opt);
    if (!root.is_object()) fail("header is not a JSON object");
    for (const auto& [name, entry] : root.as_object()) {
      if (name == "__metadata__") {
        if (entry.is_null()) continue;
        if (!entry.is_object()) fail("__metadata__ must be an object of strings");
        for (const auto& [k, v] : entry.as_object()) {
          if (!v.is_string()) fail("__metadata__ value of '" + k + "' must be a string");
          metadata_[k] = v.as_string();
        }
        continue;
      }
      const std::string what = path_ + ": tensor '" + name + "'";
      if (!entry.is_object()) throw SafetensorsError(what + ": entry must be an object");
      JsonFields f(entry, what);
      TensorInfo ti;
      std::string dt = f.get_string("dtype");
      if (!dtype_from_name(dt, &ti.dtype)) f.fail("dtype", "has unknown value '" + dt + "'");

      const Json* shape = f.get("shape");
      if (!shape) f.fail("shape", "is missing");
      if (!shape->is_array()) f.fail("shape", "must be an array of non-negative integers");
      for (size_t i = 0; i < shape->as_array().size(); ++i) {
        const Json& d = shape->as_array()[i];
        if (!d.is_integer()) f.fail("shape", "entry " + std::to_string(i) + " must be an integer");
        if (d.as_int() < 0) f.fail("shape", "entry " + std::to_string(i) + " is negative (" + std::to_string(d.as_int()) + ")");
        ti.shape.push_back(d.as_int());
      }
      if (!checked_numel(ti.shape, &ti.numel)) f.fail("shape", shape_str(ti.shape) + " has too many elements");

      const Json* off = f.get("data_offsets");
      if (!off) f.fail("data_offsets", "is missing");
      if (!off->is_array() || off->as_array().size() != 2 || !off->as_array()[0].is_integer() ||
          !off->as_array()[1].is_integer() || off->as_array()[0].as_int() < 0 || off->as_array()[1].as_int() < 0)
        f.fail("data_offsets", "must be [begin, end] with non-negative integers");
      ti.begin = static_cast<uint64_t>(off->as_array()[0].as_int());
      ti.end = static_cast<uint64_t>(off->as_array()[1].as_int());
      const std::string range = "[" + std::to_string(ti.begin) + ", " + std::to_string(ti.end) + "]";
      if (ti.begin > ti.end) f.fail("data_offsets", range + " has begin after end");
      const uint64_t elt = dtype_size(ti.dtype);
      const uint64_t numel = static_cast<uint64_t>(ti.numel);
      if (numel > UINT64_MAX / elt || numel * elt != ti.end - ti.begin)
        throw SafetensorsError(what + ": size mismatch: shape " + shape_str(ti.shape) + " of " + dt + " needs " +
                               std::to_string(numel) + " x " + std::to_string(elt) + " bytes but data_offsets " +
                               range + " span " + std::to_string(ti.end - ti.begin));
      if (ti.end > data_size_)
        throw SafetensorsError(what + ": data_offsets " + range + " lie outside the data section (" +
                               std::to_string(data_size_) + " bytes)");
      index_.emplace(name, names_.size());
      names_.push_back(name);
      infos_.push_back(std::move(ti));
    }
  } catch (const JsonError& e) {
    throw SafetensorsError(e.what());
  }

  // Tensors must not share bytes (a writer bug or a crafted file would otherwise alias weights).
  // Gaps are allowed: some writers align tensors.
  std::vector<size_t> order;
  for (size_t i = 0; i < infos_.size(); ++i)
    if (infos_[i].end > infos_[i].begin) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return infos_[a].begin < infos_[b].begin; });
  for (size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = infos_[order[k - 1]];
    const TensorInfo& cur = infos_[order[k]];
    if (cur.begin < prev.end) fail("tensors '" + names_[order[k - 1]] + "' and '" + names_[order[k]] + "' overlap");
  }
}

const TensorInfo& SafetensorsReader::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("no tensor named '" + name + "'");
  return infos_[it->second];
}

const uint8_t* SafetensorsReader::raw_data(const std::string& name) const { return data_ + info(name).begin; }

void SafetensorsReader::read_f32(const std::string& name, float* dst, size_t numel) const {
  const TensorInfo& ti = info(name);
  if (numel != static_cast<uint64_t>(ti.numel))
    fail("tensor '" + name + "' has " + std::to_string(ti.numel) + " elements (shape " + shape_str(ti.shape) +
         ") but the destination holds " + std::to_string(numel));
  if (!dtype_converts_to_f32(ti.dtype))
    fail("tensor '" + name + "' has dtype " + dtype_name(ti.dtype) + ", which does not convert to float32");
  if (numel == 0) return;
  const uint8_t* src = data_ + ti.begin;
  switch (ti.dtype) {
    case DType::F32: std::memcpy(dst, src, numel * 4); break;
    case DType::BF16:
      for (size_t i = 0; i < numel; ++i) dst[i] = bf16_to_f32(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      break;
    case DType::F16:
      for (size_t i = 0; i < numel; ++i) dst[i] = f16_to_f32(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      break;
    default: break;  // excluded above
  }
}

std::vector<float> SafetensorsReader::read_f32(const std::string& name) const {
  std::vector<float> out(static_cast<size_t>(info(name).numel));
  read_f32(name, out.data(), out.size());
  return out;
}

// ---- writer ------------------------------------------------------------------------------

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // transformers refuses (or, in older releases, crashes on) a safetensors file whose metadata
  // lacks "format"; save_pretrained writes "pt", and so do we unless the caller chose a format.
  std::map<std::string, std::string> meta_with_format = metadata;
  meta_with_format.emplace("format", "pt");
  Json::Object header;
  Json::Object meta;
  for (const auto& [k, v] : meta_with_format) meta.emplace_back(k, Json(v));
  header.emplace_back("__metadata__", Json(std::move(meta)));
  std::unordered_set<std::string> seen;
  std::vector<uint64_t> bytes(tensors.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& t = tensors[i];
    const std::string what = path + ": tensor '" + t.name + "'";
    if (t.name == "__metadata__") throw std::invalid_argument(what + ": the name is reserved");
    if (!seen.insert(t.name).second) throw std::invalid_argument(what + ": duplicate name");
    int64_t numel = 0;
    if (!checked_numel(t.shape, &numel) || static_cast<uint64_t>(numel) > UINT64_MAX / 4 / 2)
      throw std::invalid_argument(what + ": invalid shape " + shape_str(t.shape));
    if (numel > 0 && !t.data && !t.fill) throw std::invalid_argument(what + ": neither data nor fill given");
    bytes[i] = static_cast<uint64_t>(numel) * 4;
    Json::Array shape;
    for (int64_t d : t.shape) shape.emplace_back(d);
    Json::Object entry;
    entry.emplace_back("dtype", Json("F32"));
    entry.emplace_back("shape", Json(std::move(shape)));
    entry.emplace_back("data_offsets", Json(Json::Array{Json(offset), Json(offset + bytes[i])}));
    header.emplace_back(t.name, Json(std::move(entry)));
    offset += bytes[i];
  }
  std::string h = Json(std::move(header)).dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // the data section then starts 8-byte aligned

  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  AtomicFileWriter w(path);
  w.write(len, 8);
  w.write(h.data(), h.size());
  std::vector<float> staging;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (bytes[i] == 0) continue;
    if (tensors[i].data) {
      w.write(tensors[i].data, bytes[i]);
    } else {
      staging.resize(bytes[i] / 4);
      tensors[i].fill(staging.data());
      w.write(staging.data(), bytes[i]);
    }
  }
  w.commit();
}

// ---- Hugging Face model directory --------------------------------------------------------

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
  SafetensorsCheckpoint c;
  c.dir_ = dir;
  const std::string index_path = dir + "/model.safetensors.index.json";
  struct stat sb {};
  if (::stat(index_path.c_str(), &sb) != 0) {
    const std::string single = dir + "/model.safetensors";
    if (::stat(single.c_str(), &sb) != 0)
      throw SafetensorsError(dir + ": no model.safetensors or model.safetensors.index.json");
    c.shards_.push_back(SafetensorsReader::open(single));
    for (const auto& n : c.shards_[0].names()) c.where_.emplace(n, 0);
    return c;
  }
  try {
    Json index = Json::parse(read_file(index_path), index_path);
    JsonFields f(index, index_path);
    const Json* map = f.get("weight_map");
    if (!map || !map->is_object()) f.fail("weight_map", "must be an object {tensor: shard file}");
    std::unordered_map<std::string, size_t> shard_of_file;
    for (const auto& [tensor, file] : map->as_object()) {
      if (!file.is_string()) f.fail("weight_map", "entry '" + tensor + "' must be a file name");
      const std::string& fn = file.as_string();
      // Shards live beside the index; a path that leaves the directory is refused.
      if (fn.empty() || fn.find('/') != std::string::npos || fn == "." || fn == "..")
        f.fail("weight_map", "entry '" + tensor + "' names an invalid shard file '" + fn + "'");
      auto it = shard_of_file.find(fn);
      if (it == shard_of_file.end()) {
        it = shard_of_file.emplace(fn, c.shards_.size()).first;
        c.shards_.push_back(SafetensorsReader::open(dir + "/" + fn));
      }
      if (!c.shards_[it->second].has(tensor))
        throw SafetensorsError(index_path + ": tensor '" + tensor + "' is listed in '" + fn + "', which lacks it");
      c.where_.emplace(tensor, it->second);
    }
  } catch (const JsonError& e) {
    throw SafetensorsError(e.what());
  } catch (const IoError& e) {
    throw SafetensorsError(e.what());
  }
  return c;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& kv : where_) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

const SafetensorsReader& SafetensorsCheckpoint::shard(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw SafetensorsError(dir_ + ": no tensor named '" + name + "'");
  return shards_[it->second];
}

}  // namespace troupe::io
