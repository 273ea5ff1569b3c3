// UNet3DConditionModel (ModelScope text-to-video): parity with diffusers 0.29.2, the real 1.7B layouts of
// the UNet and its CLIP text encoder, the temporal layers on their own, and configuration errors.
#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "base/error.h"
#include "diffusion/unet3d_condition.h"
#include "encoders/clip_text_model.h"
#include "test_support.h"
#include "weights/config_reader.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

const char* const kUNet3DFixture = "unet3d_condition";

std::string unet3d_build_error(const nlohmann::json& config) {
  try {
    UNet3DConditionModel model(UNet3DConditionOptions::from_config(ConfigReader(config, "test config")));
  } catch (const Error& e) {
    return e.code() + ": " + e.message();
  }
  return "";
}

test::ShapeMap unet3d_parameter_shapes(torch::nn::Module& module) {
  test::ShapeMap out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().sizes().vec();
  return out;
}

}  // namespace

TEST_CASE("UNet3DConditionModel matches diffusers on the fixture", "[unet3d]") {
  A2A_REQUIRE_FIXTURE(std::string(kUNet3DFixture) + "/meta.json");
  const std::string dir = test::fixture_path(kUNet3DFixture);
  const auto meta = test::read_json(dir + "/meta.json");
  UNet3DConditionModel model = load_unet3d_condition(dir, "");
  CHECK(module_state(*model).size() == meta.at("state_dict_keys").get<size_t>());
  int64_t parameter_count = 0;
  for (const auto& p : model->parameters()) parameter_count += p.numel();
  CHECK(parameter_count == meta.at("num_parameters").get<int64_t>());

  const auto inputs = load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = load_safetensors(dir + "/outputs.safetensors");
  torch::NoGradGuard no_grad;
  for (const auto& call : meta.at("calls")) {
    REQUIRE(call.at("method") == "forward");
    const auto& args = call.at("args");
    const at::Tensor sample = inputs.at(args.at("sample").get<std::string>());
    const at::Tensor timestep = inputs.at(args.at("timestep").get<std::string>());
    const at::Tensor context = inputs.at(args.at("encoder_hidden_states").get<std::string>());
    const at::Tensor result = model(sample, timestep, context);
    for (const auto& [tensor_name, field] : call.at("outputs").items()) {
      const at::Tensor& expected = outputs.at(tensor_name);
      std::cout << "unet3d " << tensor_name << ": max abs diff " << (result - expected).abs().max().item<double>()
                << ", scaled " << test::scaled_error(result, expected) << " (bound 1e-4)" << std::endl;
      A2A_CHECK_CLOSE(result, expected, 1e-4);
    }
    // Two copies in one batch: the frame folding keeps every sample apart.
    const at::Tensor doubled = model(at::cat({sample, sample}), timestep, at::cat({context, context}));
    const at::Tensor& expected = outputs.at(call.at("outputs").begin().key());
    A2A_CHECK_CLOSE(doubled.narrow(0, 0, sample.size(0)), expected, 1e-4);
    A2A_CHECK_CLOSE(doubled.narrow(0, sample.size(0), sample.size(0)), expected, 1e-4);
  }
}

TEST_CASE("UNet3DConditionModel forwards the upsample size for odd latents", "[unet3d]") {
  A2A_REQUIRE_FIXTURE(std::string(kUNet3DFixture) + "/config.json");
  const std::string dir = test::fixture_path(kUNet3DFixture);
  const auto options = UNet3DConditionOptions::from_file(dir + "/config.json");
  UNet3DConditionModel model(options);
  torch::NoGradGuard no_grad;
  const int64_t frames = 3, height = 11, width = 13;
  const at::Tensor sample = torch::randn({1, options.in_channels, frames, height, width});
  const at::Tensor context = torch::randn({1, 5, *options.cross_attention_dim});
  const at::Tensor out = model(sample, torch::tensor(10), context);
  CHECK(out.sizes() == at::IntArrayRef{1, options.out_channels, frames, height, width});
  CHECK(out.isfinite().all().item<bool>());
}

TEST_CASE("TemporalConvLayer starts as the identity and mixes frames only per pixel", "[unet3d]") {
  torch::NoGradGuard no_grad;
  TemporalConvLayer layer(8, 8, 0.1, 4);
  layer->eval();
  const int64_t frames = 3;
  const at::Tensor x = torch::randn({2 * frames, 8, 5, 4});
  CHECK(torch::equal(layer(x, frames), x));
  for (auto& p : layer->parameters()) p.normal_(0, 0.3);
  const at::Tensor y = layer(x, frames);
  REQUIRE(y.sizes() == x.sizes());
  // The second video does not affect the first.
  at::Tensor x2 = x.clone();
  x2.narrow(0, frames, frames).normal_();
  CHECK(torch::allclose(layer(x2, frames).narrow(0, 0, frames), y.narrow(0, 0, frames)));
  CHECK_THROWS_AS(layer(x.narrow(0, 0, 4), frames), Error);
}

