#pragma once
// Writers of small tokenizer files in the formats our readers take, for seed corpora and tests:
// SentencePiece's tokenizer.model (protobuf wire format) and llama2.c's tokenizer .bin.
#include <string>
#include <vector>

namespace a2a::fuzz {

struct PieceSpec {
  std::string text;
  float score = 0;
  int type = 1;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte
};

// A ModelProto: the pieces, a trainer spec (model_type 1 unigram, 2 BPE; unk `unk_id`, bos 1, eos 2, no pad)
// and an identity normalizer that adds a dummy prefix.
std::string sentencepiece_model(const std::vector<PieceSpec>& pieces, int model_type, bool remove_extra_whitespaces,
                                int unk_id = 0);

// max_token_length, then score, length and bytes per token.
std::string llama2c_tokenizer_file(const std::vector<PieceSpec>& pieces);

}  // namespace a2a::fuzz
