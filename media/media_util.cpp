#include "media/media_util.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/error.h"

namespace a2a::media_detail {

namespace fs = std::filesystem;

namespace {

uint64_t read_be(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

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

std::string video_container_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string ext = media_detail::lower_extension(path);
  if (ext == ".mp4" || ext == ".mov" || ext == ".m4v") {
    if (b.size() < 8 || std::string(b.begin() + 4, b.begin() + 8) != "ftyp") {
      return "not an MP4 file (no 'ftyp' box at the start)";
    }
    uint64_t pos = 0;
    bool moov = false, mdat = false;
    while (pos + 8 <= b.size()) {
      uint64_t size = read_be(&b[pos], 4);
      const std::string type(b.begin() + pos + 4, b.begin() + pos + 8);
      uint64_t header = 8;
      if (size == 1) {
        if (pos + 16 > b.size()) return "MP4 is truncated inside the '" + type + "' box header";
        size = read_be(&b[pos + 8], 8);
        header = 16;
      } else if (size == 0) {
        size = b.size() - pos;
      }
      // A size below its own header would not move forward; compared against what is left, a size near
      // 2^64 cannot wrap pos around.
      if (size < header) return "MP4 is corrupt: box '" + type + "' has an invalid size";
      if (size > b.size() - pos) return "MP4 is truncated inside its '" + type + "' box";
      if (type == "moov") moov = true;
      if (type == "mdat") mdat = true;
      pos += size;
    }
    if (pos < b.size()) return "MP4 is truncated inside a box header";
    if (!moov) return "MP4 has no 'moov' box (an unfinished recording or a truncated file)";
    // With the index first (faststart), a file cut after it still parses up to there.
    if (!mdat) return "MP4 has no 'mdat' box: its media data is missing (a truncated file)";
  } else if (ext == ".avi") {
    if (b.size() < 12 || std::string(b.begin(), b.begin() + 4) != "RIFF" ||
        std::string(b.begin() + 8, b.begin() + 12) != "AVI ") {
      return "not an AVI file (no 'RIFF....AVI ' header)";
    }
    const uint64_t declared = (uint64_t(b[4]) | (b[5] << 8) | (b[6] << 16) | (uint64_t(b[7]) << 24)) + 8;
    if (declared > b.size()) {
      return "AVI is truncated: header declares " + std::to_string(declared) + " bytes, file has " +
             std::to_string(b.size());
    }
  } else if (ext == ".mkv" || ext == ".webm") {
    if (b.size() < 4 || read_be(b.data(), 4) != 0x1A45DFA3) return "not a Matroska/WebM file (no EBML header)";
  }
  return "";
}

}  // namespace a2a::media_detail
