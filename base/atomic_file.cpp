#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace fs = std::filesystem;

namespace a2a {

namespace {

[[noreturn]] void fail_write(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Input, "write_failed", path + ": " + what);
}

void sync_folder_of(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  ::fsync(dfd);
  ::close(dfd);
}

}  // namespace

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, std::min<size_t>(size, size_t(1) << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_write(path, std::string("write failed: ") + std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void write_file_atomically(const std::string& path, const std::function<void(int fd)>& body) {
  std::string temp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(temp.data());
  if (fd < 0) fail_write(path, std::string("cannot create a temporary file: ") + std::strerror(errno));
  try {
    ::fchmod(fd, 0644);
    body(fd);
    if (::fsync(fd) != 0) fail_write(path, std::string("fsync failed: ") + std::strerror(errno));
    if (::close(fd) != 0) {
      fd = -1;
      fail_write(path, std::string("close failed: ") + std::strerror(errno));
    }
    fd = -1;
    if (::rename(temp.c_str(), path.c_str()) != 0)
      fail_write(path, std::string("rename failed: ") + std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  sync_folder_of(path);
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  write_file_atomically(path, [&](int fd) { write_all(fd, bytes.data(), bytes.size(), path); });
}

std::string temporary_path_beside(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  fs::path p(path);
  const std::string name = "." + p.stem().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + p.extension().string();
  return (p.parent_path() / name).string();
}

void move_into_place(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (fs::is_directory(from) && fs::exists(to)) fs::remove_all(to, ec);
  fs::rename(from, to, ec);
  if (ec) {
    fs::remove_all(from, ec);
    throw Error(ErrorKind::Input, "write_failed",
                "cannot move the new file into place at '" + to + "': " + ec.message());
  }
}

}  // namespace a2a
