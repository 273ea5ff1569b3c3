#pragma once
// Small helpers shared by the media readers and writers.
#include <cstdint>
#include <string>
#include <vector>

namespace a2a::media_detail {

// Lower-case extension with the dot (".png"), or "" when the name has none.
std::string lower_extension(const std::string& path);

// The whole file. Throws a2a::Error (Input): "file_not_found", "not_a_file", "empty_file",
// "unreadable_file". `what` names the kind of file for the message ("image", "audio file").
std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& what);

// Throws "file_not_found" / "not_a_file" / "empty_file" without reading the file.
void check_readable_file(const std::string& path, const std::string& what);

// Writes the bytes, replacing the file. Throws a2a::Error (Input, "write_failed").
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

// A short, specific reason why FFmpeg would refuse a video file, from a walk of the MP4/MOV box list, the
// AVI RIFF size or the Matroska magic; "" when none is found. The reason says "truncated" when the file is
// cut short.
std::string video_container_problem(const std::string& path);

}  // namespace a2a::media_detail
