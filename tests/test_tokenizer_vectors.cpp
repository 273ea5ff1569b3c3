// Hugging Face, GPT-2 and SentencePiece tokenizers against the shared vectors: cases.json (text -> ids)
// and llama.cpp-style llamacpp.inp / llamacpp.out pairs.
#include <map>
#include <sstream>

#include "base/error.h"
#include "test_support.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace {

struct Vector {
  std::string text;
  std::vector<int64_t> ids;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<Vector> read_cases(const std::string& folder) {
  std::vector<Vector> out;
  auto cases = a2a::test::read_json(a2a::test::fixture_path(folder + "/cases.json"));
  for (const auto& c : cases["cases"]) out.push_back({c["text"], c["ids"].get<std::vector<int64_t>>()});
  return out;
}

// llamacpp.inp: strings separated by "\n__ggml_vocab_test__\n" (the split leaves a trailing empty element);
// llamacpp.out: one line of ids per string.
std::vector<Vector> read_llamacpp(const std::string& folder) {
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::string inp = read_text(a2a::test::fixture_path(folder + "/llamacpp.inp"));
  std::vector<std::string> texts;
  size_t pos = 0;
  while (true) {
    size_t next = inp.find(separator, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + separator.size();
  }
  std::istringstream out(read_text(a2a::test::fixture_path(folder + "/llamacpp.out")));
  std::vector<Vector> vectors;
  std::string line;
  for (const auto& text : texts) {
    if (!std::getline(out, line)) break;
    Vector v{text, {}};
    std::istringstream ids(line);
    int64_t id;
    while (ids >> id) v.ids.push_back(id);
    vectors.push_back(v);
  }
  REQUIRE(vectors.size() + 1 >= texts.size());
  return vectors;
}

// Loaded once per test run: the large vocabularies take a moment to read. Tests that add tokens load their own.
const a2a::Tokenizer& shared_tokenizer(const std::string& relative, const std::string& family = "") {
  static std::map<std::string, std::unique_ptr<a2a::Tokenizer>> loaded;
  auto& slot = loaded[relative + "|" + family];
  if (!slot) slot = a2a::load_tokenizer(a2a::test::fixture_path(relative), family);
  return *slot;
}

void check_vectors(const a2a::Tokenizer& tokenizer, const std::vector<Vector>& vectors, bool check_roundtrip) {
  REQUIRE(!vectors.empty());
  for (const auto& v : vectors) {
    INFO("text: \"" << v.text << "\"");
    CHECK(tokenizer.encode(v.text) == v.ids);
    if (check_roundtrip) CHECK(tokenizer.decode(v.ids) == v.text);
  }
}

}  // namespace

TEST_CASE("Llama-3 tokenizer.json matches the reference ids", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/llama3/tokenizer.json");
  const auto* tokenizer = &shared_tokenizer("tokenizers/llama3");
  check_vectors(*tokenizer, read_cases("tokenizers/llama3"), true);
  check_vectors(*tokenizer, read_llamacpp("tokenizers/llama3"), true);
  CHECK(tokenizer->bos_id() == tokenizer->token_to_id("<|begin_of_text|>"));
  // Special tokens written in the text are recognised.
  auto ids = tokenizer->encode("<|begin_of_text|>Hi");
  REQUIRE(!ids.empty());
  CHECK(ids.front() == *tokenizer->token_to_id("<|begin_of_text|>"));
}

TEST_CASE("SentencePiece-style tokenizer.json (Mistral) matches the reference ids", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/spm_bpe/tokenizer.json");
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("tokenizers/spm_bpe/tokenizer.json"));
  check_vectors(*tokenizer, read_cases("tokenizers/spm_bpe"), true);
  auto with_bos = tokenizer->encode_with_special("Hello world");
  auto plain = tokenizer->encode("Hello world");
  REQUIRE(with_bos.size() == plain.size() + 1);
  CHECK(with_bos.front() == *tokenizer->token_to_id("<s>"));
  CHECK(tokenizer->bos_id() == tokenizer->token_to_id("<s>"));
  CHECK(tokenizer->eos_id() == tokenizer->token_to_id("</s>"));
}

TEST_CASE("RoBERTa tokenizer.json (CLAP) matches the reference ids and wraps with <s> </s>", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/roberta/tokenizer.json");
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("tokenizers/roberta/tokenizer.json"));
  check_vectors(*tokenizer, read_llamacpp("tokenizers/roberta"), true);
  auto wrapped = tokenizer->encode_with_special("Hello world");
  auto plain = tokenizer->encode("Hello world");
  REQUIRE(wrapped.size() == plain.size() + 2);
  CHECK(wrapped.front() == 0);
  CHECK(wrapped.back() == 2);
  CHECK(tokenizer->bos_id() == 0);
  CHECK(tokenizer->eos_id() == 2);
  CHECK(tokenizer->pad_id() == 1);
  // <mask> swallows the space on its left (lstrip).
  auto masked = tokenizer->encode("Hello <mask>");
  CHECK(masked.back() == *tokenizer->token_to_id("<mask>"));
  CHECK(masked.size() == tokenizer->encode("Hello").size() + 1);
}

