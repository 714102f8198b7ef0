#include "file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace troupe::io {

namespace {

[[noreturn]] void fail_errno(const std::string& what, const std::string& path, int err) {
  throw IoError(what + " '" + path + "': " + std::strerror(err));
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Large writes are split: Linux transfers at most ~2 GiB per write() call.
void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t n = size < (size_t(1) << 30) ? size : (size_t(1) << 30);
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_errno("cannot write", path, errno);
    }
    p += w;
    size -= static_cast<size_t>(w);
  }
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_errno("cannot open directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems cannot sync a directory at all; the rename has still happened.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) fail_errno("cannot fsync directory", dir, err);
}

std::atomic<unsigned> g_temp_counter{0};

}  // namespace

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno("cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail_errno("cannot stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail_errno("cannot read", path, EISDIR);
  }
  std::string out;
  // st_size is a hint only (pipes and /proc report 0); read until EOF.
  out.resize(st.st_size > 0 ? static_cast<size_t>(st.st_size) : 4096);
  size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    ssize_t r = ::read(fd, &out[used], out.size() - used);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail_errno("cannot read", path, err);
    }
    if (r == 0) break;
    used += static_cast<size_t>(r);
  }
  ::close(fd);
  out.resize(used);
  return out;
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  if (path.empty() || path.back() == '/') throw IoError("cannot write '" + path + "': not a file path");
  const std::string dir = parent_dir(path);
  const size_t slash = path.find_last_of('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  // Same directory as the target so rename() stays within one filesystem. The pid and a counter
  // make the name unique per writer; O_EXCL guards against leftovers of a crashed run.
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp_path_ = (dir == "/" ? "" : dir) + "/." + base + ".tmp." + std::to_string(::getpid()) + "." +
                std::to_string(g_temp_counter.fetch_add(1));
    // 0666 filtered by the umask: the published file gets ordinary permissions (mkstemp's 0600
    // would make checkpoints unreadable to other users).
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) return;
    if (errno != EEXIST) fail_errno("cannot create temporary file for", path, errno);
  }
  fail_errno("cannot create temporary file for", path, EEXIST);
}

AtomicFileWriter::~AtomicFileWriter() { abort(); }

void AtomicFileWriter::abort() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, size_t size) {
  if (fd_ < 0) throw IoError("cannot write '" + path_ + "': writer already committed or failed");
  try {
    write_all(fd_, data, size, path_);
  } catch (...) {
    abort();
    throw;
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw IoError("cannot commit '" + path_ + "': writer already committed or failed");
  if (::fsync(fd_) != 0) {
    int err = errno;
    abort();
    fail_errno("cannot fsync", tmp_path_, err);
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {  // NFS reports deferred write errors here
    int err = errno;
    ::unlink(tmp_path_.c_str());
    fail_errno("cannot close", tmp_path_, err);
  }
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_path_.c_str());
    fail_errno("cannot rename temporary file onto", path_, err);
  }
  fsync_dir(parent_dir(path_));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFileWriter w(path);
  w.write(bytes.data(), bytes.size());
  w.commit();
}

void write_file_atomic(const std::string& path, const std::vector<ByteChunk>& chunks) {
  AtomicFileWriter w(path);
  for (const auto& c : chunks) w.write(c.data, c.size);
  w.commit();
}

}  // namespace troupe::io
