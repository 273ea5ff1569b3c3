// AutoencoderKLWan: parity with diffusers 0.33.1, strict and folder loading, configs, the causal
// frame-by-frame cache, latent normalisation.
#include <torch/torch.h>

#include <map>

#include "base/error.h"
#include "diffusion/autoencoder_kl_wan.h"
#include "test_support.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

const char* const kWanVaeFixture = "autoencoder_kl_wan";

std::string wan_vae_fixture_file(const std::string& name) {
  return test::fixture_path(std::string(kWanVaeFixture) + "/" + name);
}

AutoencoderKLWanOptions wan_vae_fixture_options() {
  return AutoencoderKLWanOptions::from_json(test::read_json(wan_vae_fixture_file("config.json")));
}

// A small model with both time resampling modes used twice, so that the "first chunk passes"
// rule and the two-frame cache of a time upsampler both run; seeded weights.
AutoencoderKLWan wan_vae_tiny() {
  AutoencoderKLWanOptions o;
  o.base_dim = 4;
  o.z_dim = 4;
  o.dim_mult = {1, 2, 2};
  o.num_res_blocks = 1;
  o.temperal_downsample = {true, true};
  o.latents_mean = {0.5, -0.25, 1.0, 0.0};
  o.latents_std = {2.0, 0.5, 1.5, 3.0};
  torch::manual_seed(13);
  AutoencoderKLWan vae(o);
  vae->eval();
  return vae;
}

// |ours - ref| <= suggested_atol + suggested_rtol·|ref| element by element (meta.json's bound).
void wan_vae_check_output(const nlohmann::json& meta, const std::string& name, const at::Tensor& ours,
                          const at::Tensor& ref) {
  INFO(name);
  REQUIRE(ours.sizes() == ref.sizes());
  const auto& tol = meta.at("tolerance").at(name);
  const double atol = tol.at("suggested_atol").get<double>(), rtol = tol.at("suggested_rtol").get<double>();
  auto r = ref.to(at::kDouble);
  auto diff = (ours.to(at::kDouble) - r).abs();
  std::cout << "autoencoder_kl_wan " << name << ": max abs diff " << diff.max().item<double>() << " (atol " << atol
            << ", rtol " << rtol << ")" << std::endl;
  CHECK((diff <= atol + rtol * r.abs()).all().item<bool>());
}

}  // namespace

TEST_CASE("AutoencoderKLWan matches diffusers on the fixture", "[wan_vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl_wan/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto meta = test::read_json(wan_vae_fixture_file("meta.json"));
  AutoencoderKLWan vae(wan_vae_fixture_options());
  LoadOptions load;
  load.source = kWanVaeFixture;
  load_state_dict(*vae, load_safetensors(wan_vae_fixture_file("diffusion_pytorch_model.safetensors")), load);
  vae->eval();
  CHECK(static_cast<int64_t>(vae->named_parameters().size()) == meta.at("state_dict_keys").get<int64_t>());
  int64_t count = 0;
  for (const auto& p : vae->parameters()) count += p.numel();
  CHECK(count == meta.at("num_parameters").get<int64_t>());

  auto inputs = load_safetensors(wan_vae_fixture_file("inputs.safetensors"));
  auto outputs = load_safetensors(wan_vae_fixture_file("outputs.safetensors"));
  size_t compared = 0, recorded = 0;
  for (const auto& call : meta.at("calls")) {
    const std::string method = call.at("method");
    std::map<std::string, at::Tensor> ours;
    if (method == "encode") {
      auto posterior = vae->encode(inputs.at(call.at("args").at("x").get<std::string>()));
      ours["latent_mean"] = posterior.mean;
      ours["latent_logvar"] = posterior.logvar;
    } else if (method == "decode") {
      ours["decoded"] = vae->decode(inputs.at(call.at("args").at("z").get<std::string>()));
    } else {
      FAIL("unknown call " << method);
    }
    for (const auto& kv : call.at("outputs").items()) {
      ++recorded;
      REQUIRE(ours.count(kv.key()));
      wan_vae_check_output(meta, kv.key(), ours.at(kv.key()), outputs.at(kv.key()));
      ++compared;
    }
  }
  CHECK(compared == recorded);
  CHECK(compared == outputs.size());
}

