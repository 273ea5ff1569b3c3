#include <torch/torch.h>

#include <cmath>
#include <complex>
#include <filesystem>

#include "base/error.h"
#include "diffusion/wan_rotary.h"
#include "diffusion/wan_transformer_3d.h"
#include "nn/dtype.h"
#include "test_support.h"
#include "weights/config_reader.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace {

namespace fs = std::filesystem;
using a2a::WanTransformer3DModel;
using a2a::WanTransformer3DOptions;

const char* const kWanFixture = "wan_transformer_3d";

std::string wan_fixture_dir() { return a2a::test::fixture_path(kWanFixture); }

WanTransformer3DModel wan_fixture_model() {
  const std::string dir = wan_fixture_dir();
  WanTransformer3DModel model(WanTransformer3DOptions::from_file(dir + "/config.json"));
  a2a::LoadOptions options;
  options.source = dir;
  a2a::load_state_dict(*model, a2a::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"), options);
  model->eval();
  return model;
}

// The recorded call's tensor argument `name`.
at::Tensor wan_argument(const nlohmann::json& call, const a2a::TensorMap& inputs, const std::string& name) {
  REQUIRE(call.at("args").contains(name));
  return inputs.at(call.at("args").at(name).get<std::string>());
}

at::Tensor wan_fixture_forward(WanTransformer3DModel& model, const nlohmann::json& call, const a2a::TensorMap& inputs) {
  torch::NoGradGuard no_grad;
  return model->forward(wan_argument(call, inputs, "hidden_states"), wan_argument(call, inputs, "timestep"),
                        wan_argument(call, inputs, "encoder_hidden_states"));
}

std::string wan_build_error(const nlohmann::json& config) {
  try {
    WanTransformer3DModel model(WanTransformer3DOptions::from_config(a2a::ConfigReader(config, "test config")));
  } catch (const a2a::Error& e) {
    return e.code() + ": " + e.message();
  }
  return "";
}

}  // namespace

TEST_CASE("WanTransformer3DModel matches diffusers", "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/meta.json");
  const std::string dir = wan_fixture_dir();
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  WanTransformer3DModel model(WanTransformer3DOptions::from_file(dir + "/config.json"));
  const auto report = a2a::load_state_dict(*model, a2a::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"));
  REQUIRE(report.ok());
  CHECK(report.loaded == meta.at("state_dict_keys").get<size_t>());
  int64_t parameter_count = 0;
  for (const auto& p : model->parameters()) parameter_count += p.numel();
  CHECK(parameter_count == meta.at("num_parameters").get<int64_t>());
  model->eval();

  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  for (const auto& call : meta.at("calls")) {
    REQUIRE(call.at("method") == "forward");
    const at::Tensor result = wan_fixture_forward(model, call, inputs);
    for (const auto& [tensor_name, field] : call.at("outputs").items()) {
      REQUIRE(field == "out.sample");
      const at::Tensor& expected = outputs.at(tensor_name);
      REQUIRE(result.sizes() == expected.sizes());
      const double diff = (result.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>();
      const double bound = 1e-4 * std::max(1.0, expected.abs().max().item<double>());
      std::cout << kWanFixture << " " << tensor_name << ": max abs diff " << diff << " (bound " << bound << ")"
                << std::endl;
      CHECK(diff <= bound);
    }
  }
}

TEST_CASE("Wan rotary table: each axis rotates its own channel pairs by its position", "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/config.json");
  const auto options = WanTransformer3DOptions::from_file(wan_fixture_dir() + "/config.json");
  const int64_t head_dim = options.attention_head_dim;
  const std::array<int64_t, 3> patch{options.patch_size[0], options.patch_size[1], options.patch_size[2]};
  a2a::WanRotaryPosEmbed rope(head_dim, patch, options.rope_max_seq_len);
  const auto columns = a2a::wan_rotary_axis_columns(head_dim);
  CHECK(columns[0] + columns[1] + columns[2] == head_dim / 2);
  const std::array<int64_t, 3> grid{2, 3, 2};
  const at::Tensor x = at::zeros({1, 1, grid[0] * patch[0], grid[1] * patch[1], grid[2] * patch[2]});
  const at::Tensor table = rope(x);
  REQUIRE(table.scalar_type() == at::kComplexDouble);
  REQUIRE(table.sizes() == at::IntArrayRef({1, 1, grid[0] * grid[1] * grid[2], head_dim / 2}));
  const at::Tensor angles = at::angle(table).squeeze(0).squeeze(0);
  double worst = 0;
  for (int64_t f = 0; f < grid[0]; ++f) {
    for (int64_t h = 0; h < grid[1]; ++h) {
      for (int64_t w = 0; w < grid[2]; ++w) {
        const int64_t token = (f * grid[1] + h) * grid[2] + w;
        const std::array<int64_t, 3> position{f, h, w};
        int64_t column = 0;
        for (size_t axis = 0; axis < 3; ++axis) {
          for (int64_t j = 0; j < columns[axis]; ++j, ++column) {
            const double angle = position[axis] * std::pow(10000.0, -2.0 * j / (2.0 * columns[axis]));
            const double got = angles[token][column].item<double>();
            worst = std::max(worst, std::abs(std::remainder(got - angle, 2 * M_PI)));
          }
        }
      }
    }
  }
  CHECK(worst < 1e-12);
  // Rotating interleaved pairs: (a, b) by angle t gives (a cos t - b sin t, a sin t + b cos t).
  const at::Tensor heads = at::randn({1, 2, table.size(2), head_dim});
  const at::Tensor rotated = a2a::apply_wan_rotary_emb(heads, table);
  const at::Tensor a = heads.slice(3, 0, head_dim, 2).to(at::kDouble),
                   b = heads.slice(3, 1, head_dim, 2).to(at::kDouble);
  const at::Tensor c = at::cos(angles).unsqueeze(0).unsqueeze(0), s = at::sin(angles).unsqueeze(0).unsqueeze(0);
  CHECK(at::allclose(rotated.slice(3, 0, head_dim, 2).to(at::kDouble), a * c - b * s, 1e-6, 1e-6));
  CHECK(at::allclose(rotated.slice(3, 1, head_dim, 2).to(at::kDouble), a * s + b * c, 1e-6, 1e-6));
  // A patch grid longer than rope_max_seq_len is refused.
  const at::Tensor too_long = at::zeros({1, 1, (options.rope_max_seq_len + 1) * patch[0], patch[1], patch[2]});
  CHECK(a2a::test::error_code([&] { rope(too_long); }) == "bad_shape");
}

