// T5 / UMT5 text encoders: parity with transformers' T5EncoderModel and UMT5EncoderModel, the relative
// position buckets, the checkpoint key layout, folder and sharded loading, and the error paths.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "base/error.h"
#include "encoders/t5_encoder_model.h"
#include "test_support.h"
#include "weights/config_reader.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

struct T5Fixture {
  std::string dir;
  T5EncoderConfig config;
  TensorMap weights, inputs, outputs;
  nlohmann::json meta;
};

T5Fixture load_t5_fixture(const std::string& name) {
  T5Fixture f;
  f.dir = test::fixture_path(name);
  f.config = T5EncoderConfig::from_config(ConfigReader::from_file(f.dir + "/config.json"));
  f.meta = test::read_json(f.dir + "/meta.json");
  f.weights = load_safetensors(f.dir + "/model.safetensors");
  f.inputs = load_safetensors(f.dir + "/inputs.safetensors");
  f.outputs = load_safetensors(f.dir + "/outputs.safetensors");
  return f;
}

T5EncoderModel t5_model_from(const T5Fixture& f, const TensorMap& weights) {
  T5EncoderModel model(f.config);
  load_state_dict(*model, weights, t5_encoder_load_options(f.dir));
  model->eval();
  return model;
}

const nlohmann::json& t5_call(const T5Fixture& f, const std::string& method_suffix) {
  for (const auto& call : f.meta.at("calls")) {
    const std::string method = call.at("method").get<std::string>();
    if (method.size() >= method_suffix.size() &&
        method.compare(method.size() - method_suffix.size(), method_suffix.size(), method_suffix) == 0)
      return call;
  }
  FAIL("meta.json has no call " << method_suffix);
  throw std::logic_error("unreachable");
}

// Both bounds: the README's max|ours − ref| ≤ 1e-4·max(1, max|ref|), and meta.json's suggested
// |ours − ref| ≤ atol + rtol·|ref| element by element.
void check_t5_output(const T5Fixture& f, const std::string& name, const at::Tensor& ours) {
  INFO(f.meta["fixture"].get<std::string>() << " " << name);
  const at::Tensor& ref = f.outputs.at(name);
  REQUIRE(ours.sizes() == ref.sizes());
  const auto& tol = f.meta.at("tolerance").at(name);
  const double atol = tol.at("suggested_atol").get<double>(), rtol = tol.at("suggested_rtol").get<double>();
  auto diff = (ours.to(at::kDouble) - ref.to(at::kDouble)).abs();
  const double max_abs = diff.max().item<double>();
  std::cout << f.meta["fixture"].get<std::string>() << " " << name << ": max abs diff " << max_abs << " (atol " << atol
            << ", scaled error " << test::scaled_error(ours, ref) << ")" << std::endl;
  CHECK((diff <= atol + rtol * ref.to(at::kDouble).abs()).all().item<bool>());
  A2A_CHECK_CLOSE(ours, ref, 1e-4);
}

void check_t5_parity(const std::string& name) {
  torch::NoGradGuard no_grad;
  auto f = load_t5_fixture(name);
  auto model = t5_model_from(f, f.weights);
  const auto& call = t5_call(f, "forward");
  const auto& input_ids = f.inputs.at(call["args"]["input_ids"].get<std::string>());
  const auto& mask = f.inputs.at(call["args"]["attention_mask"].get<std::string>());
  REQUIRE((mask == 0).any().item<bool>());  // the padded rows and keys are exercised
  auto out = model->forward(input_ids, mask, call["kwargs"].value("output_hidden_states", false));
  REQUIRE(out.hidden_states.size() == static_cast<size_t>(f.config.num_layers + 1));
  for (const auto& kv : call["outputs"].items()) {
    const std::string& output = kv.key();
    if (output == "last_hidden_state") {
      check_t5_output(f, output, out.last_hidden_state);
    } else {
      REQUIRE(output.rfind("hidden_states_", 0) == 0);
      const size_t index = std::stoul(output.substr(std::string("hidden_states_").size()));
      REQUIRE(index < out.hidden_states.size());
      check_t5_output(f, output, out.hidden_states[index]);
    }
  }
}