TEST_CASE("AutoencoderKLWan loading is strict and names the tensors", "[wan_vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl_wan/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto weights = load_safetensors(wan_vae_fixture_file("diffusion_pytorch_model.safetensors"));
  REQUIRE(weights.count("decoder.norm_out.gamma"));
  weights.erase("decoder.norm_out.gamma");
  weights["encoder.down_blocks.0.conv3.weight"] = torch::zeros({1});
  AutoencoderKLWan vae(wan_vae_fixture_options());
  try {
    load_state_dict(*vae, weights);
    FAIL("an incomplete checkpoint loaded");
  } catch (const a2a::Error& e) {
    const std::string message = e.what();
    CHECK(e.code() == "weights_mismatch");
    CHECK(message.find("decoder.norm_out.gamma") != std::string::npos);
    CHECK(message.find("encoder.down_blocks.0.conv3.weight") != std::string::npos);
  }
}

TEST_CASE("AutoencoderKLWan decodes multi-frame chunks as frame by frame", "[wan_vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl_wan/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto vae = load_autoencoder_kl_wan(test::fixture_path(kWanVaeFixture));
  auto z = load_safetensors(wan_vae_fixture_file("inputs.safetensors")).at("z");
  const auto per_frame = vae->decode(z);
  for (int64_t chunk : {0, 2}) {
    const auto chunked = vae->decode(z, chunk);
    REQUIRE(chunked.sizes() == per_frame.sizes());
    const double diff = (chunked - per_frame).abs().max().item<double>();
    std::cout << "autoencoder_kl_wan decode chunk " << chunk << " vs per frame: max abs diff " << diff << std::endl;
    CHECK(diff <= 1e-5);
  }
  CHECK_THROWS_AS(vae->decode(z, -1), a2a::Error);
}

TEST_CASE("AutoencoderKLWan loads a diffusers folder", "[wan_vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl_wan/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto vae = load_autoencoder_kl_wan(test::fixture_path(kWanVaeFixture));
  CHECK(vae->options().z_dim == wan_vae_fixture_options().z_dim);
  CHECK_FALSE(vae->is_training());
  auto meta = test::read_json(wan_vae_fixture_file("meta.json"));
  auto inputs = load_safetensors(wan_vae_fixture_file("inputs.safetensors"));
  auto outputs = load_safetensors(wan_vae_fixture_file("outputs.safetensors"));
  wan_vae_check_output(meta, "decoded", vae->decode(inputs.at("z")), outputs.at("decoded"));
  try {
    load_autoencoder_kl_wan(test::scratch_dir() + "/no_such_wan_vae");
    FAIL("a missing folder loaded");
  } catch (const a2a::Error& e) {
    CHECK(e.code() == "missing_model");
  }
}

TEST_CASE("AutoencoderKLWan config defaults and bad configs", "[wan_vae]") {
  auto defaults = AutoencoderKLWanOptions::from_json(nlohmann::json::object());
  CHECK(defaults.base_dim == 96);
  CHECK(defaults.z_dim == 16);
  CHECK(defaults.dim_mult == std::vector<int64_t>{1, 2, 4, 4});
  CHECK(defaults.temperal_downsample == std::vector<bool>{false, true, true});
  CHECK(defaults.temperal_upsample() == std::vector<bool>{true, true, false});
  CHECK(defaults.spatial_compression() == 8);
  CHECK(defaults.temporal_compression() == 4);
  CHECK(defaults.latents_mean.size() == 16);
  CHECK(AutoencoderKLWanOptions::from_json(defaults.to_json()).to_json() == defaults.to_json());

  const nlohmann::json bad[] = {
      {{"dim_mult", nlohmann::json::array()}},
      {{"dim_mult", {1, 2, 4, 4}}, {"temperal_downsample", {false, true}}},
      {{"attn_scales", nlohmann::json::array({1.0})}},
      {{"base_dim", "wide"}},
      {{"z_dim", 0}},
      {{"latents_std", {1.0, 2.0}}},
      {{"dropout", 1.5}},
  };
  for (const auto& config : bad) {
    INFO(config.dump());
    try {
      AutoencoderKLWanOptions::from_json(config);
      FAIL("accepted");
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "bad_config");
    }
  }
}

