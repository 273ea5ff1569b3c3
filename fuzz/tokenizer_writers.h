#pragma once
// Writers of small tokenizer files in the formats our readers take, for seed corpora and tests:
// SentencePiece's tokenizer.model (protobuf wire format, with a compiled charsmap when asked) and llama2.c's
// tokenizer .bin.
#include <string>
#include <utility>
#include <vector>

namespace a2a::fuzz {

struct PieceSpec {
  std::string text;
  float score = 0;
  int type = 1;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte
};

struct TrainerSpec {
  int model_type = 1;  // 1 unigram, 2 BPE
  int unk_id = 0;      // bos 1, eos 2, no pad
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
};

struct NormalizerSpec {
  std::string name = "identity";
  std::string precompiled_charsmap;  // empty: none (see precompiled_charsmap below)
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

std::string sentencepiece_model(const std::vector<PieceSpec>& pieces, const TrainerSpec& trainer,
                                const NormalizerSpec& normalizer);
// A ModelProto: the pieces, a trainer spec (model_type 1 unigram, 2 BPE; unk `unk_id`, bos 1, eos 2, no pad)
// and an identity normalizer that adds a dummy prefix.
std::string sentencepiece_model(const std::vector<PieceSpec>& pieces, int model_type, bool remove_extra_whitespaces,
                                int unk_id = 0);

// A precompiled_charsmap blob for `rules` (input prefix -> replacement): a Darts-clone double array built here,
// then the NUL-terminated replacements.
std::string precompiled_charsmap(const std::vector<std::pair<std::string, std::string>>& rules);

std::string base64_encode(const std::string& bytes);

// max_token_length, then score, length and bytes per token.
std::string llama2c_tokenizer_file(const std::vector<PieceSpec>& pieces);

}  // namespace a2a::fuzz