void check_t5_buckets(const std::string& name) {
  auto f = load_t5_fixture(name);
  const auto& call = t5_call(f, "_relative_position_bucket");
  const auto& kwargs = call.at("kwargs");
  const bool bidirectional = kwargs.value("bidirectional", true);
  const int64_t buckets = kwargs.value("num_buckets", f.config.relative_attention_num_buckets);
  const int64_t max_distance = kwargs.value("max_distance", f.config.relative_attention_max_distance);
  const auto& relative = f.inputs.at(call["args"]["relative_position"].get<std::string>());
  // The fixture reaches past max_distance, so the clamp to the last bucket is exercised.
  REQUIRE(relative.abs().max().item<int64_t>() >= max_distance);
  auto ours = t5_relative_position_bucket(relative, bidirectional, buckets, max_distance);
  const auto& ref = f.outputs.at("relative_position_bucket");
  REQUIRE(ours.sizes() == ref.sizes());
  CHECK(ours.scalar_type() == at::kLong);
  const int64_t mismatches = (ours != ref).sum().item<int64_t>();
  std::cout << name << " relative_position_bucket: " << mismatches << " of " << ref.numel() << " differ" << std::endl;
  CHECK(mismatches == 0);
}

test::ShapeMap t5_shapes(const TensorMap& tensors) {
  test::ShapeMap out;
  for (const auto& kv : tensors) out[kv.first] = kv.second.sizes().vec();
  return out;
}

void check_t5_keys(const std::string& name) {
  auto f = load_t5_fixture(name);
  T5EncoderModel model(f.config);
  auto ours = t5_shapes(module_state(*model));
  auto ref = t5_shapes(f.weights);
  CHECK(test::first_difference(ours, ref) == "");
  CHECK(ours.size() == ref.size());
  // The reference's state_dict also lists the tied encoder.embed_tokens.weight.
  CHECK(static_cast<int64_t>(ours.size()) + 1 == f.meta.at("state_dict_keys").get<int64_t>());
  int64_t biases = 0;
  for (const auto& kv : ours) biases += kv.first.find("relative_attention_bias") != std::string::npos;
  CHECK(biases == (f.config.bias_in_every_block() ? f.config.num_layers : 1));
}

const char* const kT5Fixture = "t5_encoder";
const char* const kUMT5Fixture = "umt5_encoder";

}  // namespace

TEST_CASE("T5EncoderModel matches transformers on the t5_encoder fixture", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kT5Fixture) + "/model.safetensors");
  check_t5_parity(kT5Fixture);
}

TEST_CASE("UMT5EncoderModel matches transformers on the umt5_encoder fixture", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kUMT5Fixture) + "/model.safetensors");
  check_t5_parity(kUMT5Fixture);
}

TEST_CASE("T5 relative position buckets equal the reference's (t5_encoder)", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kT5Fixture) + "/outputs.safetensors");
  check_t5_buckets(kT5Fixture);
}

TEST_CASE("T5 relative position buckets equal the reference's (umt5_encoder)", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kUMT5Fixture) + "/outputs.safetensors");
  check_t5_buckets(kUMT5Fixture);
}

TEST_CASE("T5 encoder built from the t5_encoder config has the checkpoint's keys", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kT5Fixture) + "/model.safetensors");
  check_t5_keys(kT5Fixture);
}

TEST_CASE("T5 encoder built from the umt5_encoder config has the checkpoint's keys", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kUMT5Fixture) + "/model.safetensors");
  check_t5_keys(kUMT5Fixture);
}

TEST_CASE("T5 decoder-direction buckets follow the reference's formula", "[t5]") {
  // Unidirectional, 32 buckets, max_distance 128: n = max(−rel, 0); exact below 16, then
  // 16 + int(log(n / 16) / log(8) · 16), clamped at 31. By hand: 17 -> 16.47, 40 -> 23.05, 127 -> 31.94.
  auto rel = torch::tensor({3, 0, -1, -15, -16, -17, -40, -127, -128, -1000}, torch::kLong);
  auto ours = t5_relative_position_bucket(rel, /*bidirectional=*/false, 32, 128);
  CHECK(torch::equal(ours, torch::tensor({0, 0, 1, 15, 16, 16, 23, 31, 31, 31}, torch::kLong)));
  // Bidirectional (16 per sign, 8 exact, log(n / 8) / log(16) · 8 above): positive offsets take the upper half.
  auto both = t5_relative_position_bucket(torch::tensor({-3, 3, 40, -40}, torch::kLong), true, 32, 128);
  CHECK(torch::equal(both, torch::tensor({3, 19, 28, 12}, torch::kLong)));  // 40: 8 + int(4.64)
}

