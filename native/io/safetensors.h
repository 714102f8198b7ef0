// safetensors checkpoints, the format Hugging Face reads and writes (model.safetensors).
// Layout: u64 little-endian header length N, N bytes of JSON header
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the data section; a tensor's bytes are data[b, e), row-major, little-endian.
// The reader validates everything before handing out a byte, so a corrupt or hostile file is a
// SafetensorsError naming the file and the tensor/field, never a crash or an out-of-bounds read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::io {

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every byte-sized dtype of the format. Only F32, F16 and BF16 convert to float (read_f32);
// the others are known so that listing a mixed checkpoint works.
enum class DType : uint8_t { BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, F64, C64, I64, U64 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);
bool dtype_from_name(const std::string& name, DType* out);  // false for an unknown name
bool dtype_converts_to_f32(DType t);

// Exact widening conversions (every F16/BF16 value, incl. subnormals, inf and NaN payloads, is a float).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);

struct TensorInfo {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

class SafetensorsReader {
 public:
  // Maps the file read-only (falls back to reading it when mmap is unavailable). Replace
  // checkpoints with write_file_atomic, never truncate one in place: a mapped file that shrinks
  // under a reader faults on access.
  static SafetensorsReader open(const std::string& path);
  // Parses an in-memory image; `label` stands for the path in error messages.
  static SafetensorsReader from_bytes(std::string bytes, const std::string& label = "<memory>");

  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }  // header order
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws naming an unknown tensor
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Raw little-endian bytes of a tensor (not necessarily aligned).
  const uint8_t* raw_data(const std::string& name) const;
  // Converts F32/F16/BF16 into dst; `numel` must equal the tensor's element count.
  void read_f32(const std::string& name, float* dst, size_t numel) const;
  std::vector<float> read_f32(const std::string& name) const;

  struct Storage;  // the mapped or owned file image

 private:
  void parse();
  [[noreturn]] void fail(const std::string& msg) const;
  std::shared_ptr<const Storage> storage_;
  std::string path_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  std::vector<std::string> names_;
  std::vector<TensorInfo> infos_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to save as F32. Either `data` points at numel floats, or `fill` writes them into the
// buffer it is given (e.g. a device-to-host copy), so only one tensor is staged in host memory.
struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;
  std::function<void(float* dst)> fill;
};

// Writes an F32 safetensors file atomically (see file.h), tensors contiguous in the order given,
// header padded with spaces to a multiple of 8 bytes as the reference implementation does.
// The metadata gets "format": "pt" unless it names a format (transformers requires the key).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A Hugging Face model directory: model.safetensors, or shards listed in
// model.safetensors.index.json ({"weight_map": {tensor: shard file}}), as Qwen3-1.7B/4B ship.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open_dir(const std::string& dir);
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const { return shard(name).info(name); }
  void read_f32(const std::string& name, float* dst, size_t numel) const {
    shard(name).read_f32(name, dst, numel);
  }

 private:
  const SafetensorsReader& shard(const std::string& name) const;
  std::string dir_;
  std::vector<SafetensorsReader> shards_;
  std::unordered_map<std::string, size_t> where_;
};

}  // namespace troupe::io
