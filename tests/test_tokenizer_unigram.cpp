// SentencePiece unigram models (T5's tokenizer): the shared fixture's spiece.model against sentencepiece 0.1.97's
// ids, pieces and decoded text, the same model as transformers writes it into tokenizer.json, and small models
// written here (charsmap rules, user-defined and unused pieces, byte fallback) including hostile ones.
#include <cmath>
#include <limits>

#include "base/error.h"
#include "fuzz/tokenizer_writers.h"
#include "test_support.h"
#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace {

using a2a::fuzz::PieceSpec;
using nlohmann::json;

const std::string kUnigramFixture = "sentencepiece_unigram";
const std::string kMetaspace = "\xE2\x96\x81";

std::string write_scratch(const std::string& name, const std::string& bytes) {
  const std::string path = a2a::test::scratch_dir() + "/" + name;
  a2a::test::write_text(path, bytes);
  return path;
}

std::string unigram_model_bytes(const std::vector<PieceSpec>& pieces, const std::string& charsmap = "",
                                bool byte_fallback = false) {
  a2a::fuzz::TrainerSpec trainer;
  trainer.byte_fallback = byte_fallback;
  a2a::fuzz::NormalizerSpec normalizer;
  normalizer.precompiled_charsmap = charsmap;
  return a2a::fuzz::sentencepiece_model(pieces, trainer, normalizer);
}

// Runs `load` and checks that it throws an a2a::Error with `code` whose message contains `text`.
template <typename Load>
void check_refused(Load&& load, const std::string& code, const std::string& text) {
  try {
    load();
    FAIL("accepted; expected " << code << " mentioning \"" << text << "\"");
  } catch (const a2a::Error& e) {
    INFO(e.message());
    CHECK(e.code() == code);
    CHECK(e.message().find(text) != std::string::npos);
  }
}

// The tokenizer.json transformers' T5Converter writes for a SentencePiece unigram model (SpmConverter's
// normalizer, pre-tokenizer and decoder; control and unknown pieces as special added tokens; "$A </s>").
json t5_tokenizer_json(const a2a::SentencePieceTokenizer& sp) {
  json vocab = json::array(), added = json::array();
  for (int64_t id = 0; id < sp.vocab_size(); ++id) {
    vocab.push_back({sp.piece(id), sp.score(id)});
    auto type = sp.piece_type(id);
    if (type == a2a::SentencePieceTokenizer::PieceType::Control ||
        type == a2a::SentencePieceTokenizer::PieceType::Unknown) {
      added.push_back({{"id", id}, {"content", sp.piece(id)}, {"special", true}, {"normalized", false}});
    }
  }
  json metaspace = {{"type", "Metaspace"}, {"replacement", kMetaspace}, {"prepend_scheme", "always"}, {"split", true}};
  json eos = {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}};
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Precompiled"}, {"precompiled_charsmap", a2a::fuzz::base64_encode(sp.precompiled_charsmap())}},
          {{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}},
          {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", kMetaspace}}}}}},
      {"pre_tokenizer", metaspace},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, eos}},
        {"pair", json::array()},
        {"special_tokens", {{"</s>", {{"id", "</s>"}, {"ids", {*sp.token_to_id("</s>")}}, {"tokens", {"</s>"}}}}}}}},
      {"decoder", metaspace},
      {"model", {{"type", "Unigram"}, {"unk_id", *sp.unk_id()}, {"vocab", vocab}, {"byte_fallback", false}}}};
}

}  // namespace

TEST_CASE("SentencePiece unigram (T5 style) matches sentencepiece on every fixture case", "[unigram]") {
  A2A_REQUIRE_FIXTURE(kUnigramFixture + "/spiece.model");
  a2a::SentencePieceTokenizer tokenizer(a2a::test::fixture_path(kUnigramFixture + "/spiece.model"));
  const json meta = a2a::test::read_json(a2a::test::fixture_path(kUnigramFixture + "/meta.json"));
  CHECK(tokenizer.model_type() == a2a::SentencePieceTokenizer::ModelType::Unigram);
  CHECK(tokenizer.vocab_size() == meta["model"]["pieces"].get<int64_t>());
  CHECK(tokenizer.precompiled_charsmap().size() ==
        meta["model"]["normalizer_spec"]["precompiled_charsmap_bytes"].get<size_t>());
  const json& special = meta["model"]["special_ids"];
  CHECK(tokenizer.unk_id() == special["unk"].get<int64_t>());
  CHECK(tokenizer.eos_id() == special["eos"].get<int64_t>());
  CHECK(tokenizer.pad_id() == special["pad"].get<int64_t>());
  CHECK(!tokenizer.bos_id());

  const json cases = a2a::test::read_json(a2a::test::fixture_path(kUnigramFixture + "/cases.json"))["cases"];
  REQUIRE(!cases.empty());
  for (const auto& c : cases) {
    const std::string text = c["text"];
    INFO("text: \"" << text << "\"");
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    CHECK(tokenizer.encode(text) == ids);
    CHECK(tokenizer.encode_as_pieces(text) == c["pieces"].get<std::vector<std::string>>());
    CHECK(tokenizer.decode(ids) == c["decoded"].get<std::string>());
  }
  // A folder holding spiece.model (T5's file name) loads as this tokenizer.
  auto loaded = a2a::load_tokenizer(a2a::test::fixture_path(kUnigramFixture));
  CHECK(loaded->encode(cases[0]["text"]) == cases[0]["ids"].get<std::vector<int64_t>>());
}