namespace {

void expect_t5_error(const std::function<void()>& fn, const std::string& code, const std::string& mentions) {
  try {
    fn();
    FAIL("no error; expected " << code);
  } catch (const a2a::Error& e) {
    INFO(e.message());
    CHECK(e.code() == code);
    CHECK(e.message().find(mentions) != std::string::npos);
  }
}

nlohmann::json tiny_t5_json() {
  return {{"model_type", "t5"},
          {"vocab_size", 16},
          {"d_model", 8},
          {"d_kv", 4},
          {"d_ff", 12},
          {"num_layers", 2},
          {"num_heads", 3},
          {"feed_forward_proj", "relu"},
          {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16}};
}

}  // namespace

TEST_CASE("T5 config derives the feed-forward variant from feed_forward_proj", "[t5]") {
  auto with = [](nlohmann::json changes) {
    auto j = tiny_t5_json();
    j.update(changes);
    return T5EncoderConfig::from_json(j);
  };
  auto relu = with(nlohmann::json::object());
  CHECK(relu.dense_act_fn == "relu");
  CHECK_FALSE(relu.is_gated_act);
  auto gelu = with({{"feed_forward_proj", "gated-gelu"}});
  CHECK(gelu.dense_act_fn == "gelu_new");  // the reference's backward-compatible reading
  CHECK(gelu.is_gated_act);
  auto silu = with({{"feed_forward_proj", "gated-silu"}});
  CHECK(silu.dense_act_fn == "silu");
  CHECK(silu.is_gated_act);
  // Explicit values in config.json win over the derived ones.
  auto explicit_act = with({{"feed_forward_proj", "gated-gelu"}, {"dense_act_fn", "gelu"}});
  CHECK(explicit_act.dense_act_fn == "gelu");
  // Absent keys keep the defaults of the family's own config class.
  auto umt5 = T5EncoderConfig::from_json({{"model_type", "umt5"}});
  CHECK(umt5.vocab_size == 250112);
  CHECK(umt5.num_heads == 6);
  CHECK(umt5.is_gated_act);
  CHECK(umt5.dense_act_fn == "gelu_new");
  CHECK(umt5.bias_in_every_block());
  auto t5 = T5EncoderConfig::from_json(nlohmann::json::object());
  CHECK(t5.vocab_size == 32128);
  CHECK(t5.dense_act_fn == "relu");
  CHECK_FALSE(t5.bias_in_every_block());

  // Non-gated layers hold wi and wo; gated ones wi_0, wi_1 and wo.
  T5EncoderModel relu_model(relu);
  auto keys = module_state(*relu_model);
  CHECK(keys.count("encoder.block.1.layer.1.DenseReluDense.wi.weight") == 1);
  CHECK(keys.count("encoder.block.1.layer.1.DenseReluDense.wi_0.weight") == 0);
  CHECK(keys.count("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight") == 0);
  CHECK(keys.at("encoder.block.0.layer.0.SelfAttention.q.weight").sizes() == at::IntArrayRef({12, 8}));
  CHECK(keys.at("encoder.block.0.layer.0.SelfAttention.o.weight").sizes() == at::IntArrayRef({8, 12}));
  CHECK(keys.at("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight").sizes() ==
        at::IntArrayRef({8, 3}));
}

