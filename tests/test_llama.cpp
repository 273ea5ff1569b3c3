#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "llm/llama.h"
#include "llm/llama2c.h"
#include "llm/llama_generate.h"
#include "test_support.h"
#include "tokenizers/tokenizer.h"
#include "weights/safetensors.h"

using a2a::test::fixture_path;
using a2a::test::read_json;

namespace {

std::vector<int64_t> row_ids(const at::Tensor& ids, int64_t row) {
  auto r = ids[row].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

a2a::LlamaGeneration greedy(a2a::LlamaForCausalLM& model, const std::vector<int64_t>& prompt, int64_t max_new,
                            bool use_cache, std::vector<int64_t> stop_ids = {}) {
  a2a::LlamaGenerateOptions options;
  options.generation.max_new_tokens = max_new;
  options.generation.stop_ids = std::move(stop_ids);
  options.use_cache = use_cache;
  auto ids = at::tensor(prompt, at::kLong).unsqueeze(0);
  return a2a::llama_generate(model, model->embed(ids), prompt, options);
}

std::string llama_variant_dir() { return std::string(A2A_SOURCE_DIR) + "/tests/data/variants/llama_causal_lm_b2"; }

void check_cached_generation_row(a2a::LlamaForCausalLM& model, const at::Tensor& ids, int64_t row) {
  auto prompt = row_ids(ids, row);
  a2a::LlamaGenerateOptions options;
  options.generation.max_new_tokens = 10;
  options.state_layers = {-1};
  auto embeds = model->embed(ids.narrow(0, row, 1));
  auto cached = a2a::llama_generate(model, embeds, prompt, options);
  options.use_cache = false;
  auto uncached = a2a::llama_generate(model, embeds, prompt, options);
  CHECK(cached.result.tokens == uncached.result.tokens);
  A2A_CHECK_CLOSE(cached.predicting_states, uncached.predicting_states, 1e-5);
  // Logits of the full sequence from the cached states' final layer equal a fresh forward.
  auto all = prompt;
  all.insert(all.end(), cached.result.tokens.begin(), cached.result.tokens.end());
  auto fresh = model->forward_ids(at::tensor(all, at::kLong).unsqueeze(0), {/*mask*/ {}, nullptr, true, false});
  auto final_states = fresh.hidden_states.back()[0].narrow(0, prompt.size() - 1, cached.result.tokens.size());
  A2A_CHECK_CLOSE(cached.predicting_states, final_states, 1e-5);
}

// Replays the forward and generate calls of a LlamaForCausalLM fixture folder.
void check_llama_fixture(const std::string& dir) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto loaded = a2a::load_llama(dir);
  auto& model = loaded.model;
  auto meta = read_json(dir + "/meta.json");
  auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");

  for (const auto& call : meta["calls"]) {
    const auto input_ids = inputs.at(call["args"]["input_ids"].get<std::string>());
    if (call["method"] == "forward") {
      auto logits = model->forward(input_ids);
      INFO("logits");
      std::cout << meta["fixture"].get<std::string>() << " logits: scaled max abs error "
                << a2a::test::scaled_error(logits, outputs.at("logits")) << std::endl;
      A2A_CHECK_CLOSE(logits, outputs.at("logits"), 1e-4);
    } else if (call["method"] == "generate") {
      const int64_t max_new = call["kwargs"]["max_new_tokens"].get<int64_t>();
      const auto expected = outputs.at("generated_ids");
      REQUIRE(expected.size(0) == input_ids.size(0));
      REQUIRE(expected.size(1) == input_ids.size(1) + max_new);
      for (int64_t row = 0; row < input_ids.size(0); ++row) {
        INFO("row " << row);
        auto prompt = row_ids(input_ids, row);
        auto generation = greedy(model, prompt, max_new, /*use_cache=*/true);
        auto ids = prompt;
        ids.insert(ids.end(), generation.result.tokens.begin(), generation.result.tokens.end());
        CHECK(ids == row_ids(expected, row));
      }
    }
  }
}

// Prefill plus decode steps equal the full forward; left-padded rows with their mask equal the unpadded ones.
void check_llama_cache_and_padding(const std::string& dir) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto model = a2a::load_llama(dir).model;
  auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto ids = inputs.at("input_ids");
  const int64_t batch = ids.size(0), length = ids.size(1);
  const auto full = model->forward(ids);

  const int64_t prefill = length / 2;
  auto cache = model->new_cache(batch, length);
  a2a::LlamaForwardOptions call;
  call.cache = &cache;
  std::vector<at::Tensor> pieces{model->forward_ids(ids.narrow(1, 0, prefill), call).logits};
  for (int64_t t = prefill; t < length; ++t) pieces.push_back(model->forward_ids(ids.narrow(1, t, 1), call).logits);
  CHECK(cache.length() == length);
  A2A_CHECK_CLOSE(at::cat(pieces, 1), full, 1e-5);