TEST_CASE("Unigram tokenizer.json as transformers converts T5 gives sentencepiece's ids", "[unigram]") {
  A2A_REQUIRE_FIXTURE(kUnigramFixture + "/spiece.model");
  a2a::SentencePieceTokenizer sp(a2a::test::fixture_path(kUnigramFixture + "/spiece.model"));
  const std::string folder = a2a::test::fresh_dir("t5_tokenizer_json");
  a2a::test::write_text(folder + "/tokenizer.json", t5_tokenizer_json(sp).dump());
  auto tokenizer = a2a::HfTokenizer::from_tokenizer_json(folder + "/tokenizer.json");
  const json cases = a2a::test::read_json(a2a::test::fixture_path(kUnigramFixture + "/cases.json"))["cases"];
  REQUIRE(!cases.empty());
  for (const auto& c : cases) {
    const std::string text = c["text"];
    INFO("text: \"" << text << "\"");
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    CHECK(tokenizer->encode(text) == ids);
    // Hugging Face decodes unk as its piece "<unk>", not as " ⁇ "; elsewhere the texts agree.
    if (!c["has_unknown"].get<bool>()) CHECK(tokenizer->decode(ids) == c["decoded"].get<std::string>());
  }
  auto with_eos = tokenizer->encode_with_special("Hello world");
  REQUIRE(!with_eos.empty());
  CHECK(with_eos.back() == *sp.eos_id());
  CHECK(tokenizer->encode("Hello</s>").back() == *sp.eos_id());
}

TEST_CASE("Unigram: charsmap rules, longest match, invalid UTF-8 and whitespace as SentencePiece", "[unigram]") {
  // "ﬁ" -> "fi", "A" -> "a", "AB" -> "b" (the longer rule wins), tab and U+3000 -> " ", U+0001 -> "".
  const std::string charsmap = a2a::fuzz::precompiled_charsmap(
      {{"\xEF\xAC\x81", "fi"}, {"A", "a"}, {"AB", "b"}, {"\t", " "}, {"\xE3\x80\x80", " "}, {"\x01", ""}});
  // ids: 0 <unk>, 1 <s>, 2 </s>, 3 ▁, 4 a, 5 b, 6 f, 7 i, 8 ▁fi, 9 U+FFFD
  auto path = write_scratch("rules.model", unigram_model_bytes({{"<unk>", 0, 2},
                                                                {"<s>", 0, 3},
                                                                {"</s>", 0, 3},
                                                                {kMetaspace, -2, 1},
                                                                {"a", -1, 1},
                                                                {"b", -1, 1},
                                                                {"f", -3, 1},
                                                                {"i", -3, 1},
                                                                {kMetaspace + "fi", -1, 1},
                                                                {"\xEF\xBF\xBD", -1, 1}},
                                                               charsmap));
  a2a::SentencePieceTokenizer tokenizer(path);
  CHECK(tokenizer.encode_as_pieces("\xEF\xAC\x81") == std::vector<std::string>{kMetaspace + "fi"});
  CHECK(tokenizer.encode_as_pieces("AAB") == std::vector<std::string>{kMetaspace, "a", "b"});
  // Tabs and ideographic spaces become spaces before extra whitespace is removed; U+0001 disappears.
  CHECK(tokenizer.encode("\t a\xE3\x80\x80\x01\t b \t") == std::vector<int64_t>{3, 4, 3, 5});
  // A byte that starts no UTF-8 character is U+FFFD, one per byte.
  CHECK(tokenizer.encode_as_pieces("a\xFF\xC3") ==
        std::vector<std::string>{kMetaspace, "a", "\xEF\xBF\xBD", "\xEF\xBF\xBD"});
  CHECK(tokenizer.encode("\x01\t").empty());
}

