// Path questions on user input answer false instead of throwing.
#include "base/path_query.h"
#include "test_support.h"

#include <catch2/catch.hpp>

#include <string>

TEST_CASE("path queries answer for names the system refuses", "[base][paths]") {
  const std::string dir = a2a::test::fresh_dir("path_query");
  a2a::test::write_text(dir + "/file", "x");
  CHECK(a2a::path_exists(dir + "/file"));
  CHECK_FALSE(a2a::is_folder(dir + "/file"));
  CHECK(a2a::is_file(dir + "/file"));
  CHECK_FALSE(a2a::is_file(dir));
  CHECK(a2a::is_folder(dir));
  CHECK_FALSE(a2a::path_exists(dir + "/absent"));
  // A component longer than NAME_MAX makes std::filesystem::exists throw (ENAMETOOLONG).
  const std::string too_long = dir + "/" + std::string(5000, 'n');
  CHECK_THROWS(std::filesystem::exists(too_long));
  CHECK_FALSE(a2a::path_exists(too_long));
  CHECK_FALSE(a2a::is_folder(too_long));
  CHECK_FALSE(a2a::is_file(too_long));
  // A file used as a folder (ENOTDIR) is simply absent.
  CHECK_FALSE(a2a::path_exists(dir + "/file/inner"));
}
