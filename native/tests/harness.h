// A minimal test harness for the native core: TEST(name) registers a case; CHECK* macros record
// failures with file:line and keep going; the runner prints one line per case and the closing
// line "N passed, M failed". Run `troupe_native_tests [substring]` to filter cases by name.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace troupe::test {

struct Case {
  const char* name;
  std::function<void()> fn;
};
std::vector<Case>& registry();
void record_failure(const char* file, int line, const std::string& msg);
int failures_in_current();

struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

}  // namespace troupe::test

#define TROUPE_CAT2(a, b) a##b
#define TROUPE_CAT(a, b) TROUPE_CAT2(a, b)
#define TEST(name)                                                                        \
  static void TROUPE_CAT(test_fn_, name)();                                               \
  static ::troupe::test::Registrar TROUPE_CAT(test_reg_, name)(#name, TROUPE_CAT(test_fn_, name)); \
  static void TROUPE_CAT(test_fn_, name)()

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) ::troupe::test::record_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_MSG(cond, msg)                                                              \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::ostringstream os_;                                                             \
      os_ << "CHECK(" #cond ") " << msg;                                                  \
      ::troupe::test::record_failure(__FILE__, __LINE__, os_.str());                      \
    }                                                                                     \
  } while (0)

// |a - b| <= atol + rtol * |b|
#define CHECK_NEAR(a, b, atol, rtol)                                                      \
  do {                                                                                    \
    double a_ = (a), b_ = (b);                                                            \
    if (!(std::fabs(a_ - b_) <= (atol) + (rtol) * std::fabs(b_))) {                       \
      std::ostringstream os_;                                                             \
      os_ << #a " = " << a_ << " vs " #b " = " << b_;                                     \
      ::troupe::test::record_failure(__FILE__, __LINE__, os_.str());                      \
    }                                                                                     \
  } while (0)

#define CHECK_THROWS(expr)                                                                \
  do {                                                                                    \
    bool threw_ = false;                                                                  \
    try { (void)(expr); } catch (const std::exception&) { threw_ = true; }                \
    if (!threw_) ::troupe::test::record_failure(__FILE__, __LINE__, "expected throw: " #expr); \
  } while (0)
