#pragma once
// One error type for the whole framework. It carries a stable code and, for configuration errors,
// the file:line:col it refers to. The CLI turns it into an exit code once, at the boundary.
#include <stdexcept>
#include <string>
#include <vector>

namespace a2a {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based; 0 = unknown
  bool known() const { return line > 0; }
  std::string str() const;
};

enum class ErrorKind {
  Config,     // the pipeline description is wrong (exit 1)
  Input,      // a graph input, media file or checkpoint is wrong (exit 1)
  Usage,      // command-line misuse (exit 2)
  Cancelled,  // interrupted by the user (exit 130)
  Internal,   // a bug or an unexpected failure (exit 3)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string code, std::string message, SourceLocation where = {});

  ErrorKind kind() const { return kind_; }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const SourceLocation& where() const { return where_; }
  // "FILE:LINE:COL: error[CODE]: message"
  std::string formatted() const;

 private:
  ErrorKind kind_;
  std::string code_;
  std::string message_;
  SourceLocation where_;
};

// Several errors collected by validation and reported together.
class ErrorList : public std::runtime_error {
 public:
  explicit ErrorList(std::vector<Error> errors);
  const std::vector<Error>& errors() const { return errors_; }
  std::string formatted() const;

 private:
  std::vector<Error> errors_;
};

[[noreturn]] void throw_input_error(const std::string& code, const std::string& message);
[[noreturn]] void throw_config_error(const std::string& code, const std::string& message, SourceLocation where = {});

}  // namespace a2a
