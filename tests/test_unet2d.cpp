#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "diffusion/unet2d_condition.h"
#include "test_support.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace {

using a2a::UNet2DConditionModel;
using a2a::UNet2DConditionOptions;

std::string unet_variant_dir(const std::string& name) {
  return std::string(A2A_SOURCE_DIR) + "/tests/data/variants/" + name;
}

// Loads a diffusers UNet fixture folder and replays every recorded call.
void check_unet_fixture(const std::string& dir) {
  INFO("fixture " << dir);
  const std::string folder = dir.substr(dir.find_last_of('/') + 1);
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  UNet2DConditionModel model(UNet2DConditionOptions::from_file(dir + "/config.json"));
  a2a::LoadOptions load_options;
  load_options.source = dir;
  auto report =
      a2a::load_state_dict(*model, a2a::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"), load_options);
  REQUIRE(report.ok());
  CHECK(report.loaded == meta.at("state_dict_keys").get<size_t>());
  int64_t parameter_count = 0;
  for (const auto& p : model->parameters()) parameter_count += p.numel();
  CHECK(parameter_count == meta.at("num_parameters").get<int64_t>());

  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  torch::NoGradGuard no_grad;
  for (const auto& call : meta.at("calls")) {
    REQUIRE(call.at("method") == "forward");
    auto argument = [&](const std::string& name) -> at::Tensor {
      if (call.at("args").contains(name)) return inputs.at(call.at("args").at(name).get<std::string>());
      if (call.contains("kwargs") && call.at("kwargs").contains(name)) {
        REQUIRE(call.at("kwargs").at(name).is_null());  // only None is recorded as a literal tensor argument
      }
      return {};
    };
    at::Tensor result = model->forward(argument("sample"), argument("timestep"), argument("encoder_hidden_states"),
                                       argument("class_labels"));
    for (const auto& [tensor_name, field] : call.at("outputs").items()) {
      REQUIRE(field == "out.sample");
      const at::Tensor& expected = outputs.at(tensor_name);
      const double error = a2a::test::scaled_error(result, expected);
      std::cout << folder << " " << tensor_name << ": scaled max abs error " << error << std::endl;
      A2A_CHECK_CLOSE(result, expected, 1e-4);
    }
  }
}

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < sizes.size(); ++i) os << (i ? ", " : "") << sizes[i];
  os << "]";
  return os.str();
}

