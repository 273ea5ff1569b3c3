// safetensors reading, writing, sharded indexes and every hostile header we refuse.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "test_support.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;

namespace {

using a2a::test::fresh_dir;

// A file with the given header text and `data_bytes` bytes of data; `declared` overrides the
// header length written in the first 8 bytes.
std::string write_raw(const std::string& path, const std::string& header, size_t data_bytes,
                      std::optional<uint64_t> declared = std::nullopt) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t n = declared ? *declared : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header;
  for (size_t i = 0; i < data_bytes; ++i) out.put(static_cast<char>(i & 0x7f));
  return path;
}

// Opens `path`, expecting an a2a::Error whose code is `code` and whose message holds `needle`.
void expect_open_error(const std::string& path, const std::string& code, const std::string& needle) {
  try {
    a2a::SafeTensorsFile::open(path);
    FAIL("opening " << path << " should have failed with " << needle);
  } catch (const a2a::Error& e) {
    INFO(e.message());
    CHECK(e.code() == code);
    CHECK(e.message().find(needle) != std::string::npos);
    CHECK(e.message().find(path) != std::string::npos);
  }
}

std::map<std::string, at::Tensor> every_dtype() {
  at::manual_seed(7);
  std::map<std::string, at::Tensor> t;
  t["f64"] = at::randn({3, 5}, at::kDouble);
  t["f32"] = at::randn({2, 3, 4});
  t["f16"] = at::randn({7}).to(at::kHalf);
  t["bf16"] = at::randn({3, 3}).to(at::kBFloat16);
  t["i64"] = at::randint(-1000000000000LL, 1000000000000LL, {5}, at::kLong);
  t["i32"] = at::randint(-100000, 100000, {2, 2}, at::kInt);
  t["i16"] = at::randint(-30000, 30000, {9}, at::kShort);
  t["i8"] = at::randint(-128, 127, {3}, at::kChar);
  t["u8"] = at::randint(0, 255, {11}, at::kByte);
  t["bool"] = at::randint(0, 2, {5}, at::kLong).to(at::kBool);
  t["scalar"] = at::scalar_tensor(3.5, at::kFloat);
  t["empty"] = at::empty({0, 3});
  t["transposed"] = at::randn({4, 6}).t();  // not contiguous
  return t;
}

}  // namespace

TEST_CASE("safetensors round trip of every dtype LibTorch has", "[safetensors]") {
  const std::string path = fresh_dir("roundtrip") + "/all.safetensors";
  auto tensors = every_dtype();
  a2a::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "ünïcode"}});

  // Official layout: the header length is a multiple of 8 and the header ends in spaces.
  std::ifstream in(path, std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len[i];
  CHECK(header_len % 8 == 0);

  auto file = a2a::SafeTensorsFile::open(path);
  CHECK(file->metadata().at("format") == "pt");
  CHECK(file->metadata().at("note") == "ünïcode");
  REQUIRE(file->records().size() == tensors.size());
  const std::map<std::string, std::string> expected_dtype = {
      {"f64", "F64"},    {"f32", "F32"},   {"f16", "F16"},       {"bf16", "BF16"}, {"i64", "I64"},
      {"i32", "I32"},    {"i16", "I16"},   {"i8", "I8"},         {"u8", "U8"},     {"bool", "BOOL"},
      {"scalar", "F32"}, {"empty", "F32"}, {"transposed", "F32"}};
  for (const auto& [name, original] : tensors) {
    INFO(name);
    CHECK(file->record(name).dtype == expected_dtype.at(name));
    at::Tensor back = file->tensor(name);
    CHECK(back.scalar_type() == original.scalar_type());
    CHECK(back.sizes() == original.sizes());
    CHECK(at::equal(back, original));
    if (back.numel() > 0) {
      CHECK(a2a::is_mapped_view(back));
      CHECK(reinterpret_cast<uintptr_t>(back.data_ptr()) % back.element_size() == 0);
    }
  }
}

TEST_CASE("safetensors views are zero-copy and keep the mapping alive", "[safetensors]") {
  const std::string path = fresh_dir("views") + "/v.safetensors";
  at::Tensor original = at::arange(1000, at::kFloat).reshape({10, 100});
  a2a::save_safetensors(path, {{"w", original}});
  at::Tensor a, b;
  {
    auto file = a2a::SafeTensorsFile::open(path);
    a = file->tensor("w");
    b = file->tensor("w");
    CHECK(a.data_ptr() == b.data_ptr());  // both view the same mapped bytes
  }
  CHECK(at::equal(a, original));  // the file object is gone, the mapping is not
  a.mul_(2);                      // private copy-on-write: the file is unchanged
  CHECK(at::equal(a2a::SafeTensorsFile::open(path)->tensor("w"), original));
  CHECK_FALSE(a2a::is_mapped_view(original));
  CHECK_FALSE(a2a::release_mapped_pages(original));
}