TEST_CASE("T5 relu feed-forward is wo(relu(wi x)) and T5 reuses block 0's bias", "[t5]") {
  torch::NoGradGuard no_grad;
  auto config = T5EncoderConfig::from_json(tiny_t5_json());
  T5EncoderModel model(config);
  torch::manual_seed(7);
  for (auto& p : model->parameters()) p.normal_(0, 0.5);
  auto& ff = *model->encoder->block->at<T5BlockImpl>(1).layer->at<T5LayerFFImpl>(1).DenseReluDense;
  auto x = torch::randn({2, 5, config.d_model});
  A2A_CHECK_CLOSE(ff.forward(x), torch::matmul(torch::relu(torch::matmul(x, ff.wi->weight.t())), ff.wo->weight.t()),
                  1e-6);

  // Block 1 of T5 has no table: its bias is block 0's, so a run where block 1 computed a zero bias
  // instead would differ. Recompute the stack by hand with block 0's bias passed on.
  auto ids = torch::randint(0, config.vocab_size, {2, 6}, torch::kLong);
  auto mask = torch::ones({2, 6}, torch::kLong);
  mask[1].slice(0, 4).fill_(0);
  auto out = model->forward(ids, mask, true);
  auto& stack = *model->encoder;
  auto bias = stack.block->at<T5BlockImpl>(0).self_attention().SelfAttention->compute_bias(6, 6);
  bias = bias + (1.0 - mask.to(torch::kFloat).view({2, 1, 1, 6})) * std::numeric_limits<float>::lowest();
  auto h = model->shared(ids);
  for (size_t i = 0; i < stack.block->size(); ++i) h = stack.block->at<T5BlockImpl>(i).forward(h, bias);
  A2A_CHECK_CLOSE(out.last_hidden_state, stack.final_layer_norm(h), 1e-6);
  A2A_CHECK_CLOSE(out.hidden_states.back(), out.last_hidden_state, 0.0);
  A2A_CHECK_CLOSE(out.hidden_states.front(), model->shared(ids), 0.0);
  // Without a mask every key counts: the same as an all-ones mask.
  A2A_CHECK_CLOSE(model->forward(ids).last_hidden_state, model->forward(ids, torch::ones_like(ids)).last_hidden_state,
                  0.0);
}

TEST_CASE("T5 config rejects bad values by name", "[t5]") {
  auto bad = [](nlohmann::json changes, const std::string& code, const std::string& mentions) {
    auto j = tiny_t5_json();
    j.update(changes);
    expect_t5_error([&] { T5EncoderConfig::from_json(j); }, code, mentions);
  };
  bad({{"num_heads", 0}}, "bad_config", "num_heads");
  bad({{"d_kv", -1}}, "bad_config", "d_kv");
  bad({{"num_layers", 0}}, "bad_config", "num_layers");
  bad({{"vocab_size", 0}}, "bad_config", "vocab_size");
  bad({{"feed_forward_proj", "gelu-gated"}}, "bad_config", "feed_forward_proj");
  bad({{"feed_forward_proj", "gated-relu-x"}}, "bad_config", "feed_forward_proj");
  bad({{"feed_forward_proj", "gated-swishy"}}, "bad_config", "swishy");
  bad({{"dense_act_fn", "tanhish"}}, "bad_config", "dense_act_fn");
  bad({{"relative_attention_num_buckets", 2}}, "bad_config", "relative_attention_num_buckets");
  bad({{"relative_attention_max_distance", 2}}, "bad_config", "relative_attention_max_distance");
  bad({{"layer_norm_epsilon", -1.0}}, "bad_config", "layer_norm_epsilon");
  bad({{"model_type", "bart"}}, "unsupported_model_config", "bart");
  bad({{"num_heads", "four"}}, "bad_config", "num_heads");
}

TEST_CASE("T5 encoder rejects bad inputs", "[t5]") {
  T5EncoderModel model(T5EncoderConfig::from_json(tiny_t5_json()));
  auto ids = torch::zeros({1, 4}, torch::kLong);
  expect_t5_error([&] { model->forward(torch::full({1, 4}, 16, torch::kLong)); }, "token_out_of_range", "16");
  expect_t5_error([&] { model->forward(torch::zeros({4}, torch::kLong)); }, "bad_shape", "input_ids");
  expect_t5_error([&] { model->forward(torch::zeros({1, 4})); }, "bad_dtype", "input_ids");
  expect_t5_error([&] { model->forward(ids, torch::ones({1, 5}, torch::kLong)); }, "bad_shape", "attention_mask");
}