// Builds the UNet of a real pipeline from its config.json and compares every parameter name and shape
// with the reference key list (no missing, no extra).
void check_real_layout(const std::string& config, const std::string& key_list) {
  A2A_REQUIRE_FIXTURE(config);
  A2A_REQUIRE_FIXTURE(key_list);
  std::map<std::string, std::string> expected;
  std::ifstream in(a2a::test::fixture_path(key_list));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, shape, kind;
    std::getline(fields, name, '\t');
    std::getline(fields, shape, '\t');
    std::getline(fields, kind, '\t');
    if (!name.empty()) expected[name] = shape;
  }
  REQUIRE(!expected.empty());

  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  UNet2DConditionModel model(UNet2DConditionOptions::from_file(a2a::test::fixture_path(config)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::map<std::string, std::string> ours;
  int64_t count = 0;
  for (const auto& kv : a2a::module_state(*model)) {
    ours[kv.first] = shape_string(kv.second.sizes());
    count += kv.second.numel();
  }
  std::cout << config << ": " << ours.size() << " tensors, " << count << " parameters, built in " << seconds << " s"
            << std::endl;
  std::vector<std::string> missing, extra, mismatched;
  for (const auto& [name, shape] : expected) {
    auto it = ours.find(name);
    if (it == ours.end()) {
      missing.push_back(name);
    } else if (it->second != shape) {
      mismatched.push_back(name + ": ours " + it->second + " vs " + shape);
    }
  }
  for (const auto& kv : ours) {
    if (!expected.count(kv.first)) extra.push_back(kv.first);
  }
  for (const auto& m : missing) UNSCOPED_INFO("missing " << m);
  for (const auto& e : extra) UNSCOPED_INFO("extra " << e);
  for (const auto& m : mismatched) UNSCOPED_INFO("mismatch " << m);
  CHECK(missing.empty());
  CHECK(extra.empty());
  CHECK(mismatched.empty());
}

std::string build_error(const nlohmann::json& config) {
  try {
    UNet2DConditionModel model(UNet2DConditionOptions::from_json(config));
  } catch (const a2a::Error& e) {
    return e.code() + ": " + e.message();
  }
  return "";
}

// Scalar, [B] and Python-number timesteps agree; per-sample timesteps give each row its own result; an odd
// sample size works. Shapes come from the fixture's inputs.
void check_unet_timestep_forms(const std::string& dir) {
  INFO("fixture " << dir);
  UNet2DConditionModel model(UNet2DConditionOptions::from_file(dir + "/config.json"));
  a2a::load_state_dict(*model, a2a::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"));
  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const at::Tensor sample = inputs.at("sample");
  const at::Tensor context = inputs.at("encoder_hidden_states");
  const int64_t batch = sample.size(0);
  torch::NoGradGuard no_grad;
  const int64_t t = inputs.at("timestep").item<int64_t>();
  const at::Tensor scalar = model->forward(sample, at::scalar_tensor(t, at::kLong), context);
  // Same value as a [B] int tensor and as a Python-style number.
  CHECK(torch::equal(scalar, model->forward(sample, at::full({batch}, t, at::kLong), context)));
  CHECK(torch::equal(scalar, model->forward_scalar_timestep(sample, static_cast<double>(t), context)));
  // Per-sample timesteps: each row equals its own single-timestep call (row 0 keeps t).
  at::Tensor per_sample = t / 2 + 1 + at::arange(batch, at::kLong);
  per_sample[0] = t;
  const at::Tensor mixed = model->forward(sample, per_sample, context);
  for (int64_t row = 0; row < batch; ++row) {
    INFO("row " << row);
    const at::Tensor single =
        model->forward(sample.slice(0, row, row + 1), per_sample[row], context.slice(0, row, row + 1));
    CHECK(a2a::test::scaled_error(mixed.slice(0, row, row + 1), single) < 1e-5);
  }
  CHECK(a2a::test::scaled_error(mixed.slice(0, 0, 1), scalar.slice(0, 0, 1)) < 1e-5);
  // A sample size that is not a multiple of 2^num_upsamplers goes through the explicit upsample sizes.
  const at::Tensor odd = sample.slice(2, 0, sample.size(2) - 1).slice(3, 0, sample.size(3) - 1).contiguous();
  CHECK(model->forward(odd, at::scalar_tensor(t, at::kLong), context).sizes() == odd.sizes());
}

// Options this class does not implement are refused with a message naming them; `base` is a fixture's config.
void check_unet_rejections(const nlohmann::json& base) {
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    auto c = base;
    c[key] = value;
    return c;
  };
  const size_t levels = base.at("down_block_types").size();
  CHECK(build_error(base).empty());
  CHECK_THAT(build_error(with("dual_cross_attention", true)), Catch::Contains("dual_cross_attention"));
  CHECK_THAT(build_error(with("addition_embed_type", "text_time")), Catch::Contains("addition_embed_type 'text_time'"));
  CHECK_THAT(build_error(with("num_attention_heads", 4)), Catch::Contains("num_attention_heads"));
  CHECK_THAT(build_error(with("time_embedding_type", "fourier")), Catch::Contains("fourier"));
  CHECK_THAT(build_error(with("class_embed_type", "projection")),
             Catch::Contains("projection_class_embeddings_input_dim"));
  CHECK_THAT(build_error(with("mid_block_type", "UNetMidBlock2DSimpleCrossAttn")),
             Catch::Contains("UNetMidBlock2DSimpleCrossAttn"));
  // One entry more than there are levels.
  CHECK_THAT(build_error(with("attention_head_dim", std::vector<int64_t>(levels + 1, 1))),
             Catch::Contains("attention_head_dim has " + std::to_string(levels + 1) + " entries"));
  CHECK_THAT(build_error(with("cross_attention_dim", "wide")), Catch::Contains("'cross_attention_dim' must be"));
  // Every problem is reported at once.
  auto several = with("dual_cross_attention", true);
  several["up_block_types"] = std::vector<std::string>(levels, "AttnUpBlock2D");
  const std::string message = build_error(several);
  CHECK_THAT(message, Catch::Contains("dual_cross_attention") && Catch::Contains("AttnUpBlock2D"));
}

}  // namespace

