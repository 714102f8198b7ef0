#include "registry.h"

#include <algorithm>
#include <stdexcept>

namespace troupe::addon {

PolicyRegistry& PolicyRegistry::instance() {
  // Deliberately leaked: policies still registered at process exit are reclaimed by the OS, and
  // a static destructor here could run after the backend singleton it would need is gone.
  static PolicyRegistry* r = new PolicyRegistry();
  return *r;
}

PolicyHandle PolicyRegistry::add(std::shared_ptr<Policy> policy) {
  std::lock_guard<std::mutex> lk(mu_);
  if (next_ == 0) throw std::runtime_error("policy handle space exhausted");
  PolicyHandle h = next_++;
  entries_.emplace(h, Entry{std::move(policy), 1});
  return h;
}

std::shared_ptr<Policy> PolicyRegistry::get(PolicyHandle h) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = entries_.find(h);
  return it == entries_.end() ? nullptr : it->second.policy;
}

bool PolicyRegistry::retain(PolicyHandle h) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = entries_.find(h);
  if (it == entries_.end()) return false;
  ++it->second.refs;
  return true;
}

bool PolicyRegistry::release(PolicyHandle h) {
  std::shared_ptr<Policy> doomed;  // destroyed after the lock is dropped (freeing can be slow)
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(h);
    if (it == entries_.end()) return false;
    if (--it->second.refs <= 0) {
      doomed = std::move(it->second.policy);
      entries_.erase(it);
    }
  }
  return true;
}

std::vector<RegistryEntryInfo> PolicyRegistry::list() const {
  std::vector<RegistryEntryInfo> out;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [h, e] : entries_) out.push_back({h, e.refs});
  }
  std::sort(out.begin(), out.end(),
            [](const RegistryEntryInfo& a, const RegistryEntryInfo& b) { return a.handle < b.handle; });
  return out;
}

}  // namespace troupe::addon
