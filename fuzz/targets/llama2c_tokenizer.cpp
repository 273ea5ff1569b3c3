// llama2.c's tokenizer .bin (max token length, then score, length and bytes per token).
#include "tokenizers/llama2c_tokenizer.h"
#include "fuzz/exercise.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/tokenizer_writers.h"

namespace a2a::fuzz {

namespace {

// Input: the tokenizer .bin, "\n--8<--\n", the text.
void llama2c_tokenizer(const Bytes& input) {
  const auto parts = split_input(input, 2);
  Llama2cTokenizer tokenizer(scratch_file("tokenizer.bin", parts[0]));
  exercise_tokenizer(tokenizer, parts[1]);
}

std::vector<std::pair<std::string, Bytes>> llama2c_tokenizer_seeds() {
  std::vector<PieceSpec> pieces{{"<unk>"}, {"\n<s>\n"}, {"\n</s>\n"}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    pieces.push_back({name});
  }
  for (const char* p : {" ", "a", "b", " a", "ab", " ab", "Once", " upon"}) pieces.push_back({p, -1});
  pieces.push_back({" ab", 2});
  return {{"bytes.txt", join_parts({llama2c_tokenizer_file(pieces), "Once upon ab a b \xE6\x97\xA5"})},
          {"negative_length.txt", join_parts({std::string("\x08\0\0\0\0\0\0\0\xff\xff\xff\xff", 12), "a"})}};
}

}  // namespace

A2A_FUZZ_TARGET("llama2c_tokenizer",
                "llama2.c tokenizer .bin (lengths, scores, byte pieces) and encoding/decoding "
                "a text with it",
                llama2c_tokenizer, llama2c_tokenizer_seeds);

}  // namespace a2a::fuzz
