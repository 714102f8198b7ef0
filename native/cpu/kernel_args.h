// Argument checks shared by the layer and attention kernels. Bad input is an exception that names
// the op and the argument, never a crash. Kernels check before entering a parallel region, so
// the exception always leaves on the calling thread (a helper thread must never throw).
#pragma once
#include <stdexcept>
#include <string>

namespace troupe::cpu {

[[noreturn]] inline void bad_arg(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}
// The message is only built on failure, so checks are free on the hot path.
inline void require(bool ok, const char* op, const char* what) {
  if (!ok) bad_arg(op, what);
}

}  // namespace troupe::cpu
