#pragma once
// What every tokenizer harness does with a tokenizer it managed to load.
#include "fuzz/fuzz_target.h"

namespace a2a {
class Tokenizer;
}

namespace a2a::fuzz {

// Encodes `text` (ids must lie inside the vocabulary), decodes the ids, streams their surface texts,
// decodes ids taken from the text's bytes (out of range ones included), then adds signal tokens and
// checks that they are found in text.
void exercise_tokenizer(Tokenizer& tokenizer, const Bytes& text);

}  // namespace a2a::fuzz
