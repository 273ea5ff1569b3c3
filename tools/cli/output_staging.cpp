#include "tools/cli/output_staging.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/atomic_file.h"
#include "base/error.h"

namespace fs = std::filesystem;

namespace a2a::cli {

namespace {

// The staging folder a signal handler removes; empty when none.
char g_staging[4096];

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

// Empties the folder open as `dir` (depth-first, at most `depth` levels), with system calls only.
void empty_folder(int dir, int depth) {
  alignas(8) char buffer[4096];
  for (;;) {
    ::lseek(dir, 0, SEEK_SET);
    const long n = ::syscall(SYS_getdents64, dir, buffer, sizeof(buffer));
    if (n <= 0) return;
    bool removed = false;
    for (long at = 0; at < n;) {
      auto* entry = reinterpret_cast<LinuxDirent64*>(buffer + at);
      at += entry->d_reclen;
      const char* name = entry->d_name;
      if (!std::strcmp(name, ".") || !std::strcmp(name, "..")) continue;
      if (::unlinkat(dir, name, 0) == 0) {
        removed = true;
        continue;
      }
      if ((errno == EISDIR || errno == EPERM) && depth > 0) {
        int sub = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
          empty_folder(sub, depth - 1);
          ::close(sub);
        }
        if (::unlinkat(dir, name, AT_REMOVEDIR) == 0) removed = true;
      }
    }
    if (!removed) return;
  }
}

}  // namespace

void remove_staging_from_signal_handler() {
  if (!g_staging[0]) return;
  int dir = ::open(g_staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir >= 0) {
    empty_folder(dir, 32);
    ::close(dir);
  }
  ::rmdir(g_staging);
}

std::string checked_output_path(const std::string& out_dir, const std::string& save) {
  fs::path dir = out_dir;
  for (const auto& part : fs::path(save).parent_path()) {
    dir /= part;
    if (fs::is_symlink(dir))
      throw Error(
          ErrorKind::Input, "output_path_escapes",
          "output '" + save + "': '" + dir.string() + "' is a symbolic link; outputs are never written through links");
  }
  return (fs::path(out_dir) / save).string();
}

OutputStaging::OutputStaging(std::string out_dir) : out_dir_(std::move(out_dir)) {
  static std::atomic<int> counter{0};
  std::error_code ec;
  fs::create_directories(out_dir_, ec);
  folder_ =
      (fs::path(out_dir_) / (".a2a-staging-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
  if (!fs::create_directory(folder_, ec) || ec)
    throw Error(ErrorKind::Input, "write_failed",
                "cannot create the staging folder '" + folder_ + "': " + ec.message());
  if (folder_.size() < sizeof(g_staging)) std::memcpy(g_staging, folder_.c_str(), folder_.size() + 1);
}

OutputStaging::~OutputStaging() {
  g_staging[0] = '\0';
  std::error_code ec;
  fs::remove_all(folder_, ec);
}

std::string OutputStaging::staged_path(const std::string& save) const {
  fs::path path = fs::path(folder_) / save;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  return path.string();
}

std::vector<std::string> OutputStaging::publish(const std::vector<std::string>& written) {
  std::vector<std::pair<std::string, std::string>> moves;
  for (const auto& path : written) {
    const std::string relative = fs::path(path).lexically_relative(folder_).string();
    moves.push_back({path, checked_output_path(out_dir_, relative)});
  }
  std::vector<std::string> published;
  for (const auto& [from, to] : moves) {
    std::error_code ec;
    fs::create_directories(fs::path(to).parent_path(), ec);
    move_into_place(from, to);
    published.push_back(to);
  }
  return published;
}

}  // namespace a2a::cli