TEST_CASE("GPT-2 vocab.json + merges.txt matches the slow tokenizer", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/gpt2/cases.json");
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("tokenizers/gpt2"), "gpt2");
  auto cases = a2a::test::read_json(a2a::test::fixture_path("tokenizers/gpt2/cases.json"));
  for (const auto& c : cases["cases"]) {
    const std::string text = c["text"];
    INFO("text: \"" << text << "\"");
    auto ids = c["ids"].get<std::vector<int64_t>>();
    CHECK(tokenizer->encode(text) == ids);
    CHECK((tokenizer->decode(ids) == text) == c["decode_roundtrip_equal"].get<bool>());
  }
  CHECK(tokenizer->eos_id() == 50256);
  CHECK_THROWS_AS(a2a::load_tokenizer(a2a::test::fixture_path("tokenizers/gpt2")), a2a::Error);
}

TEST_CASE("SentencePiece tokenizer.model (Llama-2) matches the reference ids", "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/llama_spm/tokenizer.model");
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path("tokenizers/llama_spm/tokenizer.model"));
  auto* spm = dynamic_cast<a2a::SentencePieceTokenizer*>(tokenizer.get());
  REQUIRE(spm);
  CHECK(spm->model_type() == a2a::SentencePieceTokenizer::ModelType::Bpe);
  check_vectors(*tokenizer, read_llamacpp("tokenizers/llama_spm"), true);
  CHECK(tokenizer->bos_id() == 1);
  CHECK(tokenizer->eos_id() == 2);
  CHECK(!tokenizer->pad_id());
  CHECK(tokenizer->vocab_size() == 32000);
  auto with_bos = tokenizer->encode_with_special("Hello");
  CHECK(with_bos == std::vector<int64_t>{1, 15043});
  CHECK(tokenizer->decode({1, 15043, 2}) == "Hello");
}

namespace {

void check_signal_tokens(const std::string& folder) {
  A2A_REQUIRE_FIXTURE(folder);
  auto tokenizer = a2a::load_tokenizer(a2a::test::fixture_path(folder));
  const int64_t base = tokenizer->vocab_size();
  auto ids = tokenizer->add_special_tokens({"[IMG0]", "[IMG1]", "[IMG0]"});
  CHECK(ids == std::vector<int64_t>{base, base + 1, base});
  CHECK(tokenizer->vocab_size() == base + 2);
  auto encoded = tokenizer->encode("draw[IMG0][IMG1] now");
  auto draw = tokenizer->encode("draw");
  REQUIRE(encoded.size() > draw.size() + 2);
  CHECK(std::vector<int64_t>(encoded.begin(), encoded.begin() + draw.size()) == draw);
  CHECK(encoded[draw.size()] == base);
  CHECK(encoded[draw.size() + 1] == base + 1);
  CHECK(tokenizer->token_text(base) == "[IMG0]");
  CHECK(tokenizer->token_to_id("[IMG1]") == base + 1);
  CHECK(tokenizer->decode(encoded, true).find("[IMG") == std::string::npos);
}

void check_streamed_text(const std::string& folder) {
  A2A_REQUIRE_FIXTURE(folder);
  const auto* tokenizer = &shared_tokenizer(folder);
  const std::string text = "Hello world, caf\xC3\xA9 \xF0\x9F\x98\x80!\n  ok";
  auto ids = tokenizer->encode(text);
  std::string streamed;
  for (int64_t id : ids) streamed += tokenizer->token_text(id);
  // The stream keeps the leading space that decode drops at the start of a SentencePiece text.
  CHECK((streamed == text || streamed == " " + text));
}

}  // namespace

TEST_CASE("Signal tokens get new ids after the vocabulary: llama3", "[tokenizer]") {
  check_signal_tokens("tokenizers/llama3");
}
TEST_CASE("Signal tokens get new ids after the vocabulary: spm_bpe", "[tokenizer]") {
  check_signal_tokens("tokenizers/spm_bpe");
}
TEST_CASE("Signal tokens get new ids after the vocabulary: llama_spm", "[tokenizer]") {
  check_signal_tokens("tokenizers/llama_spm");
}
TEST_CASE("Signal tokens get new ids after the vocabulary: roberta", "[tokenizer]") {
  check_signal_tokens("tokenizers/roberta");
}

TEST_CASE("Streaming token_text concatenates to the decoded text: llama3", "[tokenizer]") {
  check_streamed_text("tokenizers/llama3");
}
TEST_CASE("Streaming token_text concatenates to the decoded text: llama_spm", "[tokenizer]") {
  check_streamed_text("tokenizers/llama_spm");
}

