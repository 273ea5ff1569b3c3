#pragma once
// Files appear whole or not at all: written beside their target under a temporary name, then
// renamed over it. Every error is a2a::Error (Input, "write_failed") naming the target.
#include <cstddef>
#include <functional>
#include <string>

namespace a2a {

// Writes through `body` (given the open file descriptor) into a temporary file beside `path`,
// syncs it, renames it over `path` and syncs the folder. A throwing body leaves no file behind.
void write_file_atomically(const std::string& path, const std::function<void(int fd)>& body);

// The same for a byte string; creates the parent folders first.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Writes all of `data` to `fd`, retrying short writes.
void write_all(int fd, const void* data, size_t size, const std::string& path);

// For writers that need a file name of their own (encoders that pick a format by extension): a
// unique hidden name beside `path` that keeps its extension, and the rename that publishes it
// (a folder replaces a folder).
std::string temporary_path_beside(const std::string& path);
void move_into_place(const std::string& from, const std::string& to);

}  // namespace a2a
