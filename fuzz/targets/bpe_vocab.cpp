// vocab.json + merges.txt, read as CLIP's tokenizer and as GPT-2's.
#include "fuzz/exercise.h"
#include "fuzz/fuzz_target.h"
#include "tokenizers/clip_tokenizer.h"
#include "tokenizers/hf_tokenizer.h"

namespace a2a::fuzz {

namespace {

// Input: vocab.json, merges.txt, the text (separated by "\n--8<--\n").
void bpe_vocab(const Bytes& input) {
  const auto parts = split_input(input, 3);
  const std::string vocab = scratch_file("vocab.json", parts[0]);
  const std::string merges = scratch_file("merges.txt", parts[1]);
  try {
    ClipTokenizer clip(vocab, merges);
    exercise_tokenizer(clip, parts[2]);
  } catch (const Error&) {
  }
  auto gpt2 = HfTokenizer::from_gpt2_files(vocab, merges);
  exercise_tokenizer(*gpt2, parts[2]);
}

std::vector<std::pair<std::string, Bytes>> bpe_vocab_seeds() {
  const std::string clip_vocab =
      R"({"a": 0, "b": 1, "c": 2, "a</w>": 3, "b</w>": 4, "c</w>": 5, "ab": 6, "ab</w>": 7, "abc</w>": 8,
          "<|startoftext|>": 9, "<|endoftext|>": 10})";
  const std::string gpt2_vocab = R"({"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "Ġa": 5, "<|endoftext|>": 6})";
  return {{"clip.txt", join_parts({clip_vocab, "#version: 0.2\na b\nab c</w>\n", "ABC abc, a  b!"})},
          {"gpt2.txt", join_parts({gpt2_vocab, "#version: 0.2\na b\nĠ a\n", "ab a<|endoftext|>c"})},
          {"bad_merge.txt", join_parts({clip_vocab, "a\nx y z\n", "a"})},
          {"huge_id.txt", join_parts({R"({"a": 2147483647})", "", "a"})}};
}

}  // namespace

A2A_FUZZ_TARGET("bpe_vocab",
                "vocab.json + merges.txt as CLIP's and GPT-2's tokenizers (ids, merge lines, "
                "cleanup and lower-casing) and encoding/decoding a text",
                bpe_vocab, bpe_vocab_seeds);

}  // namespace a2a::fuzz
