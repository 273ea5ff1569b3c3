#pragma once
// What the executor reports while it runs. The CLI renders these as a progress bar and a timing
// table; tests record them.
#include <cstdint>
#include <functional>
#include <string>

namespace a2a {

struct StageEvent {
  enum class Kind { Started, Progress, Finished, Skipped, Cached, Failed, Warning, Stream };
  Kind kind = Kind::Started;
  std::string stage_id;
  std::string stage_type;
  double seconds = 0.0;  // Finished and Failed: wall time of the stage
  int64_t done = 0;      // Progress
  int64_t total = 0;     // Progress
  std::string message;   // Progress label, Skipped reason, Failed error, Warning text, Stream text
};

const char* event_kind_name(StageEvent::Kind kind);

// Called from worker threads, one event at a time (the executor serialises calls).
using EventSink = std::function<void(const StageEvent&)>;

}  // namespace a2a