TEST_CASE("UNet2DConditionModel matches diffusers (Stable Diffusion layout)", "[unet]") {
  A2A_REQUIRE_FIXTURE("unet2d_condition/meta.json");
  check_unet_fixture(a2a::test::fixture_path("unet2d_condition"));
}

TEST_CASE("UNet2DConditionModel matches diffusers (AudioLDM layout, no text context)", "[unet]") {
  A2A_REQUIRE_FIXTURE("audioldm_unet2d_condition/meta.json");
  check_unet_fixture(a2a::test::fixture_path("audioldm_unet2d_condition"));
}

TEST_CASE("UNet2DConditionModel matches diffusers (three levels, per-block heads, non-square latent)", "[unet]") {
  check_unet_fixture(unet_variant_dir("unet2d_condition_3level"));
}

TEST_CASE("UNet2DConditionModel builds Stable Diffusion 1.5's real layout", "[unet]") {
  check_real_layout("hf_layouts/stable-diffusion-v1-5/unet/config.json", "keys/sd15_unet.txt");
}

TEST_CASE("UNet2DConditionModel builds AudioLDM's real layout", "[unet]") {
  check_real_layout("hf_layouts/audioldm-s-full-v2/unet/config.json", "keys/audioldm_unet.txt");
}

TEST_CASE("UNet2DConditionModel timestep forms agree", "[unet]") {
  A2A_REQUIRE_FIXTURE("unet2d_condition/config.json");
  check_unet_timestep_forms(a2a::test::fixture_path("unet2d_condition"));
}

TEST_CASE("UNet2DConditionModel timestep forms agree (three-level variant)", "[unet]") {
  check_unet_timestep_forms(unet_variant_dir("unet2d_condition_3level"));
}

TEST_CASE("UNet2DConditionModel rejects unsupported configurations clearly", "[unet]") {
  A2A_REQUIRE_FIXTURE("unet2d_condition/config.json");
  check_unet_rejections(a2a::test::read_json(a2a::test::fixture_path("unet2d_condition/config.json")));
}

TEST_CASE("UNet2DConditionModel rejects unsupported configurations clearly (three-level variant)", "[unet]") {
  check_unet_rejections(a2a::test::read_json(unet_variant_dir("unet2d_condition_3level") + "/config.json"));
}

TEST_CASE("UNet2DConditionModel options: SD-2 style lists and defaults", "[unet]") {
  // diffusers' defaults when config.json is empty: SD 1.x widths with 8 heads and 1280-wide context.
  const auto defaults = UNet2DConditionOptions::from_json(nlohmann::json::object());
  CHECK(defaults.block_out_channels == std::vector<int64_t>{320, 640, 1280, 1280});
  CHECK(defaults.attention_head_dim == std::vector<int64_t>{8});
  CHECK(defaults.cross_attention_dim == std::vector<int64_t>{1280});
  CHECK(defaults.mid_block_type == std::optional<std::string>("UNetMidBlock2DCrossAttn"));

  // A tiny SD-2-like model: linear projections, per-block head counts, upcast attention.
  nlohmann::json config = {{"block_out_channels", {8, 16}},
                           {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
                           {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}},
                           {"attention_head_dim", {2, 4}},
                           {"use_linear_projection", true},
                           {"upcast_attention", true},
                           {"norm_num_groups", 4},
                           {"layers_per_block", 1},
                           {"cross_attention_dim", 12},
                           {"sample_size", 8}};
  UNet2DConditionModel model(UNet2DConditionOptions::from_json(config));
  const auto state = a2a::module_state(*model);
  CHECK(state.at("down_blocks.0.attentions.0.proj_in.weight").sizes() == at::IntArrayRef({8, 8}));
  CHECK(state.at("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight").sizes() == at::IntArrayRef({16, 12}));
  CHECK(std::dynamic_pointer_cast<a2a::CrossAttnDownBlock2DImpl>(model->down_blocks->ptr(0))
            ->attentions->ptr<a2a::Transformer2DModelImpl>(0)
            ->blocks[0]
            ->attn1->heads() == 2);
  CHECK(model->mid_block != nullptr);
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  const at::Tensor out = model(torch::randn({2, 4, 8, 8}), at::scalar_tensor(10), torch::randn({2, 3, 12}));
  CHECK(out.sizes() == at::IntArrayRef({2, 4, 8, 8}));
  CHECK(torch::isfinite(out).all().item<bool>());
}