TEST_CASE("T5 encoder names missing, mis-shaped and unexpected tensors", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kUMT5Fixture) + "/model.safetensors");
  auto f = load_t5_fixture(kUMT5Fixture);
  auto load = [&](const TensorMap& weights) { t5_model_from(f, weights); };

  const std::string wo = "encoder.block.1.layer.1.DenseReluDense.wo.weight";
  TensorMap missing = f.weights;
  missing.erase(wo);
  expect_t5_error([&] { load(missing); }, "weights_mismatch", wo);

  const std::string q = "encoder.block.0.layer.0.SelfAttention.q.weight";
  TensorMap misshaped = f.weights;
  misshaped[q] = torch::zeros({f.config.inner_dim() + 1, f.config.d_model});
  expect_t5_error([&] { load(misshaped); }, "weights_mismatch", q);

  const std::string extra = "encoder.block.0.layer.2.layer_norm.weight";
  TensorMap unexpected = f.weights;
  unexpected[extra] = torch::ones({f.config.d_model});
  expect_t5_error([&] { load(unexpected); }, "weights_mismatch", extra);

  TensorMap no_embedding = f.weights;
  no_embedding.erase("shared.weight");
  expect_t5_error([&] { load(no_embedding); }, "weights_mismatch", "shared.weight");

  TensorMap clash = f.weights;
  clash["encoder.embed_tokens.weight"] = torch::zeros({f.config.vocab_size + 1, f.config.d_model});
  expect_t5_error([&] { load(clash); }, "weights_conversion", "encoder.embed_tokens.weight");
}

TEST_CASE("T5 encoder accepts either tied embedding key and a full seq2seq checkpoint", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kT5Fixture) + "/model.safetensors");
  torch::NoGradGuard no_grad;
  auto f = load_t5_fixture(kT5Fixture);
  const auto& call = t5_call(f, "forward");
  const auto& ids = f.inputs.at(call["args"]["input_ids"].get<std::string>());
  const auto& mask = f.inputs.at(call["args"]["attention_mask"].get<std::string>());
  const auto reference = t5_model_from(f, f.weights)->forward(ids, mask).last_hidden_state;

  TensorMap renamed = f.weights;
  renamed["encoder.embed_tokens.weight"] = renamed.at("shared.weight");
  TensorMap both = renamed;
  renamed.erase("shared.weight");
  TensorMap seq2seq = both;
  seq2seq["decoder.block.0.layer.0.SelfAttention.q.weight"] = torch::zeros({4, 4});
  seq2seq["decoder.embed_tokens.weight"] = renamed.at("encoder.embed_tokens.weight");
  seq2seq["lm_head.weight"] = torch::zeros({f.config.vocab_size, f.config.d_model});
  for (const TensorMap* weights : {&renamed, &both, &seq2seq}) {
    auto out = t5_model_from(f, *weights)->forward(ids, mask).last_hidden_state;
    CHECK(torch::equal(out, reference));
  }
}

TEST_CASE("load_t5_encoder reads a model folder and its sharded copy", "[t5]") {
  A2A_REQUIRE_FIXTURE(std::string(kUMT5Fixture) + "/model.safetensors");
  torch::NoGradGuard no_grad;
  auto f = load_t5_fixture(kUMT5Fixture);
  const auto& call = t5_call(f, "forward");
  const auto& ids = f.inputs.at(call["args"]["input_ids"].get<std::string>());
  const auto& mask = f.inputs.at(call["args"]["attention_mask"].get<std::string>());

  auto single = load_t5_encoder(f.dir);
  CHECK(single->config().model_type == "umt5");
  CHECK_FALSE(single->is_training());
  const auto out = single->forward(ids, mask).last_hidden_state;
  A2A_CHECK_CLOSE(out, f.outputs.at("last_hidden_state"), 1e-4);

  namespace fs = std::filesystem;
  const fs::path folder = test::fresh_dir("t5_sharded");
  fs::copy_file(f.dir + "/config.json", folder / "config.json");
  const auto checkpoint = SafeTensorsCheckpoint::open(f.dir + "/model.safetensors");
  save_safetensors_sharded(folder.string(), "model", checkpoint->tensors(), checkpoint->data_bytes() / 2,
                           {{"format", "pt"}});
  REQUIRE(fs::exists(folder / "model.safetensors.index.json"));
  REQUIRE_FALSE(fs::exists(folder / "model.safetensors"));
  auto sharded = load_t5_encoder(folder.string());
  CHECK(torch::equal(sharded->forward(ids, mask).last_hidden_state, out));

  expect_t5_error([&] { load_t5_encoder((folder / "absent").string()); }, "missing_model", "absent");
}