  // Left padding: every row after the first shifted right by two pad positions must give its own logits; row 0
  // stays unpadded but has two extra tokens at the end.
  const int64_t pad = 2;
  auto padded_ids = at::zeros({batch, length + pad}, at::kLong);
  auto mask = at::ones({batch, length + pad}, at::kLong);
  padded_ids.narrow(1, pad, length).copy_(ids);
  padded_ids[0].narrow(0, 0, length).copy_(ids[0]);
  padded_ids[0].narrow(0, length, pad).copy_(ids[0].narrow(0, 0, pad));
  for (int64_t row = 1; row < batch; ++row) mask[row].narrow(0, 0, pad).fill_(0);
  a2a::LlamaForwardOptions masked;
  masked.attention_mask = mask;
  auto padded = model->forward_ids(padded_ids, masked).logits;
  A2A_CHECK_CLOSE(padded[0].narrow(0, 0, length), full[0], 1e-5);
  for (int64_t row = 1; row < batch; ++row) {
    INFO("row " << row);
    A2A_CHECK_CLOSE(padded[row].narrow(0, pad, length), full[row], 1e-5);
  }
  CHECK(std::isfinite(padded.abs().max().item<double>()));
}

// Cached and uncached generation from every prompt row give the same ids and predicting states.
void check_llama_cached_generation(const std::string& dir) {
  INFO("fixture " << dir);
  torch::NoGradGuard no_grad;
  auto model = a2a::load_llama(dir).model;
  auto ids = a2a::load_safetensors(dir + "/inputs.safetensors").at("input_ids");
  for (int64_t row = 0; row < ids.size(0); ++row) {
    INFO("row " << row);
    check_cached_generation_row(model, ids, row);
  }
}

}  // namespace

TEST_CASE("LlamaForCausalLM matches transformers' logits and greedy ids", "[llama]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  check_llama_fixture(fixture_path("llama_causal_lm"));
}

TEST_CASE("LlamaForCausalLM matches transformers' logits and greedy ids (GQA, batch 2 variant)", "[llama]") {
  check_llama_fixture(llama_variant_dir());
}

TEST_CASE("Llama KV cache: prefill plus decode steps equal the full forward, padded batches too", "[llama]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  check_llama_cache_and_padding(fixture_path("llama_causal_lm"));
}

TEST_CASE("Llama KV cache and padding on the GQA variant", "[llama]") {
  check_llama_cache_and_padding(llama_variant_dir());
}

TEST_CASE("Llama cached and uncached generation give the same logits and ids", "[llama]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  check_llama_cached_generation(fixture_path("llama_causal_lm"));
}

TEST_CASE("Llama cached and uncached generation agree on the GQA variant", "[llama]") {
  check_llama_cached_generation(llama_variant_dir());
}

