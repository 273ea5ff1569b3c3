#pragma once
// Renders executor events for a person: a progress line on a TTY, warnings, streamed text, and a
// per-stage timing table at the end.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/events.h"
#include "pipeline/pipeline.h"

namespace a2a::cli {

class ProgressView {
 public:
  ProgressView(bool tty, bool quiet);
  void on_event(const StageEvent& event);
  // Clears the progress line (before other output).
  void finish_line();
  std::string timing_table(const RunResult& result) const;

 private:
  bool tty_;
  bool quiet_;
  bool line_open_ = false;
  bool streaming_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace a2a::cli