TEST_CASE("WanTransformer3DModel strict loading names missing, unexpected and mis-shaped tensors",
          "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/diffusion_pytorch_model.safetensors");
  const std::string dir = wan_fixture_dir();
  WanTransformer3DModel model(WanTransformer3DOptions::from_file(dir + "/config.json"));
  a2a::TensorMap tensors;
  for (const auto& [name, t] : a2a::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"))
    tensors[name] = t.clone();
  REQUIRE(tensors.count("blocks.0.attn1.norm_q.weight"));
  REQUIRE(tensors.count("proj_out.weight"));
  tensors.erase("blocks.0.attn1.norm_q.weight");
  tensors["blocks.0.attn2.add_k_proj.weight"] = at::zeros({2, 2});
  tensors["proj_out.weight"] = at::zeros({tensors["proj_out.weight"].size(0) + 1, tensors["proj_out.weight"].size(1)});
  try {
    a2a::load_state_dict(*model, tensors);
    FAIL("a mismatching checkpoint was accepted");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "weights_mismatch");
    CHECK_THAT(e.message(), Catch::Contains("blocks.0.attn1.norm_q.weight"));
    CHECK_THAT(e.message(), Catch::Contains("blocks.0.attn2.add_k_proj.weight"));
    CHECK_THAT(e.message(), Catch::Contains("proj_out.weight"));
  }
}

TEST_CASE("load_wan_transformer_3d reads a model folder and a pipeline's sharded transformer/", "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/meta.json");
  const std::string dir = wan_fixture_dir();
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto& call = meta.at("calls").at(0);
  WanTransformer3DModel reference = wan_fixture_model();
  const at::Tensor expected = wan_fixture_forward(reference, call, inputs);

  WanTransformer3DModel direct = a2a::load_wan_transformer_3d(dir);
  CHECK(torch::equal(wan_fixture_forward(direct, call, inputs), expected));

  const fs::path pipeline = a2a::test::fresh_dir("wan_pipeline");
  const fs::path transformer = pipeline / "transformer";
  fs::create_directories(transformer);
  fs::copy_file(fs::path(dir) / "config.json", transformer / "config.json");
  const auto single = a2a::SafeTensorsCheckpoint::open(dir + "/diffusion_pytorch_model.safetensors");
  a2a::save_safetensors_sharded(transformer.string(), "diffusion_pytorch_model", single->tensors(),
                                single->data_bytes() / 2, {{"format", "pt"}});
  a2a::test::write_text((pipeline / "model_index.json").string(),
                        R"({"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]})");
  WanTransformer3DModel sharded = a2a::load_wan_transformer_3d(pipeline.string());
  CHECK(torch::equal(wan_fixture_forward(sharded, call, inputs), expected));

  CHECK(a2a::test::error_code([&] { a2a::load_wan_transformer_3d((pipeline / "absent").string()); }) ==
        "missing_model");
}

TEST_CASE("WanTransformer3DModel in bfloat16 keeps diffusers' float32 modules and stays close", "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/meta.json");
  const std::string dir = wan_fixture_dir();
  const auto meta = a2a::test::read_json(dir + "/meta.json");
  const auto inputs = a2a::load_safetensors(dir + "/inputs.safetensors");
  const auto outputs = a2a::load_safetensors(dir + "/outputs.safetensors");
  const auto& call = meta.at("calls").at(0);
  WanTransformer3DModel model = a2a::load_wan_transformer_3d(dir, "transformer", "cpu", at::kBFloat16);
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    const bool kept = item.key().find("time_embedder") != std::string::npos ||
                      item.key().find("scale_shift_table") != std::string::npos ||
                      item.key().find(".norm2.") != std::string::npos;
    CHECK(item.value().scalar_type() == (kept ? at::kFloat : at::kBFloat16));
  }
  const at::Tensor result = wan_fixture_forward(model, call, inputs);
  CHECK(result.scalar_type() == at::kBFloat16);
  const at::Tensor& expected = outputs.at(call.at("outputs").begin().key());
  const double error = a2a::test::scaled_error(result, expected);
  std::cout << kWanFixture << " bfloat16: scaled max abs error " << error << std::endl;
  CHECK(error < 0.1);  // bfloat16 keeps 8 significant bits
}

