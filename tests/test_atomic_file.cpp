// base/atomic_file: a file appears whole or not at all, whichever writer (values, media, checkpoints) uses it.
#include <filesystem>

#include "base/atomic_file.h"
#include "base/error.h"
#include "test_support.h"

namespace fs = std::filesystem;

TEST_CASE("atomic file: a failing writer leaves the old file and no temporary behind", "[atomic_file]") {
  const std::string dir = a2a::test::fresh_dir("atomic_file");
  const std::string path = dir + "/out.bin";
  a2a::write_file_atomically(path, std::string("first"));
  CHECK(a2a::test::read_text(path) == "first");
  CHECK_THROWS_AS(a2a::write_file_atomically(path,
                                             [&](int fd) {
                                               a2a::write_all(fd, "partial", 7, path);
                                               throw a2a::Error(a2a::ErrorKind::Input, "write_failed", "disk full");
                                             }),
                  a2a::Error);
  CHECK(a2a::test::read_text(path) == "first");
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("atomic file: bytes create their folders; a missing folder is write_failed for the fd writer",
          "[atomic_file]") {
  const std::string dir = a2a::test::fresh_dir("atomic_folders");
  a2a::write_file_atomically(dir + "/a/b/c.txt", std::string("deep"));
  CHECK(a2a::test::read_text(dir + "/a/b/c.txt") == "deep");
  try {
    a2a::write_file_atomically(dir + "/missing/x.bin", [](int) {});
    FAIL("expected write_failed");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "write_failed");
    CHECK(e.message().find("missing/x.bin") != std::string::npos);
  }
}

TEST_CASE("atomic file: a temporary name keeps the extension and moves into place", "[atomic_file]") {
  const std::string dir = a2a::test::fresh_dir("atomic_move");
  const std::string target = dir + "/image.png";
  const std::string temp = a2a::temporary_path_beside(target);
  CHECK(fs::path(temp).extension() == ".png");
  CHECK(fs::path(temp).parent_path() == fs::path(dir));
  CHECK(temp != a2a::temporary_path_beside(target));
  a2a::test::write_text(temp, "png bytes");
  a2a::move_into_place(temp, target);
  CHECK_FALSE(fs::exists(temp));
  CHECK(a2a::test::read_text(target) == "png bytes");
}