TEST_CASE("Unigram: unknown runs merge, control pieces never match, user-defined pieces win, unused do not",
          "[unigram]") {
  // ids: 0 <s>, 1 </s>, 2 <unk>, 3 ▁, 4 a, 5 ab (unused), 6 <sep> (user-defined), 7 b
  auto path = write_scratch("kinds.model", unigram_model_bytes({{"<s>", 0, 3},
                                                                {"</s>", 0, 3},
                                                                {"<unk>", 0, 2},
                                                                {kMetaspace, -1, 1},
                                                                {"a", -2, 1},
                                                                {"ab", 0, 5},
                                                                {"<sep>", 0, 4},
                                                                {"b", -2, 1}}));
  a2a::SentencePieceTokenizer tokenizer(path);
  CHECK(tokenizer.unk_id() == 2);  // the UNKNOWN piece, wherever it is
  // "</s>" in text is not the control piece: its characters are unknown, merged into one unk.
  CHECK(tokenizer.encode("</s>") == std::vector<int64_t>{3, 2});
  CHECK(tokenizer.encode_as_pieces("</s>") == std::vector<std::string>{kMetaspace, "</s>"});
  CHECK(tokenizer.encode("ab") == std::vector<int64_t>{3, 4, 7});
  CHECK(tokenizer.encode("a<sep>b") == std::vector<int64_t>{3, 4, 6, 7});
  CHECK(tokenizer.decode({3, 4, 2, 6, 7}) == "a \xE2\x81\x87 <sep>b");
  CHECK(tokenizer.decode({0, 3, 3, 4}) == "a");  // with remove_extra_whitespaces, every leading ▁ goes
}

TEST_CASE("Unigram with byte_fallback spells unknown characters as byte pieces", "[unigram]") {
  std::vector<PieceSpec> pieces{{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {kMetaspace, -1, 1}, {"a", -1, 1}};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    pieces.push_back({name, 0, 6});
  }
  a2a::SentencePieceTokenizer tokenizer(write_scratch("bytes.model", unigram_model_bytes(pieces, "", true)));
  const int64_t first_byte = 5;
  CHECK(tokenizer.encode("a\xC3\xA9") == std::vector<int64_t>{3, 4, first_byte + 0xC3, first_byte + 0xA9});
  CHECK(tokenizer.decode(tokenizer.encode("a\xC3\xA9")) == "a\xC3\xA9");
  CHECK(tokenizer.decode({first_byte + 0xFF, 4}) ==
        "\xEF\xBF\xBD"
        "a");
}

TEST_CASE("Unigram: hostile charsmaps are refused with the problem named", "[unigram]") {
  const std::vector<PieceSpec> pieces{{"<unk>", 0, 2}, {kMetaspace, -1, 1}, {"a", -1, 1}};
  auto refuses = [&](const std::string& charsmap, const std::string& text) {
    const std::string path = write_scratch("hostile_charsmap.model", unigram_model_bytes(pieces, charsmap));
    check_refused([&] { a2a::SentencePieceTokenizer tokenizer(path); }, "tokenizer_bad_model", text);
  };
  auto le32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
  refuses("\x04\x00\x00", "too short");
  refuses(le32(8) + le32(0), "declares a trie of 8 bytes");
  refuses(le32(6) + std::string(8, '\0'), "declares a trie of 6 bytes");
  const std::string huge =
      write_scratch("huge_charsmap.model", unigram_model_bytes(pieces, le32(4) + std::string(16 << 20, 'x')));
  check_refused([&] { a2a::SentencePieceTokenizer tokenizer(huge); }, "too_large", "precompiled_charsmap is");
  // A rule whose value unit lies past the array: root base 0, child 'a' at 0x61 with has_leaf, leaf at 1000.
  std::vector<uint32_t> units(256, 0);
  units['a'] = (('a' ^ 1000u) << 10) | (1u << 8) | 'a';
  auto blob = [&](const std::string& replacements) {
    std::string out = le32(static_cast<uint32_t>(units.size() * 4));
    for (uint32_t u : units) out += le32(u);
    return out + replacements;
  };
  refuses(blob("x\0"), "outside its 256 units");
  // A value pointing past the replacements, and one that has no NUL after it.
  units['a'] = (('a' ^ 200u) << 10) | (1u << 8) | 'a';
  units[200] = (1u << 31) | 5000;
  refuses(blob(std::string("x\0", 2)), "points at replacement byte 5000");
  units[200] = (1u << 31) | 0;
  refuses(blob("xyz"), "past the NUL-terminated strings");
  // The same trie with a terminated replacement loads and applies the rule.
  const std::string good =
      write_scratch("good_charsmap.model", unigram_model_bytes(pieces, blob(std::string("a\0", 2))));
  a2a::SentencePieceTokenizer tokenizer(good);
  CHECK(tokenizer.encode("a") == std::vector<int64_t>{1, 2});
}