TEST_CASE("WanTransformer3DModel refuses bad and unsupported configurations", "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/config.json");
  const auto base = a2a::test::read_json(wan_fixture_dir() + "/config.json");
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    auto c = base;
    c[key] = value;
    return c;
  };
  CHECK(wan_build_error(base).empty());
  CHECK_THAT(wan_build_error(with("patch_size", {1, 2})),
             Catch::StartsWith("bad_config") && Catch::Contains("patch_size"));
  CHECK_THAT(wan_build_error(with("patch_size", {1, 0, 2})), Catch::StartsWith("bad_config"));
  CHECK_THAT(wan_build_error(with("patch_size", "wide")), Catch::StartsWith("bad_config"));
  CHECK_THAT(wan_build_error(with("attention_head_dim", base.at("attention_head_dim").get<int64_t>() + 1)),
             Catch::StartsWith("bad_config") && Catch::Contains("attention_head_dim"));
  CHECK_THAT(wan_build_error(with("attention_head_dim", 4)), Catch::StartsWith("bad_config"));
  CHECK_THAT(wan_build_error(with("qk_norm", "bogus")), Catch::StartsWith("bad_config") && Catch::Contains("bogus"));
  CHECK_THAT(wan_build_error(with("qk_norm", "rms_norm")),
             Catch::StartsWith("unsupported_model_config") && Catch::Contains("rms_norm"));
  CHECK_THAT(wan_build_error(with("image_dim", 1280)),
             Catch::StartsWith("unsupported_model_config") && Catch::Contains("image_dim"));
  CHECK_THAT(wan_build_error(with("added_kv_proj_dim", 5120)),
             Catch::StartsWith("unsupported_model_config") && Catch::Contains("added_kv_proj_dim"));
  CHECK_THAT(wan_build_error(with("_class_name", "UNet3DConditionModel")), Catch::StartsWith("bad_config"));
  CHECK_THAT(wan_build_error(with("num_attention_heads", 0)), Catch::StartsWith("bad_config"));
  // Every problem at once; a bad one outranks an unsupported one.
  auto several = with("image_dim", 1280);
  several["patch_size"] = {2, 2};
  CHECK_THAT(wan_build_error(several),
             Catch::StartsWith("bad_config") && Catch::Contains("image_dim") && Catch::Contains("patch_size"));
  // qk_norm null builds attention without norm_q / norm_k.
  WanTransformer3DModel plain(WanTransformer3DOptions::from_config(a2a::ConfigReader(with("qk_norm", nullptr), "t")));
  for (const auto& item : plain->named_parameters()) CHECK(item.key().find("norm_q") == std::string::npos);
}

TEST_CASE("WanTransformer3DModel checks its inputs", "[wan_transformer]") {
  A2A_REQUIRE_FIXTURE("wan_transformer_3d/meta.json");
  WanTransformer3DModel model = wan_fixture_model();
  const auto meta = a2a::test::read_json(wan_fixture_dir() + "/meta.json");
  const auto inputs = a2a::load_safetensors(wan_fixture_dir() + "/inputs.safetensors");
  const auto& call = meta.at("calls").at(0);
  const at::Tensor x = wan_argument(call, inputs, "hidden_states");
  const at::Tensor t = wan_argument(call, inputs, "timestep");
  const at::Tensor text = wan_argument(call, inputs, "encoder_hidden_states");
  torch::NoGradGuard no_grad;
  const auto& patch = model->options().patch_size;
  for (int64_t axis = 0; axis < 3; ++axis) {
    if (patch[axis] == 1) continue;
    const at::Tensor ragged = at::cat({x, x.slice(2 + axis, 0, 1)}, 2 + axis);  // one frame, row or column more
    CHECK(a2a::test::error_code([&] { model->forward(ragged, t, text); }) == "bad_shape");
  }
  CHECK(a2a::test::error_code([&] { model->forward(x.slice(1, 0, 1), t, text); }) == "bad_shape");
  CHECK(a2a::test::error_code([&] { model->forward(x, t, text.slice(2, 0, 1)); }) == "bad_shape");
  CHECK(a2a::test::error_code([&] { model->forward(x, at::zeros({x.size(0) + 1}), text); }) == "bad_shape");
  // A 0-d timestep is that timestep for every batch element.
  const at::Tensor first = t[0];
  const at::Tensor per_batch = model->forward(x, first.expand({x.size(0)}), text);
  CHECK(torch::equal(model->forward(x, first, text), per_batch));
}
