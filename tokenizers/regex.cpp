#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizers/regex.h"

#include <pcre2.h>

#include <mutex>

#include "base/error.h"

namespace a2a::tokenizers {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(const std::string& pattern, bool caseless, const std::string& where) : impl_(std::make_unique<Impl>()) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK;
  if (caseless) options |= PCRE2_CASELESS;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error_code,
                              &error_offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw_input_error("tokenizer_regex", where + ": cannot compile the pre-tokenizer pattern at offset " +
                                             std::to_string(error_offset) + ": " +
                                             reinterpret_cast<const char*>(message));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), offset, 0, match, nullptr)
                        : pcre2_match(impl_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    size_t begin = ovector[0], end = ovector[1];
    if (end == begin) {
      // Step over one whole code point so that the next search starts on a character boundary.
      offset = end + 1;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
      continue;
    }
    out.emplace_back(begin, end);
    offset = end;
  }
  pcre2_match_data_free(match);
  return out;
}

}  // namespace a2a::tokenizers