TEST_CASE("Tokenizer loading reports bad files", "[tokenizer]") {
  auto dir = a2a::test::scratch_dir();
  {
    std::ofstream(dir + "/tokenizer.json") << "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}";
    std::ofstream(dir + "/broken.model", std::ios::binary) << std::string("\x0a\xff\xff", 3);
  }
  CHECK_THROWS_AS(a2a::load_tokenizer(dir + "/tokenizer.json"), a2a::Error);
  CHECK_THROWS_AS(a2a::load_tokenizer(dir + "/broken.model"), a2a::Error);
  CHECK_THROWS_AS(a2a::load_tokenizer(dir + "/absent.json"), a2a::Error);
}

TEST_CASE("SentencePiece-style tokenizer.json: special tokens separated by single spaces decode as written",
          "[tokenizer]") {
  A2A_REQUIRE_FIXTURE("tokenizers/spm_bpe/tokenizer.json");
  auto json = a2a::test::read_json(a2a::test::fixture_path("tokenizers/spm_bpe/tokenizer.json"));
  // The Mistral file as shipped: a Prepend("▁") normalizer on every piece between added tokens.
  auto legacy = a2a::load_tokenizer(a2a::test::fixture_path("tokenizers/spm_bpe/tokenizer.json"));
  // The same vocabulary in the newer layout: Metaspace with prepend_scheme "first", no normalizer.
  json["normalizer"] = nullptr;
  json["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
  const std::string dir = a2a::test::fresh_dir("metaspace_tokenizer");
  a2a::test::write_text(dir + "/tokenizer.json", json.dump());
  auto metaspace = a2a::load_tokenizer(dir + "/tokenizer.json");

  const int64_t bos = *legacy->token_to_id("<s>"), eos = *legacy->token_to_id("</s>");
  const int64_t unk = *legacy->token_to_id("<unk>");
  const int64_t space = *legacy->token_to_id("\xE2\x96\x81");
  const int64_t two_spaces = *legacy->token_to_id("\xE2\x96\x81\xE2\x96\x81");
  // Each piece gets its prefix: " " is "▁▁".
  CHECK(legacy->encode("<s> </s> <unk>") == std::vector<int64_t>{bos, two_spaces, eos, two_spaces, unk});
  CHECK(metaspace->encode("<s> </s> <unk>") == std::vector<int64_t>{bos, space, eos, space, unk});
  for (const auto* tokenizer : {legacy.get(), metaspace.get()}) {
    for (const std::string text : {"<s> </s> <unk>", "<s> Hello </s>", "a <s> b", "<s>Hello</s>", "x</s> y"}) {
      INFO((tokenizer == legacy.get() ? "Prepend normalizer" : "Metaspace") << ": '" << text << "'");
      CHECK(tokenizer->decode(tokenizer->encode(text)) == text);
    }
  }
  CHECK(legacy->decode({bos, two_spaces, eos}, /*skip_special=*/true) == " ");
}

namespace {

// A tokenizer.json of two tokens with `extra` (",\"key\": value...") spliced into the top-level object.
std::string hostile_tokenizer_json(const std::string& vocab, const std::string& extra) {
  return "{\"model\": {\"type\": \"BPE\", \"vocab\": " + vocab + ", \"merges\": []}" + extra + "}";
}

a2a::Error expect_tokenizer_error(const std::string& path, const std::string& code) {
  try {
    a2a::HfTokenizer::from_tokenizer_json(path);
  } catch (const a2a::Error& e) {
    INFO(e.message());
    CHECK(e.code() == code);
    CHECK(e.message().find(path) != std::string::npos);
    return e;
  }
  FAIL("expected an error with code " << code << " from " << path);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("tokenizer.json: deep nesting and huge ids are refused with the file named", "[tokenizer]") {
  const std::string dir = a2a::test::fresh_dir("hostile_tokenizer");
  const std::string path = dir + "/tokenizer.json";
  const std::string vocab = R"({"a": 0, "b": 1})";
  a2a::test::write_text(path, hostile_tokenizer_json(vocab, ""));
  CHECK(a2a::HfTokenizer::from_tokenizer_json(path)->encode("ab").size() == 2);

  SECTION("a decoder Sequence nested 100000 deep") {
    std::string decoder;
    for (int i = 0; i < 100000; ++i) decoder += R"({"type": "Sequence", "decoders": [)";
    for (int i = 0; i < 100000; ++i) decoder += "]}";
    a2a::test::write_text(path, hostile_tokenizer_json(vocab, ", \"decoder\": " + decoder));
    auto e = expect_tokenizer_error(path, "json_too_deep");
    CHECK(e.message().find("deeper than 256 levels") != std::string::npos);
  }
  SECTION("Sequences nested 40 deep, within the JSON bound") {
    const std::pair<const char*, const char*> components[] = {
        {"normalizer", "normalizers"}, {"pre_tokenizer", "pretokenizers"}, {"decoder", "decoders"}};
    for (const auto& [key, list] : components) {
      std::string component;
      for (int i = 0; i < 40; ++i) component += std::string(R"({"type": "Sequence", ")") + list + "\": [";
      for (int i = 0; i < 40; ++i) component += "]}";
      a2a::test::write_text(path, hostile_tokenizer_json(vocab, std::string(", \"") + key + "\": " + component));
      INFO(key);
      auto e = expect_tokenizer_error(path, "tokenizer_bad_json");
      CHECK(e.message().find("nests deeper than 32 levels") != std::string::npos);
    }
  }
  SECTION("vocabulary ids past the vocabulary") {
    for (const char* id : {"100000000", "2147483647", "4294967296", "-1"}) {
      a2a::test::write_text(path, hostile_tokenizer_json(std::string(R"({"a": 0, "b": )") + id + "}", ""));
      INFO(id);
      auto e = expect_tokenizer_error(path, "tokenizer_bad_vocab");
      CHECK(e.message().find(std::string("has id ") + id) != std::string::npos);
    }
    // Gaps in the ids are allowed, up to 2^20 past the number of tokens.
    a2a::test::write_text(path, hostile_tokenizer_json(vocab, R"(, "added_tokens": [{"id": 5000, "content": "<s>"}])"));
    CHECK(a2a::HfTokenizer::from_tokenizer_json(path)->token_to_id("<s>") == 5000);
    a2a::test::write_text(path, hostile_tokenizer_json(R"({"a": 0, "b": 1048577})", ""));
    CHECK(a2a::HfTokenizer::from_tokenizer_json(path)->token_to_id("b") == 1048577);
    a2a::test::write_text(path,
                          hostile_tokenizer_json(vocab, R"(, "added_tokens": [{"id": 100000000, "content": "<s>"}])"));
    auto e = expect_tokenizer_error(path, "tokenizer_bad_vocab");
    CHECK(e.message().find("has id 100000000") != std::string::npos);
  }
  SECTION("fields missing or of the wrong shape (found by the tokenizer_json fuzzer)") {
    // Each once read past its JSON value: a one-element cls pair, a Sequence without its list, a template
    // without special_tokens, a merge pair of one string.
    for (const char* extra :
         {R"(, "post_processor": {"type": "RobertaProcessing", "cls": ["<s>"], "sep": ["</s>", 1]})",
          R"(, "post_processor": {"type": "BertProcessing", "sep": ["</s>", 1]})",
          R"(, "normalizer": {"type": "Sequence"})", R"(, "decoder": {"type": "Replace", "content": "x"})",
          R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}]})",
          R"(, "added_tokens": [{"content": "<s>"}])"}) {
      INFO(extra);
      a2a::test::write_text(path, hostile_tokenizer_json(vocab, extra));
      expect_tokenizer_error(path, "tokenizer_bad_json");
    }
    a2a::test::write_text(path, R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}})");
    expect_tokenizer_error(path, "tokenizer_bad_json");
  }
  SECTION("ids that are not integers (5e56 once reached an undefined float-to-integer conversion)") {
    for (const char* id : {"5e56", "1.5", "\"1\"", "true"}) {
      INFO(id);
      a2a::test::write_text(path, hostile_tokenizer_json(std::string(R"({"a": 0, "b": )") + id + "}", ""));
      auto e = expect_tokenizer_error(path, "tokenizer_bad_vocab");
      CHECK(e.message().find("is not an integer") != std::string::npos);
      a2a::test::write_text(path, hostile_tokenizer_json(vocab, std::string(R"(, "added_tokens": [{"id": )") + id +
                                                                    R"(, "content": "<s>"}])"));
      expect_tokenizer_error(path, "tokenizer_bad_vocab");
    }
  }
}

TEST_CASE("tokenizer files past 256 MiB are too_large before they are read", "[tokenizer][hostile]") {
  const std::string dir = a2a::test::fresh_dir("huge_tokenizer_files");
  const std::pair<const char*, const char*> files[] = {
      {"tokenizer.json", "hf"}, {"tokenizer.model", "sentencepiece"}, {"tok.bin", "llama2c"}};
  for (const auto& [name, family] : files) {
    const std::string path = dir + "/" + name;
    a2a::test::write_text(path, "x");
    std::filesystem::resize_file(path, (uint64_t{256} << 20) + 1);  // sparse: no disk, no memory
    INFO(name);
    try {
      a2a::load_tokenizer(path, family);
      FAIL("a 256 MiB + 1 tokenizer file was read");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "too_large");
      CHECK(e.message().find(path) != std::string::npos);
    }
  }
}
