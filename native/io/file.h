// Whole-file reads and crash-safe file replacement (POSIX). A checkpoint written with
// write_file_atomic is, under its final name, either the complete old file or the complete new
// one: the bytes go to a temporary file in the same directory, are fsync'ed, the temporary is
// renamed over the target (atomic within one filesystem) and the directory is fsync'ed so the
// rename itself survives a power cut.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe::io {

// Every I/O failure; the message names the path and the OS reason (strerror).
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string read_file(const std::string& path);

struct ByteChunk {
  const void* data;
  size_t size;
};

// Streams bytes into a temporary file and publishes it under `path` on commit(). Destroying an
// uncommitted writer (an exception while producing the data) removes the temporary and leaves
// any existing file at `path` untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void commit();
  const std::string& temp_path() const { return tmp_path_; }

 private:
  void abort() noexcept;
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
};

void write_file_atomic(const std::string& path, const std::string& bytes);
// Writes the chunks back to back without concatenating them first (multi-GB checkpoints).
void write_file_atomic(const std::string& path, const std::vector<ByteChunk>& chunks);

}  // namespace troupe::io
