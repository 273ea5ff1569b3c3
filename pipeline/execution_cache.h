#pragma once
// Stage outputs kept between runs, keyed by stage type, parameters, seed and input contents. Past
// a byte budget the least recently used entries are dropped, so a research loop over many
// parameter variants keeps memory bounded.
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>

#include "pipeline/stage.h"

namespace a2a {

class ExecutionCache {
 public:
  static constexpr size_t kDefaultBudgetMB = 1024;

  explicit ExecutionCache(size_t budget_bytes = kDefaultBudgetMB << 20);

  // The outputs stored under `key`, which become the most recently used.
  std::optional<PortValues> find(uint64_t key);
  // Stores outputs and evicts the least recently used entries past the budget. Outputs larger
  // than the whole budget are not kept.
  void store(uint64_t key, PortValues outputs);

  void set_budget(size_t bytes);
  size_t budget() const;
  size_t bytes() const;  // held now
  size_t size() const;   // entries
  void clear();

 private:
  struct Entry {
    PortValues outputs;
    size_t bytes = 0;
    std::list<uint64_t>::iterator recency;
  };
  void evict_past_budget();

  mutable std::mutex mutex_;
  std::map<uint64_t, Entry> entries_;
  std::list<uint64_t> recency_;  // most recently used first
  size_t budget_;
  size_t bytes_ = 0;
};

// The bytes a stage's outputs hold.
size_t port_values_bytes(const PortValues& values);

}  // namespace a2a
