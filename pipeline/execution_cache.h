#pragma once
// Stage outputs kept between runs, keyed by stage type, parameters, seed and input contents.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "pipeline/stage.h"

namespace a2a {

class ExecutionCache {
 public:
  std::optional<PortValues> find(uint64_t key) const;
  void store(uint64_t key, PortValues outputs);
  size_t size() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::map<uint64_t, PortValues> entries_;
};

}  // namespace a2a