TEST_CASE("safetensors reads a reference checkpoint", "[safetensors]") {
  A2A_REQUIRE_FIXTURE("clip_text_model/model.safetensors");
  auto meta = a2a::test::read_json(a2a::test::fixture_path("clip_text_model/meta.json"));
  auto file = a2a::SafeTensorsFile::open(a2a::test::fixture_path("clip_text_model/model.safetensors"));
  CHECK(file->metadata().at("format") == "pt");
  CHECK(file->records().size() == meta["state_dict_keys"].get<size_t>());
  int64_t parameters = 0;
  for (const auto& [name, t] : file->tensors()) parameters += t.numel();
  CHECK(parameters == meta["num_parameters"].get<int64_t>());
}

TEST_CASE("safetensors writing is atomic and refuses what it cannot store", "[safetensors]") {
  const std::string dir = fresh_dir("atomic");
  const std::string path = dir + "/w.safetensors";
  a2a::save_safetensors(path, {{"a", at::ones({4})}});
  a2a::save_safetensors(path, {{"b", at::zeros({2})}});
  auto file = a2a::SafeTensorsFile::open(path);
  CHECK(file->names() == std::vector<std::string>{"b"});
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.is_regular_file();
  CHECK(entries == 1);  // no temporary file left behind

  CHECK_THROWS_WITH(a2a::save_safetensors(path, {{"c", at::ones({2}, at::kComplexFloat)}}),
                    Catch::Contains("'c'") && Catch::Contains("cannot store"));
  CHECK_THROWS_WITH(a2a::save_safetensors(path, {{"__metadata__", at::ones({2})}}), Catch::Contains("__metadata__"));
  CHECK_THROWS_WITH(a2a::save_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", at::ones({1})}}),
                    Catch::Contains("temporary file"));
  CHECK(a2a::SafeTensorsFile::open(path)->names() == std::vector<std::string>{"b"});  // untouched by failures
}

