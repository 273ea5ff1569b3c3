#include "pipeline/execution_cache.h"

namespace a2a {

std::optional<PortValues> ExecutionCache::find(uint64_t key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void ExecutionCache::store(uint64_t key, PortValues outputs) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_[key] = std::move(outputs);
}

size_t ExecutionCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

void ExecutionCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

}  // namespace a2a
