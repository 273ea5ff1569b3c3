#include "media/media_util.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace a2a::media_detail {

namespace fs = std::filesystem;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

void check_readable_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw_input_error("file_not_found", what + " '" + path + "' does not exist");
  if (!fs::is_regular_file(status)) {
    throw_input_error("not_a_file", what + " '" + path + "' is not a regular file");
  }
  if (fs::file_size(path, ec) == 0 && !ec) throw_input_error("empty_file", what + " '" + path + "' is empty (0 bytes)");
}

std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& what) {
  check_readable_file(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("unreadable_file", "cannot open " + what + " '" + path + "': " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw_input_error("empty_file", what + " '" + path + "' is empty (0 bytes)");
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw_input_error("write_failed", "cannot create '" + path + "': " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw_input_error("write_failed", "cannot write '" + path + "': " + std::strerror(errno));
}

}  // namespace a2a::media_detail
