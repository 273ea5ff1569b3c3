#include "tools/cli/progress.h"

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace a2a::cli {

ProgressView::ProgressView(bool tty, bool quiet) : tty_(tty), quiet_(quiet) {}

void ProgressView::finish_line() {
  if (line_open_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    line_open_ = false;
  }
}

void ProgressView::on_event(const StageEvent& e) {
  using K = StageEvent::Kind;
  if (e.kind == K::Stream) {
    finish_line();
    std::fputs(e.message.c_str(), stdout);
    std::fflush(stdout);
    streaming_ = true;
    return;
  }
  if (streaming_ && e.kind != K::Progress) {
    std::fputs("\n", stdout);
    std::fflush(stdout);
    streaming_ = false;
  }
  if (e.kind == K::Warning) {
    finish_line();
    std::fprintf(stderr, "warning: %s: %s\n", e.stage_id.c_str(), e.message.c_str());
    return;
  }
  if (e.kind == K::Failed) {
    finish_line();
    return;
  }
  if (quiet_ || !tty_) return;
  if (e.kind == K::Progress) {
    auto now = std::chrono::steady_clock::now();
    bool last = e.total > 0 && e.done >= e.total;
    if (!last && now - last_draw_ < std::chrono::milliseconds(50)) return;
    last_draw_ = now;
    const int width = 30;
    int filled = e.total > 0 ? static_cast<int>(width * e.done / e.total) : 0;
    std::string bar(filled, '#');
    bar += std::string(width - filled, '.');
    std::fprintf(stderr, "\r\033[K%-16s [%s] %lld/%lld %s", e.stage_id.c_str(), bar.c_str(),
                 static_cast<long long>(e.done), static_cast<long long>(e.total), e.message.c_str());
    std::fflush(stderr);
    line_open_ = true;
    return;
  }
  if (e.kind == K::Started) {
    std::fprintf(stderr, "\r\033[K%-16s running (%s)", e.stage_id.c_str(), e.stage_type.c_str());
    std::fflush(stderr);
    line_open_ = true;
  }
}

std::string ProgressView::timing_table(const RunResult& result) const {
  std::ostringstream os;
  size_t id_width = 5, type_width = 4;
  for (const auto& r : result.stages) {
    id_width = std::max(id_width, r.id.size());
    type_width = std::max(type_width, r.type.size());
  }
  os << std::left << std::setw(static_cast<int>(id_width) + 2) << "stage" << std::setw(static_cast<int>(type_width) + 2)
     << "type" << std::setw(9) << "status" << std::right << std::setw(10) << "seconds"
     << "\n";
  for (const auto& r : result.stages) {
    os << std::left << std::setw(static_cast<int>(id_width) + 2) << r.id << std::setw(static_cast<int>(type_width) + 2)
       << r.type << std::setw(9) << stage_status_name(r.status) << std::right << std::setw(10) << std::fixed
       << std::setprecision(3) << r.seconds;
    if (!r.note.empty()) os << "  " << r.note;
    os << "\n";
  }
  os << std::left << std::setw(static_cast<int>(id_width + type_width) + 13) << "total" << std::right << std::setw(10)
     << std::fixed << std::setprecision(3) << result.seconds << "\n";
  return os.str();
}

}  // namespace a2a::cli
