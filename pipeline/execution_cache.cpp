#include "pipeline/execution_cache.h"

namespace a2a {

size_t port_values_bytes(const PortValues& values) {
  size_t total = 0;
  for (const auto& kv : values) total += kv.second.bytes();
  return total;
}

ExecutionCache::ExecutionCache(size_t budget_bytes) : budget_(budget_bytes) {}

std::optional<PortValues> ExecutionCache::find(uint64_t key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  recency_.splice(recency_.begin(), recency_, it->second.recency);
  return it->second.outputs;
}

void ExecutionCache::store(uint64_t key, PortValues outputs) {
  const size_t size = port_values_bytes(outputs);
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.bytes;
    recency_.erase(it->second.recency);
    entries_.erase(it);
  }
  if (size > budget_) return;
  recency_.push_front(key);
  entries_[key] = Entry{std::move(outputs), size, recency_.begin()};
  bytes_ += size;
  evict_past_budget();
}

void ExecutionCache::evict_past_budget() {
  while (bytes_ > budget_ && !recency_.empty()) {
    auto it = entries_.find(recency_.back());
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    recency_.pop_back();
  }
}

void ExecutionCache::set_budget(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  budget_ = bytes;
  evict_past_budget();
}

size_t ExecutionCache::budget() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return budget_;
}

size_t ExecutionCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t ExecutionCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

void ExecutionCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
  recency_.clear();
  bytes_ = 0;
}

}  // namespace a2a
