#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "llm/chat_template.h"
#include "llm/generation.h"
#include "llm/llama.h"
#include "llm/llama_generate.h"
#include "test_support.h"
#include "weights/safetensors.h"

namespace {

std::vector<float> values(const at::Tensor& t) {
  auto c = t.contiguous().to(at::kFloat);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Pieces of a toy vocabulary for stop strings and streaming.
const std::vector<std::string> kPieces = {"Hel", "lo", " #", "##", " Hu", "man", "\xC3", "\xA9", "!", "x"};
std::string decode_pieces(const std::vector<int64_t>& ids) {
  std::string out;
  for (auto id : ids) out += kPieces.at(static_cast<size_t>(id));
  return out;
}

}  // namespace

TEST_CASE("repetition penalty, temperature, top-k and top-p follow transformers", "[generation]") {
  const float inf = std::numeric_limits<float>::infinity();
  auto logits = at::tensor({2.0f, -1.0f, 0.5f, 1.0f});
  a2a::TokenSamplingOptions greedy;
  greedy.repetition_penalty = 2.0;
  // Positive logits are divided, negative multiplied; each id once even when repeated.
  CHECK(values(a2a::process_logits(logits, {0, 1, 1}, greedy)) == std::vector<float>{1.0f, -2.0f, 0.5f, 1.0f});
  // Greedy ignores the warpers.
  greedy.repetition_penalty = 1.0;
  greedy.top_k = 1;
  CHECK(values(a2a::process_logits(logits, {}, greedy)) == values(logits));

  a2a::TokenSamplingOptions sample;
  sample.do_sample = true;
  sample.temperature = 0.5;
  CHECK(values(a2a::process_logits(logits, {}, sample)) == std::vector<float>{4.0f, -2.0f, 1.0f, 2.0f});
  sample.temperature = 1.0;
  sample.top_k = 2;
  CHECK(values(a2a::process_logits(logits, {}, sample)) == std::vector<float>{2.0f, -inf, -inf, 1.0f});
  sample.top_k = 0;
  // Probabilities of log([0.5, 0.3, 0.15, 0.05]): top_p 0.7 keeps 0.5 and 0.3 (the cumulative mass of the
  // dropped tail, 0.2, is <= 1 - 0.7).
  auto probs = at::tensor({0.5f, 0.3f, 0.15f, 0.05f}).log();
  sample.top_p = 0.7;
  auto kept = a2a::process_logits(probs, {}, sample);
  CHECK(std::isfinite(kept[0].item<float>()));
  CHECK(std::isfinite(kept[1].item<float>()));
  CHECK(std::isinf(kept[2].item<float>()));
  CHECK(std::isinf(kept[3].item<float>()));
  sample.top_p = 0.01;  // the most likely token always stays
  auto one = a2a::process_logits(probs, {}, sample);
  CHECK(std::isfinite(one[0].item<float>()));
  CHECK(std::isinf(one[1].item<float>()));
}

TEST_CASE("sampling is reproducible per seed and greedy picks the argmax", "[generation]") {
  auto logits = at::zeros({1000});
  a2a::TokenSamplingOptions options;
  options.do_sample = true;
  auto draw = [&](uint64_t seed) {
    a2a::TokenSampler sampler(options, seed);
    std::vector<int64_t> out;
    for (int i = 0; i < 20; ++i) out.push_back(sampler.next(logits, out));
    return out;
  };
  CHECK(draw(7) == draw(7));
  CHECK(draw(7) != draw(8));
  options.top_k = 1;
  auto peaked = at::randn({50});
  a2a::TokenSampler sampler(options, 1);
  CHECK(sampler.next(peaked, {}) == peaked.argmax().item<int64_t>());
  a2a::TokenSampler greedy({}, 1);
  CHECK(greedy.next(peaked, {}) == peaked.argmax().item<int64_t>());
}

TEST_CASE("streaming text holds back stop-string prefixes and partial UTF-8", "[generation]") {
  a2a::StreamingText stream(decode_pieces, {"###"});
  CHECK_FALSE(stream.push(0));
  CHECK(stream.take_ready() == "Hel");
  CHECK_FALSE(stream.push(1));
  CHECK(stream.take_ready() == "lo");
  CHECK_FALSE(stream.push(6));  // first byte of "é"
  CHECK(stream.take_ready().empty());
  CHECK_FALSE(stream.push(7));
  CHECK(stream.take_ready() == "\xC3\xA9");
  CHECK_FALSE(stream.push(2));  // " #" could start "###"
  CHECK(stream.take_ready() == " ");
  CHECK(stream.push(3));  // "###" complete
  CHECK(stream.take_rest() == "");
  CHECK(stream.text() == "Hello\xC3\xA9 ");
}

TEST_CASE("the decoding loop stops at stop ids, stop strings and max_new_tokens", "[generation]") {
  // A fake model: the logits favour token (last + 1) % 10.
  auto logits_after = [](int64_t token) {
    auto l = at::zeros({10});
    l[(token + 1) % 10] = 5.0;
    return l;
  };
  a2a::GenerationHooks hooks;
  int fed = 0;
  hooks.feed = [&](int64_t token) {
    ++fed;
    return logits_after(token);
  };
  hooks.decode = decode_pieces;
  std::string streamed;
  hooks.on_token = [&](int64_t, const std::string& text) { streamed += text; };

  a2a::GenerationOptions options;
  options.max_new_tokens = 4;
  auto result = a2a::generate_tokens(logits_after(-1), {}, options, hooks);
  CHECK(result.tokens == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(result.stop_reason == "max_new_tokens");
  CHECK(fed == 3);  // the last token is not fed
  CHECK(result.text == "Hello ###");
  CHECK(streamed == result.text);

  options.max_new_tokens = 10;
  options.stop_ids = {2};
  result = a2a::generate_tokens(logits_after(-1), {}, options, hooks);
  CHECK(result.tokens == std::vector<int64_t>{0, 1, 2});
  CHECK(result.stop_reason == "stop_id");
  CHECK(result.text == "Hello");

  options.stop_ids.clear();
  options.stop_strings = {" Hu"};
  streamed.clear();
  result = a2a::generate_tokens(logits_after(-1), {}, options, hooks);
  CHECK(result.tokens == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(result.stop_reason == "stop_string");
  CHECK(result.text == "Hello ###");
  CHECK(streamed == result.text);
}

TEST_CASE("chat templates: built-in formats and custom patterns", "[generation]") {
  CHECK(a2a::builtin_chat_template("vicuna_v0").apply("Draw a cat") == "### Human: Draw a cat\n### Assistant:");
  CHECK(a2a::builtin_chat_template("llama2").apply("Hi", "Be brief.") ==
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  CHECK(a2a::builtin_chat_template("llama2").apply("Hi") == "[INST] Hi [/INST]");
  auto v11 = a2a::builtin_chat_template("vicuna_v1.1");
  CHECK(v11.apply("Hi").rfind("A chat between a curious user", 0) == 0);
  CHECK(v11.apply("Hi").size() - v11.apply("Hi").rfind(" USER: Hi ASSISTANT:") ==
        std::string(" USER: Hi ASSISTANT:").size());
  CHECK(a2a::builtin_chat_template("llama3").apply("Hi") ==
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  CHECK(a2a::builtin_chat_template("chatml").apply("Hi", "S") ==
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(a2a::builtin_chat_template("chatml").stop_tokens == std::vector<std::string>{"<|im_end|>"});
  auto custom = a2a::custom_chat_template("<s>{system}|{user}|", "sys");
  CHECK(custom.apply("a {system} b") == "<s>sys|a {system} b|");  // values are not substituted again
  CHECK_THROWS_AS(a2a::custom_chat_template("no placeholder"), a2a::Error);
  CHECK_THROWS_AS(a2a::builtin_chat_template("alpaca"), a2a::Error);
}

TEST_CASE("signal spans: completed spans carry the states before each token", "[generation]") {
  A2A_REQUIRE_FIXTURE("llama_causal_lm/model.safetensors");
  torch::NoGradGuard no_grad;
  auto model = a2a::load_llama(a2a::test::fixture_path("llama_causal_lm")).model;
  auto ids = a2a::load_safetensors(a2a::test::fixture_path("llama_causal_lm/inputs.safetensors")).at("input_ids")[0];
  std::vector<int64_t> prompt(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  auto embeds = model->embed(ids.unsqueeze(0));

  a2a::LlamaGenerateOptions options;
  options.generation.max_new_tokens = 6;
  options.state_layers = {-1};
  auto free_run = a2a::llama_generate(model, embeds, prompt, options);
  REQUIRE(free_run.result.tokens.size() == 6);

  // A token the model chooses itself (and not before) starts a 3-token "image" span, which runs
  // past max_new_tokens.
  const auto& free_tokens = free_run.result.tokens;
  int64_t start = 4;
  while (start > 1 &&
         std::find(free_tokens.begin(), free_tokens.begin() + start, free_tokens[start]) != free_tokens.begin() + start)
    --start;
  REQUIRE(std::find(free_tokens.begin(), free_tokens.begin() + start, free_tokens[start]) ==
          free_tokens.begin() + start);
  const int64_t vocab = model->options().vocab_size;
  a2a::SignalModality image{
      "image", {"[IMG0]", "[IMG1]", "[IMG2]"}, {free_run.result.tokens[start], vocab - 1, vocab - 2}};
  if (image.ids[0] == vocab - 1 || image.ids[0] == vocab - 2) image.ids = {image.ids[0], vocab - 3, vocab - 4};
  std::vector<std::string> warnings;
  a2a::GenerationHooks hooks;
  a2a::install_signal_constraints(hooks, {image}, [&](const std::string& w) { warnings.push_back(w); });
  options.extra_capacity = 3;
  auto run = a2a::llama_generate(model, embeds, prompt, options, hooks);
  const auto& tokens = run.result.tokens;
  REQUIRE(tokens.size() == static_cast<size_t>(std::max<int64_t>(6, start + 3)));
  CHECK(std::vector<int64_t>(tokens.begin() + start, tokens.end()) == image.ids);
  CHECK(warnings.size() == 2);  // the model did not choose the two imposed tokens

  auto signals =
      a2a::extract_signal_outputs({image}, tokens, run.predicting_states, model->model->embed_tokens->weight,
                                  a2a::SignalRepair::Complete, [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(signals.count("image") == 1);
  const auto& out = signals.at("image");
  REQUIRE(out.hidden_states.sizes() == at::IntArrayRef({1, 3, model->options().hidden_size}));
  CHECK_FALSE(out.mask.defined());
  // Shifted one back: the rows are the final states at the positions just before each signal token.
  auto all = prompt;
  all.insert(all.end(), tokens.begin(), tokens.end());
  a2a::LlamaForwardOptions call;
  call.output_hidden_states = true;
  auto fresh = model->forward_ids(at::tensor(all, at::kLong).unsqueeze(0), call);
  const int64_t first_state = static_cast<int64_t>(prompt.size()) + start - 1;
  A2A_CHECK_CLOSE(out.hidden_states[0], fresh.hidden_states.back()[0].narrow(0, first_state, 3), 1e-5);
  A2A_CHECK_CLOSE(out.input_embeds[0], model->embed(at::tensor(image.ids, at::kLong)), 0.0);
}

TEST_CASE("signal spans: partial and garbled spans are padded, cut or dropped with a warning", "[generation]") {
  const int64_t hidden = 3;
  a2a::SignalModality image{"image", {"[IMG0]", "[IMG1]", "[IMG2]"}, {10, 11, 12}};
  a2a::SignalModality audio{"audio", {"[AUD0]", "[AUD1]"}, {20, 21}};
  auto embedding = at::arange(30 * hidden, at::kFloat).reshape({30, hidden});
  std::vector<int64_t> generated = {1, 10, 11, 5, 10, 11, 12, 7};  // a partial image span, then a complete one
  auto states = at::arange(static_cast<int64_t>(generated.size()) * hidden, at::kFloat).reshape({-1, hidden});
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };

  auto padded = a2a::extract_signal_outputs({image, audio}, generated, states, embedding, a2a::SignalRepair::Pad, warn);
  CHECK(padded.count("audio") == 0);  // never emitted: absent
  REQUIRE(padded.count("image") == 1);
  const auto& p = padded.at("image");
  REQUIRE(p.hidden_states.sizes() == at::IntArrayRef({2, 3, hidden}));
  A2A_CHECK_CLOSE(p.hidden_states[0].narrow(0, 0, 2), states.narrow(0, 1, 2), 0.0);
  CHECK(p.hidden_states[0][2].abs().sum().item<float>() == 0.0f);
  A2A_CHECK_CLOSE(p.hidden_states[1], states.narrow(0, 4, 3), 0.0);
  CHECK(values(p.mask.reshape({-1})) == std::vector<float>{1, 1, 0, 1, 1, 1});
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("partial") != std::string::npos);

  warnings.clear();
  auto dropped = a2a::extract_signal_outputs({image}, generated, states, embedding, a2a::SignalRepair::Drop, warn);
  REQUIRE(dropped.at("image").hidden_states.size(0) == 1);
  CHECK_FALSE(dropped.at("image").mask.defined());
  CHECK(warnings.size() == 1);

  // Too long and out of order: cut to K rows.
  warnings.clear();
  std::vector<int64_t> garbled = {10, 12, 11, 11, 4};
  auto cut =
      a2a::extract_signal_outputs({image}, garbled, states.narrow(0, 0, 5), embedding, a2a::SignalRepair::Pad, warn);
  REQUIRE(cut.at("image").hidden_states.sizes() == at::IntArrayRef({1, 3, hidden}));
  CHECK(warnings.size() == 1);
  CHECK(warnings[0].find("cut") != std::string::npos);

  // Nothing emitted at all: no outputs, no warnings.
  warnings.clear();
  CHECK(a2a::extract_signal_outputs({image, audio}, {1, 2, 3}, states.narrow(0, 0, 3), embedding,
                                    a2a::SignalRepair::Pad, warn)
            .empty());
  CHECK(warnings.empty());
}
