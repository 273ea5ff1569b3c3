#include "tokenizers/tokenizer.h"

#include <filesystem>

#include "base/error.h"
#include "base/path_query.h"
#include "tokenizers/clip_tokenizer.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/llama2c_tokenizer.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace a2a {
namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, const std::string& family) {
  if (!path_exists(path)) throw_input_error("tokenizer_file_missing", "tokenizer path " + path + " does not exist");
  const bool folder = is_folder(path);
  const fs::path dir = folder ? fs::path(path) : fs::path(path).parent_path();
  const std::string name = folder ? "" : fs::path(path).filename().string();
  const std::string extension = folder ? "" : fs::path(path).extension().string();

  if (family == "clip" || family == "gpt2") {
    if (!path_exists(dir / "vocab.json") || !path_exists(dir / "merges.txt")) {
      throw_input_error("tokenizer_file_missing",
                        path + ": the " + family + " tokenizer needs vocab.json and merges.txt in " + dir.string());
    }
    if (family == "clip") return ClipTokenizer::from_folder(dir.string());
    return HfTokenizer::from_gpt2_files((dir / "vocab.json").string(), (dir / "merges.txt").string());
  }
  if (family == "llama2c") return std::make_unique<Llama2cTokenizer>(path);

  auto json_file = folder ? dir / "tokenizer.json" : fs::path(path);
  auto model_file = folder ? dir / "tokenizer.model" : fs::path(path);
  if (folder && !path_exists(model_file)) model_file = dir / "spiece.model";  // T5's name for it
  if (family == "hf" || (family.empty() && extension == ".json" && name != "vocab.json") ||
      (family.empty() && folder && path_exists(json_file))) {
    return HfTokenizer::from_tokenizer_json(json_file.string());
  }
  if (family == "sentencepiece" || (family.empty() && extension == ".model") ||
      (family.empty() && folder && path_exists(model_file))) {
    return std::make_unique<SentencePieceTokenizer>(model_file.string());
  }
  if (family.empty() && extension == ".bin") return std::make_unique<Llama2cTokenizer>(path);
  if (family.empty() && path_exists(dir / "vocab.json") && path_exists(dir / "merges.txt")) {
    throw_input_error("tokenizer_ambiguous", path +
                                                 ": vocab.json + merges.txt may be a CLIP or a GPT-2 tokenizer; "
                                                 "pass the family \"clip\" or \"gpt2\"");
  }
  throw_input_error("tokenizer_unknown_format",
                    path + ": no tokenizer format recognised" +
                        (family.empty() ? "" : " for family \"" + family + "\"") +
                        " (expected tokenizer.json, tokenizer.model, vocab.json + merges.txt, or a llama2.c .bin)");
}

}  // namespace a2a
