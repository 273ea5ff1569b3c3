#pragma once
// Questions about user-given paths that answer instead of throwing: std::filesystem::exists throws
// filesystem_error for a name too long or a folder without search permission, and a config's path is
// user input.
#include <filesystem>

namespace a2a {

// True when something is at the path; false when nothing is, or when the system cannot tell.
bool path_exists(const std::filesystem::path& path) noexcept;

// True when the path names a folder (after following links).
bool is_folder(const std::filesystem::path& path) noexcept;

// True when the path names a regular file (after following links).
bool is_file(const std::filesystem::path& path) noexcept;

}  // namespace a2a
