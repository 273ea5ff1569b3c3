#include "fuzz/exercise.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "tokenizers/tokenizer.h"

namespace a2a::fuzz {

namespace {

void check_ids(const Tokenizer& tokenizer, const std::vector<int64_t>& ids, const char* what) {
  const int64_t size = tokenizer.vocab_size();
  for (auto id : ids) fuzz_check(id >= 0 && id < size, std::string(what) + " gave an id outside the vocabulary");
}

// Ids drawn from the text's bytes, 8 bytes each, so that negative and huge ids come too.
std::vector<int64_t> ids_from_bytes(const Bytes& text) {
  std::vector<int64_t> ids;
  for (size_t i = 0; i + 8 <= text.size() && ids.size() < 16; i += 8) {
    int64_t id;
    std::memcpy(&id, text.data() + i, 8);
    ids.push_back(id);
  }
  return ids;
}

}  // namespace

void exercise_tokenizer(Tokenizer& tokenizer, const Bytes& text) {
  auto ids = tokenizer.encode(text);
  check_ids(tokenizer, ids, "encode");
  check_ids(tokenizer, tokenizer.encode_with_special(text), "encode_with_special");
  tokenizer.decode(ids);
  tokenizer.decode(ids, true);
  for (size_t i = 0; i < std::min<size_t>(ids.size(), 64); ++i) tokenizer.token_text(ids[i]);
  try {
    tokenizer.decode(ids_from_bytes(text));
  } catch (const Error&) {
  }
  auto added = tokenizer.add_special_tokens({"[IMG0]", "<image>"});
  fuzz_check(added.size() == 2, "add_special_tokens returned another count");
  check_ids(tokenizer, added, "add_special_tokens");
  auto with_signal = tokenizer.encode(text + "[IMG0]");
  fuzz_check(std::find(with_signal.begin(), with_signal.end(), added[0]) != with_signal.end(),
             "a signal token written in the text was not found");
}

}  // namespace a2a::fuzz