TEST_CASE("safetensors refuses hostile and broken headers", "[safetensors]") {
  const std::string dir = fresh_dir("hostile");
  auto p = [&](const std::string& name) { return dir + "/" + name + ".safetensors"; };
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";

  SECTION("file shorter than the length field") {
    std::ofstream(p("short"), std::ios::binary) << "abc";
    expect_open_error(p("short"), "bad_safetensors", "too short");
  }
  SECTION("header length beyond the file") {
    write_raw(p("beyond"), "{}", 0, 1000);
    expect_open_error(p("beyond"), "bad_safetensors", "runs past the end");
  }
  SECTION("header length over 100 MB") {
    // A sparse file large enough to hold the declared header: nothing is allocated or read.
    const std::string path = p("huge");
    write_raw(path, "{}", 0, 100000001ull);
    REQUIRE(::truncate(path.c_str(), 100000001ll + 8 + 16) == 0);
    expect_open_error(path, "bad_safetensors", "exceeds the 100 MB limit");
  }
  SECTION("invalid JSON") {
    write_raw(p("json"), "{\"a\": {\"dtype\": ", 0);
    expect_open_error(p("json"), "bad_safetensors", "not valid JSON");
  }
  SECTION("header that is not an object") {
    write_raw(p("array"), "[1, 2]  ", 0);
    expect_open_error(p("array"), "bad_safetensors", "not a JSON object");
  }
  SECTION("offsets out of range") {
    write_raw(p("range"),
              "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[8,16]}}", 12);
    expect_open_error(p("range"), "bad_safetensors", "outside the 12-byte data block");
  }
  SECTION("begin after end") {
    write_raw(p("reversed"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8);
    expect_open_error(p("reversed"), "bad_safetensors", "'a' has data offsets [8, 0]");
  }
  SECTION("overlapping tensors") {
    write_raw(p("overlap"),
              "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[4,12]}}", 12);
    expect_open_error(p("overlap"), "bad_safetensors", "overlaps tensor 'a'");
  }
  SECTION("a gap between tensors") {
    write_raw(p("gap"), "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[12,20]}}",
              20);
    expect_open_error(p("gap"), "bad_safetensors", "not contiguous");
  }
  SECTION("bytes after the last tensor") {
    write_raw(p("tail"), "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", 16);
    expect_open_error(p("tail"), "bad_safetensors", "8 bytes no tensor describes");
  }
  SECTION("shape x dtype size differs from the span") {
    write_raw(p("span"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(p("span"), "bad_safetensors", "shape x dtype size 12 bytes but its data span is 8");
  }
  SECTION("shape whose size overflows") {
    write_raw(p("overflow"),
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,8]}}",
              8);
    expect_open_error(p("overflow"), "bad_safetensors", "overflows");
  }
  SECTION("duplicate tensor names") {
    write_raw(p("dup"), "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"a\":{" + f32x2 + ",\"data_offsets\":[8,16]}}",
              16);
    expect_open_error(p("dup"), "bad_safetensors", "'a' appears twice");
  }
  SECTION("duplicate tensor names with overlapping spans") {
    write_raw(p("dup2"), "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]}}",
              8);
    expect_open_error(p("dup2"), "bad_safetensors", "'a' appears twice");
  }
  SECTION("duplicate metadata") {
    write_raw(p("dupmeta"), "{\"__metadata__\":{},\"__metadata__\":{}}", 0);
    expect_open_error(p("dupmeta"), "bad_safetensors", "__metadata__ appears twice");
  }
  SECTION("too many dimensions") {
    std::string shape = "[1";
    for (int i = 0; i < 100; ++i) shape += ",1";
    write_raw(p("rank"), "{\"a\":{\"dtype\":\"U8\",\"shape\":" + shape + "],\"data_offsets\":[0,1]}}", 1);
    expect_open_error(p("rank"), "bad_safetensors", "more than 64 dimensions");
  }
  SECTION("more than two offsets") {
    write_raw(p("offsets3"), "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8,16]}}", 8);
    expect_open_error(p("offsets3"), "bad_safetensors", "more than two data_offsets");
  }
  SECTION("duplicate field inside an entry") {
    write_raw(p("dupfield"), "{\"a\":{" + f32x2 + ",\"dtype\":\"F16\",\"data_offsets\":[0,8]}}", 8);
    expect_open_error(p("dupfield"), "bad_safetensors", "lists 'dtype' twice");
  }
  SECTION("a non-string metadata value") {
    write_raw(p("meta"), "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", 0);
    expect_open_error(p("meta"), "bad_safetensors", "metadata value for 'epoch' is not a string");
  }
  SECTION("metadata that is not an object") {
    write_raw(p("meta2"), "{\"__metadata__\":\"pt\"}", 0);
    expect_open_error(p("meta2"), "bad_safetensors", "__metadata__ is not an object");
  }
  SECTION("negative shape entry") {
    write_raw(p("negative"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(p("negative"), "bad_safetensors", "shape entry that is a negative number");
  }
  SECTION("fractional offset") {
    write_raw(p("fraction"), "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8.5]}}", 8);
    expect_open_error(p("fraction"), "bad_safetensors", "data offset that is a non-integer number");
  }
  SECTION("missing data_offsets") {
    write_raw(p("nooffsets"), "{\"a\":{" + f32x2 + "}}", 0);
    expect_open_error(p("nooffsets"), "bad_safetensors", "has no [begin, end] data_offsets");
  }
  SECTION("unknown dtype") {
    write_raw(p("dtype"), "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_open_error(p("dtype"), "bad_safetensors", "unknown dtype 'Q7'");
  }
  SECTION("values nested too deeply") {
    std::string deep =
        "{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8],\"x\":" + std::string(200, '[') + std::string(200, ']') + "}}";
    write_raw(p("deep"), deep, 8);
    expect_open_error(p("deep"), "bad_safetensors", "nested too deeply");
  }
  SECTION("metadata nested a million levels") {
    const size_t levels = 1000000;
    write_raw(p("million"), "{\"__metadata__\":{\"x\":" + std::string(levels, '[') + std::string(levels, ']') + "}}",
              0);
    expect_open_error(p("million"), "json_too_deep", "deeper than 256 levels");
  }
}

TEST_CASE("safetensors lists dtypes LibTorch lacks and names the tensor when asked for it", "[safetensors]") {
  const std::string path = fresh_dir("foreign") + "/f8.safetensors";
  write_raw(path,
            "{\"fp8_weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]},"
            "\"u16\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
            8);
  auto file = a2a::SafeTensorsFile::open(path);
  REQUIRE(file->records().size() == 2);
  CHECK(file->record("fp8_weight").dtype == "F8_E4M3");
  for (const char* name : {"fp8_weight", "u16"}) {
    try {
      file->tensor(name);
      FAIL("reading " << name << " should fail");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "unsupported_dtype");
      CHECK(e.message().find(std::string("'") + name + "'") != std::string::npos);
      CHECK(e.message().find(path) != std::string::npos);
    }
  }
}

TEST_CASE("safetensors sharded checkpoints through their index", "[safetensors]") {
  const std::string dir = fresh_dir("sharded");
  at::manual_seed(3);
  std::map<std::string, at::Tensor> tensors;
  for (int i = 0; i < 6; ++i) tensors["layers." + std::to_string(i) + ".weight"] = at::randn({16, 16});
  tensors["norm.weight"] = at::randn({16}).to(at::kHalf);
  const std::string index = a2a::save_safetensors_sharded(dir, "model", tensors, 2 * 16 * 16 * 4, {{"format", "pt"}});
  CHECK(fs::path(index).filename() == "model.safetensors.index.json");

  auto ckpt = a2a::SafeTensorsCheckpoint::open(index);
  CHECK(ckpt->sharded());
  CHECK(ckpt->files().size() == 4);
  CHECK(ckpt->metadata().at("format") == "pt");
  uint64_t expected_total = 0;
  for (const auto& kv : tensors) expected_total += kv.second.numel() * kv.second.element_size();
  CHECK(ckpt->index_metadata().at("total_size") == std::to_string(expected_total));
  auto loaded = a2a::load_safetensors(index);
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, t] : tensors) CHECK(at::equal(loaded.at(name), t));

  auto index_json = a2a::test::read_json(index);
  auto write_index = [&](const nlohmann::json& j) {
    const std::string path = dir + "/broken.safetensors.index.json";
    std::ofstream(path) << j.dump();
    return path;
  };
  auto expect_index_error = [&](const nlohmann::json& j, const std::string& needle) {
    try {
      a2a::SafeTensorsCheckpoint::open(write_index(j));
      FAIL("the index should be refused: " << needle);
    } catch (const a2a::Error& e) {
      INFO(e.message());
      CHECK(e.code() == "bad_safetensors_index");
      CHECK(e.message().find(needle) != std::string::npos);
    }
  };
  {
    auto j = index_json;
    j["weight_map"]["norm.weight"] = "model-00009-of-00009.safetensors";
    expect_index_error(j, "does not exist");
  }
  {
    // Written by hand: dumping a million levels would itself overflow the stack, as `a2a inspect` did.
    const size_t levels = 1000000;
    const std::string path = dir + "/deep.safetensors.index.json";
    a2a::test::write_text(path, "{\"metadata\": {\"x\": " + std::string(levels, '[') + std::string(levels, ']') +
                                    "}, \"weight_map\": " + index_json["weight_map"].dump() + "}");
    try {
      a2a::SafeTensorsCheckpoint::open(path);
      FAIL("the deep index should be refused");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "json_too_deep");
      CHECK(e.message().find(path) != std::string::npos);
    }
  }
  {
    auto j = index_json;
    j["weight_map"]["norm.weight"] = j["weight_map"]["layers.0.weight"];
    expect_index_error(j, "which does not hold it");
  }
  {
    auto j = index_json;
    j["weight_map"].erase("layers.1.weight");
    expect_index_error(j, "which the index does not list");
  }
  {
    auto j = index_json;
    j["weight_map"]["norm.weight"] = "../elsewhere.safetensors";
    expect_index_error(j, "not a file beside the index");
  }
  expect_index_error(nlohmann::json{{"metadata", nlohmann::json::object()}}, "no \"weight_map\"");
  {
    const std::string path = dir + "/text.safetensors.index.json";
    std::ofstream(path) << "{\"weight_map\": ";
    CHECK_THROWS_WITH(a2a::SafeTensorsCheckpoint::open(path), Catch::Contains("not valid JSON"));
  }
}

TEST_CASE("a sharded index naming a shard the system cannot look up is bad_safetensors_index", "[safetensors]") {
  // Found by the safetensors_index fuzzer: a 5000-character shard name made std::filesystem throw.
  const std::string dir = a2a::test::fresh_dir("index_long_name");
  const std::string index = dir + "/model.safetensors.index.json";
  a2a::test::write_text(index, R"({"weight_map": {"w": ")" + std::string(5000, 'x') + R"(.safetensors"}})");
  try {
    a2a::SafeTensorsCheckpoint::open(index);
    FAIL("accepted");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "bad_safetensors_index");
    CHECK(e.message().find("does not exist") != std::string::npos);
  }
}
