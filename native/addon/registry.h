// The process-wide table of live policies. The addon's shared library is loaded once per process
// and every worker thread's module instance sees this same table, so a handle (a plain number that
// can be posted to a worker) names the same weights everywhere: weights are never duplicated per
// thread. Plain C++ (no napi.h) so its rules can be read without the binding around it.
//
// Lifetime: an entry counts references (one per JS holder: the creator, each attach). The entry
// leaves the table when the count reaches zero; calls already running keep their own shared_ptr,
// so the policy itself is destroyed only when the last running call finishes.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "train/policy.h"

namespace troupe::addon {

using PolicyHandle = uint32_t;

struct RegistryEntryInfo {
  PolicyHandle handle;
  int refs;
};

class PolicyRegistry {
 public:
  static PolicyRegistry& instance();

  // Registers a new policy with one reference. Handles are never reused, so a stale handle held
  // by a slow worker can never alias a policy created later.
  PolicyHandle add(std::shared_ptr<Policy> policy);
  // The policy, or null when the handle is unknown or fully released.
  std::shared_ptr<Policy> get(PolicyHandle h) const;
  // Adds a reference; false when the handle is unknown.
  bool retain(PolicyHandle h);
  // Drops a reference (the entry leaves the table at zero); false when the handle is unknown.
  bool release(PolicyHandle h);
  std::vector<RegistryEntryInfo> list() const;

 private:
  struct Entry {
    std::shared_ptr<Policy> policy;
    int refs = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<PolicyHandle, Entry> entries_;
  PolicyHandle next_ = 1;  // 0 is never a valid handle (catches zero-initialised fields in JS)
};

}  // namespace troupe::addon
