#include "harness.h"

#include <chrono>
#include <cstring>
#include <exception>

namespace troupe::test {
int g_current_failures = 0;
std::vector<Case>& registry() {
  static std::vector<Case> r;
  return r;
}
void record_failure(const char* file, int line, const std::string& msg) {
  if (g_current_failures < 8) std::printf("    %s:%d: %s\n", file, line, msg.c_str());
  ++g_current_failures;
}
int failures_in_current() { return g_current_failures; }
}  // namespace troupe::test

int main(int argc, char** argv) {
  using namespace troupe::test;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (auto& c : registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    g_current_failures = 0;
    auto t0 = std::chrono::steady_clock::now();
    try {
      c.fn();
    } catch (const std::exception& e) {
      record_failure(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    bool ok = g_current_failures == 0;
    std::printf("%s %s (%.0f ms)\n", ok ? "PASS" : "FAIL", c.name, ms);
    std::fflush(stdout);
    (ok ? passed : failed)++;
  }
  std::printf("native: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