TEST_CASE("Llama options parse config.json, rope scaling follows transformers", "[llama]") {
  nlohmann::json config = {{"hidden_size", 64},
                           {"num_attention_heads", 4},
                           {"num_key_value_heads", nullptr},
                           {"rope_theta", 500000.0},
                           {"eos_token_id", {128001, 128009}},
                           {"rope_scaling",
                            {{"rope_type", "llama3"},
                             {"factor", 8.0},
                             {"low_freq_factor", 1.0},
                             {"high_freq_factor", 4.0},
                             {"original_max_position_embeddings", 64}}}};
  auto o = a2a::LlamaOptions::from_json(config);
  CHECK(o.num_key_value_heads == 4);
  CHECK(o.eos_token_id == std::vector<int64_t>{128001, 128009});
  CHECK(o.rms_norm_eps == 1e-6);
  auto scaled = a2a::llama_rope_inverse_frequencies(o);
  auto plain_options = o;
  plain_options.rope_scaling.reset();
  auto plain = a2a::llama_rope_inverse_frequencies(plain_options);
  REQUIRE(plain.size(0) == 8);
  for (int64_t i = 0; i < 8; ++i) {
    const double f = 1.0 / std::pow(500000.0, 2.0 * i / 16.0);
    CHECK(plain[i].item<double>() == Approx(f).epsilon(1e-6));
    const double wavelen = 2 * M_PI / f;
    double expected = f;
    if (wavelen > 64.0 / 1.0) {
      expected = f / 8.0;
    } else if (wavelen >= 64.0 / 4.0) {
      const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * f / 8.0 + smooth * f;
    }
    CHECK(scaled[i].item<double>() == Approx(expected).epsilon(1e-5));
  }
  config["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  auto linear = a2a::llama_rope_inverse_frequencies(a2a::LlamaOptions::from_json(config));
  A2A_CHECK_CLOSE(linear, plain / 2.0, 1e-7);
  config["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}};
  CHECK_THROWS_AS(a2a::LlamaOptions::from_json(config).validate(), a2a::Error);
}

TEST_CASE("llama2.c rotary row permutation maps interleaved pairs to halves", "[llama]") {
  // Two heads of size 4: llama2.c rows (pair i, component j) at 2i + j go to j * 2 + i.
  auto rows = at::arange(8, at::kFloat).unsqueeze(1);
  auto hf = a2a::llama2c_rotary_rows_to_transformers(rows, 2).reshape({-1});
  std::vector<float> got(hf.data_ptr<float>(), hf.data_ptr<float>() + 8);
  CHECK(got == std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7});
}

TEST_CASE("stories260K: BOS logits and greedy texts of llama2.c", "[llama]") {
  A2A_REQUIRE_FIXTURE("llama2c/stories260K.bin");
  A2A_REQUIRE_FIXTURE("llama2c/tok512.bin");
  torch::NoGradGuard no_grad;
  auto expected = read_json(fixture_path("llama2c/expected.json"));
  auto loaded = a2a::load_llama(fixture_path("llama2c/stories260K.bin"));
  CHECK(loaded.format == "llama2c");
  CHECK(loaded.options.tie_word_embeddings);
  auto& model = loaded.model;
  auto tokenizer = a2a::load_tokenizer(fixture_path("llama2c/tok512.bin"));
  const int64_t bos = *tokenizer->bos_id();

  auto logits = model->forward(at::full({1, 1}, bos, at::kLong)).reshape({-1});
  auto top = logits.topk(static_cast<int64_t>(expected["bos_logits_top5"]["ids"].size()));
  auto ref_values = at::tensor(expected["bos_logits_top5"]["values"].get<std::vector<float>>());
  auto ref_ids = expected["bos_logits_top5"]["ids"].get<std::vector<int64_t>>();
  A2A_CHECK_CLOSE(std::get<0>(top), ref_values, 1e-4);
  CHECK(row_ids(std::get<1>(top).unsqueeze(0), 0) == ref_ids);

  for (const auto& item : expected["greedy"]) {
    std::vector<int64_t> prompt{bos};
    for (auto id : tokenizer->encode(item["prompt"].get<std::string>())) prompt.push_back(id);
    const int64_t steps = item["steps"].get<int64_t>();
    // run.c forwards positions 0..steps-1 (prompt included) and prints the token chosen at each, so
    // the token chosen at the last position is part of the text; BOS ends it early.
    auto generation = greedy(model, prompt, steps - static_cast<int64_t>(prompt.size()) + 1, true, {bos});
    std::vector<int64_t> text_ids(prompt.begin() + 1, prompt.end());
    for (auto id : generation.result.tokens)
      if (id != bos) text_ids.push_back(id);
    INFO("prompt '" << item["prompt"].get<std::string>() << "'");
    CHECK(tokenizer->decode(text_ids) == item["text"].get<std::string>());
  }
}

TEST_CASE("llama2.c loader rejects a truncated file with its name", "[llama]") {
  const std::string path = a2a::test::scratch_dir() + "/truncated.bin";
  {
    std::ofstream out(path, std::ios::binary);
    int32_t header[7] = {64, 172, 5, 8, 4, 512, 512};
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
    float some[16] = {};
    out.write(reinterpret_cast<const char*>(some), sizeof(some));
  }
  try {
    a2a::read_llama2c(path);
    FAIL("no error");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "bad_llama2c");
    CHECK(e.message().find("truncated.bin") != std::string::npos);
  }
}

TEST_CASE("llama2.c loader rejects a header whose size sum overflows", "[llama]") {
  // dim = hidden = 2^30, one layer, seq_len 2^30 - 4: the float count is 2^63, so the byte count wraps to the
  // 28-byte header alone and matched this very file.
  const std::string path = a2a::test::scratch_dir() + "/overflow.bin";
  {
    std::ofstream out(path, std::ios::binary);
    int32_t header[7] = {1 << 30, 1 << 30, 1, 1, 1, 1, (1 << 30) - 4};
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
  }
  try {
    a2a::read_llama2c(path);
    FAIL("no error");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "bad_llama2c");
    CHECK(e.message().find("overflow.bin") != std::string::npos);
    CHECK(e.message().find("beyond the supported sizes") != std::string::npos);
  }
}