TEST_CASE("TransformerTemporalModel attends along the frames of each video", "[unet3d]") {
  torch::NoGradGuard no_grad;
  TransformerTemporalModelOptions o;
  o.num_attention_heads = 2;
  o.attention_head_dim = 4;
  o.in_channels = 8;
  o.norm_num_groups = 4;
  TransformerTemporalModel model(o);
  model->eval();
  const auto shapes = unet3d_parameter_shapes(*model);
  CHECK(shapes.at("proj_in.weight") == std::vector<int64_t>{8, 8});
  CHECK(shapes.count("transformer_blocks.0.attn2.to_k.weight") == 1);  // double self-attention
  CHECK(shapes.at("transformer_blocks.0.attn2.to_k.weight") == std::vector<int64_t>{8, 8});
  const int64_t frames = 4;
  const at::Tensor x = torch::randn({2 * frames, 8, 3, 2});
  const at::Tensor y = model(x, frames);
  REQUIRE(y.sizes() == x.sizes());
  at::Tensor x2 = x.clone();
  x2.narrow(0, 0, frames).normal_();
  CHECK(torch::allclose(model(x2, frames).narrow(0, frames, frames), y.narrow(0, frames, frames)));
}

TEST_CASE("UNet3DConditionModel builds text-to-video-ms-1.7b's real layout", "[unet3d]") {
  const std::string config_file = "hf_layouts/text-to-video-ms-1.7b/unet/config.json";
  const std::string keys_file = "keys/ms17b_unet3d.txt";
  A2A_REQUIRE_FIXTURE(config_file);
  A2A_REQUIRE_FIXTURE(keys_file);
  const auto started = std::chrono::steady_clock::now();
  UNet3DConditionModel model(UNet3DConditionOptions::from_file(test::fixture_path(config_file)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto ours = unet3d_parameter_shapes(*model);
  const auto ref = test::read_key_list(test::fixture_path(keys_file), "param");
  CHECK(test::first_difference(ours, ref) == "");
  CHECK(ours.size() == ref.size());
  CHECK(model->named_buffers().size() == test::read_key_list(test::fixture_path(keys_file), "buffer").size());
  std::cout << "text-to-video-ms-1.7b UNet3D: " << ours.size() << " tensors, built in " << seconds << " s" << std::endl;
}

TEST_CASE("CLIP text encoder builds text-to-video-ms-1.7b's real layout", "[unet3d]") {
  const std::string config_file = "hf_layouts/text-to-video-ms-1.7b/text_encoder/config.json";
  const std::string keys_file = "keys/ms17b_text_encoder.txt";
  A2A_REQUIRE_FIXTURE(config_file);
  A2A_REQUIRE_FIXTURE(keys_file);
  CLIPTextModel model(CLIPTextConfig::from_config(ConfigReader::from_file(test::fixture_path(config_file))));
  const auto ours = unet3d_parameter_shapes(*model);
  const auto ref = test::read_key_list(test::fixture_path(keys_file), "param");
  CHECK(test::first_difference(ours, ref) == "");
  CHECK(ours.size() == ref.size());
}

TEST_CASE("UNet3DConditionModel refuses bad configurations with codes", "[unet3d]") {
  A2A_REQUIRE_FIXTURE(std::string(kUNet3DFixture) + "/config.json");
  const auto base = test::read_json(test::fixture_path(std::string(kUNet3DFixture) + "/config.json"));
  CHECK(unet3d_build_error(base) == "");
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    auto c = base;
    c[key] = value;
    return unet3d_build_error(c);
  };
  CHECK(with("num_attention_heads", 8).rfind("unsupported_model_config:", 0) == 0);
  CHECK(with("attention_head_dim", nlohmann::json::array({4, 4, 4, 4})).rfind("unsupported_model_config:", 0) == 0);
  CHECK(with("attention_head_dim", 3).find("not divisible by attention_head_dim 3") != std::string::npos);
  CHECK(with("down_block_types", nlohmann::json::array({"CrossAttnDownBlock2D", "CrossAttnDownBlock3D",
                                                        "CrossAttnDownBlock3D", "DownBlock3D"}))
            .find("'CrossAttnDownBlock2D' is not supported") != std::string::npos);
  CHECK(with("up_block_types", nlohmann::json::array({"UpBlock3D"})).rfind("unsupported_model_config:", 0) == 0);
  CHECK(with("norm_num_groups", nullptr).rfind("unsupported_model_config:", 0) == 0);
  CHECK(with("cross_attention_dim", nullptr).rfind("unsupported_model_config:", 0) == 0);
  CHECK(with("act_fn", "tanh").rfind("unsupported_model_config:", 0) == 0);
  CHECK(with("layers_per_block", "two").rfind("bad_config:", 0) == 0);
  CHECK(with("block_out_channels", 32).rfind("bad_config:", 0) == 0);
  CHECK(with("_class_name", "UNet2DConditionModel").rfind("bad_config:", 0) == 0);
}

TEST_CASE("UNet3DConditionModel options: defaults are the constructor's", "[unet3d]") {
  const auto o = UNet3DConditionOptions::from_config(ConfigReader(nlohmann::json::object(), "empty"));
  CHECK(o.block_out_channels == std::vector<int64_t>{320, 640, 1280, 1280});
  CHECK(o.layers_per_block == 2);
  CHECK(o.cross_attention_dim == 1024);
  CHECK(o.attention_head_dim == 64);
  CHECK(o.norm_num_groups == 32);
  CHECK(!o.num_attention_heads);
  CHECK(o.problems().empty());
}
