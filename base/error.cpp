#include "base/error.h"

namespace a2a {

std::string SourceLocation::str() const {
  std::string out = file.empty() ? std::string("<config>") : file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  return out;
}

Error::Error(ErrorKind kind, std::string code, std::string message, SourceLocation where)
    : std::runtime_error(message),
      kind_(kind),
      code_(std::move(code)),
      message_(std::move(message)),
      where_(std::move(where)) {}

std::string Error::formatted() const {
  std::string out;
  if (!where_.file.empty() || where_.known()) out += where_.str() + ": ";
  out += "error[" + code_ + "]: " + message_;
  return out;
}

static std::string join_formatted(const std::vector<Error>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "\n";
    out += e.formatted();
  }
  return out;
}

ErrorList::ErrorList(std::vector<Error> errors)
    : std::runtime_error(join_formatted(errors)), errors_(std::move(errors)) {}

std::string ErrorList::formatted() const { return join_formatted(errors_); }

void throw_input_error(const std::string& code, const std::string& message) {
  throw Error(ErrorKind::Input, code, message);
}

void throw_config_error(const std::string& code, const std::string& message, SourceLocation where) {
  throw Error(ErrorKind::Config, code, message, std::move(where));
}

}  // namespace a2a