TEST_CASE("Unigram: bad scores, vocabularies and unk ids are refused", "[unigram]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float score : {nan, inf, -inf}) {
    const std::string path = write_scratch("bad_score.model", unigram_model_bytes({{"<unk>", 0, 2}, {"a", score, 1}}));
    check_refused([&] { a2a::SentencePieceTokenizer tokenizer(path); }, "tokenizer_bad_model", "piece 1 has the score");
  }
  const std::string no_unknown = write_scratch("no_unknown.model", unigram_model_bytes({{"<s>", 0, 3}, {"a", -1, 1}}));
  check_refused([&] { a2a::SentencePieceTokenizer tokenizer(no_unknown); }, "tokenizer_bad_model",
                "exactly one piece of type UNKNOWN");
  a2a::fuzz::TrainerSpec suffix;
  suffix.treat_whitespace_as_suffix = true;
  const std::string suffix_path =
      write_scratch("suffix.model", a2a::fuzz::sentencepiece_model({{"<unk>", 0, 2}}, suffix, {}));
  check_refused([&] { a2a::SentencePieceTokenizer tokenizer(suffix_path); }, "tokenizer_unsupported",
                "treat_whitespace_as_suffix");

  auto json_refuses = [](const std::string& model, const std::string& code, const std::string& text) {
    const std::string path = write_scratch("unigram_tokenizer.json", R"({"model": )" + model + "}");
    check_refused([&] { a2a::HfTokenizer::from_tokenizer_json(path); }, code, text);
  };
  json_refuses(R"({"type": "Unigram", "unk_id": 0, "vocab": []})", "tokenizer_bad_vocab", "vocabulary is empty");
  json_refuses(R"({"type": "Unigram", "unk_id": 5, "vocab": [["<unk>", 0.0], ["a", -1.0]]})", "tokenizer_bad_vocab",
               "unk_id 5 is not one of the 2 pieces");
  json_refuses(R"({"type": "Unigram", "vocab": [["<unk>", 0.0]]})", "tokenizer_bad_vocab", "no unk_id");
  json_refuses(R"({"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", 1e39]]})", "tokenizer_bad_vocab",
               "not a finite float");
  json_refuses(R"({"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a"]]})", "tokenizer_bad_json",
               "entry 1 is not [piece, score]");
  json_refuses(R"({"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["", -1.0]]})", "tokenizer_bad_vocab",
               "piece 1 is empty");
  const std::string bad_base64 = write_scratch("bad_base64.json", R"({"model": {"type": "Unigram", "unk_id": 0,
      "vocab": [["<unk>", 0.0]]}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AA*A"}})");
  check_refused([&] { a2a::HfTokenizer::from_tokenizer_json(bad_base64); }, "tokenizer_bad_json", "not base64");
  const std::string short_map = write_scratch("short_charsmap.json", R"({"model": {"type": "Unigram", "unk_id": 0,
      "vocab": [["<unk>", 0.0]]}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}})");
  check_refused([&] { a2a::HfTokenizer::from_tokenizer_json(short_map); }, "tokenizer_bad_model", "too short");
}

TEST_CASE("Unigram tokenizer.json: byte fallback, unknown runs and a charsmap", "[unigram]") {
  const json vocab = json::array(
      {{"<unk>", 0.0}, {kMetaspace, -1.0}, {"a", -1.0}, {kMetaspace + "a", -1.5}, {"<0xC3>", 0.0}, {"<0xA9>", 0.0}});
  const std::string charsmap = a2a::fuzz::base64_encode(a2a::fuzz::precompiled_charsmap({{"A", "a"}}));
  json root = {{"normalizer", {{"type", "Precompiled"}, {"precompiled_charsmap", charsmap}}},
               {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", kMetaspace}, {"prepend_scheme", "always"}}},
               {"decoder", {{"type", "Metaspace"}, {"replacement", kMetaspace}, {"prepend_scheme", "always"}}},
               {"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}, {"byte_fallback", true}}}};
  const std::string path = write_scratch("unigram_bytes.json", root.dump());
  auto tokenizer = a2a::HfTokenizer::from_tokenizer_json(path);
  CHECK(tokenizer->encode("A") == std::vector<int64_t>{3});
  // é has byte tokens; x does not, and the run "xx" is one unk (a run mixing both would be one unk too).
  CHECK(tokenizer->encode("a\xC3\xA9 xx") == std::vector<int64_t>{3, 4, 5, 1, 0});
  CHECK(tokenizer->encode("a\xC3\xA9x") == std::vector<int64_t>{3, 0});
  CHECK(tokenizer->decode({3, 1, 2}) == "a a");
}