TEST_CASE("AutoencoderKLWan rejects bad shapes", "[wan_vae]") {
  torch::NoGradGuard no_grad;
  auto vae = wan_vae_tiny();
  for (const auto& video : {torch::zeros({1, 3, 4, 8, 8}), torch::zeros({1, 1, 5, 8, 8}), torch::zeros({3, 5, 8, 8})}) {
    try {
      vae->encode(video);
      FAIL("encoded " << video.sizes());
    } catch (const a2a::Error& e) {
      CHECK(e.code() == "bad_shape");
    }
  }
  CHECK_THROWS_AS(vae->decode(torch::zeros({1, 3, 2, 2, 2})), a2a::Error);
  CHECK_THROWS_AS(vae->normalize_latent(torch::zeros({1, 3, 2, 2, 2})), a2a::Error);
}

TEST_CASE("AutoencoderKLWan shapes follow the compression factors", "[wan_vae]") {
  torch::NoGradGuard no_grad;
  auto vae = wan_vae_tiny();
  const auto& o = vae->options();
  const int64_t s = o.spatial_compression(), c = o.temporal_compression();
  REQUIRE(c == 4);
  torch::manual_seed(1);
  auto video = torch::rand({2, 3, 1 + 4 * 2, 4 * s, 2 * s}) * 2 - 1;
  auto posterior = vae->encode(video);
  CHECK(posterior.mean.sizes() == at::IntArrayRef({2, o.z_dim, 1 + 2 * 4 / c, 4, 2}));
  auto decoded = vae->decode(posterior.mean);
  CHECK(decoded.sizes() == video.sizes());
  CHECK(decoded.abs().max().item<double>() <= 1.0);
}

// The cache carries only the last frames between chunks: a frame's result depends on the frames
// before it and never on later ones, so a longer video gives the same leading frames.
TEST_CASE("AutoencoderKLWan is causal frame by frame", "[wan_vae]") {
  torch::NoGradGuard no_grad;
  auto vae = wan_vae_tiny();
  const int64_t c = vae->options().temporal_compression();
  torch::manual_seed(5);
  auto z = torch::randn({1, vae->options().z_dim, 4, 3, 3});
  auto full = vae->decode(z);
  auto half = vae->decode(z.narrow(2, 0, 2));
  REQUIRE(full.size(2) == 1 + 3 * c);
  REQUIRE(half.size(2) == 1 + c);
  CHECK(torch::equal(full.narrow(2, 0, half.size(2)), half));
  // The first latent frame alone decodes to one frame: the upsamplers pass the first chunk unchanged.
  CHECK(vae->decode(z.narrow(2, 0, 1)).size(2) == 1);

  auto video = torch::rand({1, 3, 9, 8, 8}) * 2 - 1;
  auto long_mean = vae->encode(video).mean;
  auto short_mean = vae->encode(video.narrow(2, 0, 5)).mean;
  CHECK(torch::equal(long_mean.narrow(2, 0, short_mean.size(2)), short_mean));
  // Later frames do see earlier ones (the cache is used): changing frame 0 changes the last latent.
  auto changed = video.clone();
  changed.narrow(2, 0, 1).neg_();
  CHECK_FALSE(torch::equal(vae->encode(changed).mean.narrow(2, 2, 1), long_mean.narrow(2, 2, 1)));
}

TEST_CASE("AutoencoderKLWan latent normalisation follows the Wan pipeline", "[wan_vae]") {
  torch::NoGradGuard no_grad;
  auto vae = wan_vae_tiny();
  const auto& o = vae->options();
  torch::manual_seed(8);
  auto z = torch::randn({2, o.z_dim, 3, 2, 2});
  auto mean = torch::tensor(std::vector<double>(o.latents_mean.begin(), o.latents_mean.end())).view({1, -1, 1, 1, 1});
  auto std = torch::tensor(std::vector<double>(o.latents_std.begin(), o.latents_std.end())).view({1, -1, 1, 1, 1});
  auto normalized = vae->normalize_latent(z);
  CHECK(normalized.scalar_type() == z.scalar_type());
  A2A_CHECK_CLOSE(normalized, (z.to(at::kDouble) - mean) / std, 1e-6);
  A2A_CHECK_CLOSE(vae->denormalize_latent(normalized), z, 1e-6);
}
