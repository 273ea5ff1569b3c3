// AutoencoderKL: parity with diffusers, real checkpoint layouts (SD 1.5, AudioLDM), tiling, scaling.
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "base/error.h"
#include "diffusion/autoencoder_kl.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "stage_runner.h"
#include "test_support.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using namespace a2a;

namespace {

using a2a::test::first_difference;
using a2a::test::read_key_list;

using a2a::test::ShapeMap;

AutoencoderKL load_fixture_vae(const std::string& folder) {
  auto options = AutoencoderKLOptions::from_json(test::read_json(test::fixture_path(folder + "/config.json")));
  AutoencoderKL vae(options);
  LoadOptions load;
  load.source = folder;
  load_state_dict(*vae, load_safetensors(test::fixture_path(folder + "/diffusion_pytorch_model.safetensors")), load);
  vae->eval();
  return vae;
}

// A small VAE with weights drawn from a fixed seed.
AutoencoderKL tiny_vae(bool with_attention) {
  AutoencoderKLOptions o;
  o.block_out_channels = {8, 16};
  o.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D"};
  o.up_block_types = {"UpDecoderBlock2D", "UpDecoderBlock2D"};
  o.norm_num_groups = 4;
  o.mid_block_add_attention = with_attention;
  torch::manual_seed(7);
  return AutoencoderKL(o);
}

}  // namespace

TEST_CASE("AutoencoderKL matches diffusers on the fixture", "[vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto vae = load_fixture_vae("autoencoder_kl");
  auto meta = test::read_json(test::fixture_path("autoencoder_kl/meta.json"));
  auto inputs = load_safetensors(test::fixture_path("autoencoder_kl/inputs.safetensors"));
  auto outputs = load_safetensors(test::fixture_path("autoencoder_kl/outputs.safetensors"));

  int compared = 0;
  for (const auto& call : meta["calls"]) {
    const std::string method = call["method"];
    std::map<std::string, at::Tensor> ours;
    if (method == "encode") {
      auto posterior = vae->encode(inputs.at(call["args"]["x"].get<std::string>()));
      ours["latent_mean"] = posterior.mean;
      ours["latent_logvar"] = posterior.logvar;
    } else if (method == "decode") {
      ours["decoded"] = vae->decode(inputs.at(call["args"]["z"].get<std::string>()));
    } else {
      FAIL("unknown call " << method);
    }
    for (const auto& kv : call["outputs"].items()) {
      INFO(kv.key());
      REQUIRE(ours.count(kv.key()));
      double err = test::scaled_error(ours.at(kv.key()), outputs.at(kv.key()));
      std::cout << "autoencoder_kl " << method << " " << kv.key() << ": scaled max abs error " << err << std::endl;
      A2A_CHECK_CLOSE(ours.at(kv.key()), outputs.at(kv.key()), 1e-4);
      ++compared;
    }
  }
  CHECK(compared == 3);
}

TEST_CASE("Old VAE attention names load after conversion", "[vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  auto reference = load_fixture_vae("autoencoder_kl");
  auto weights = load_safetensors(test::fixture_path("autoencoder_kl/diffusion_pytorch_model.safetensors"));
  // Write the fixture's weights the way old SD 1.x files name them.
  TensorMap legacy;
  const std::pair<std::string, std::string> renames[] = {
      {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
  int renamed = 0;
  for (const auto& kv : weights) {
    std::string name = kv.first;
    at::Tensor value = kv.second;
    for (const auto& r : renames) {
      auto pos = name.find(r.first);
      if (pos == std::string::npos) continue;
      name.replace(pos, r.first.size(), r.second);
      if (value.dim() == 2) value = value.view({value.size(0), value.size(1), 1, 1});
      ++renamed;
    }
    legacy[name] = value;
  }
  REQUIRE(renamed > 0);
  AutoencoderKL vae(reference->options());
  CHECK_THROWS_AS(load_state_dict(*vae, legacy), a2a::Error);
  LoadOptions convert;
  convert.convert = convert_legacy_vae_attention;
  load_state_dict(*vae, legacy, convert);
  auto z = torch::randn({1, reference->options().latent_channels, 4, 4});
  CHECK(torch::equal(vae->decode(z), reference->decode(z)));
}

namespace {

struct LayoutCase {
  const char* config;
  const char* keys;
  double scaling_factor;  // what the pipeline must use
  int64_t latent_channels;
};

void check_vae_layout(const LayoutCase& c) {
  A2A_REQUIRE_FIXTURE(c.config);
  A2A_REQUIRE_FIXTURE(c.keys);
  INFO(c.config);
  auto options = AutoencoderKLOptions::from_json(test::read_json(test::fixture_path(c.config)));
  CHECK(options.scaling_factor == c.scaling_factor);
  CHECK(options.latent_channels == c.latent_channels);
  AutoencoderKL vae(options);
  ShapeMap ours;
  for (const auto& p : vae->named_parameters()) ours[p.key()] = p.value().sizes().vec();
  auto ref = read_key_list(test::fixture_path(c.keys), "param");
  CHECK(first_difference(ours, ref) == "");
  CHECK(ours.size() == ref.size());
  CHECK(read_key_list(test::fixture_path(c.keys), "buffer").empty());
  CHECK(vae->buffers().empty());
}

}  // namespace

TEST_CASE("AutoencoderKL builds with Stable Diffusion 1.5's layout", "[vae]") {
  // The config has no scaling_factor: the constructor default 0.18215 applies.
  check_vae_layout({"hf_layouts/stable-diffusion-v1-5/vae/config.json", "keys/sd15_vae.txt", 0.18215, 4});
}

TEST_CASE("AutoencoderKL builds with AudioLDM's one-channel mel layout", "[vae]") {
  check_vae_layout({"hf_layouts/audioldm-s-full-v2/vae/config.json", "keys/audioldm_vae.txt", 0.9392935633659363, 8});
}

TEST_CASE("AutoencoderKL builds with text-to-video-ms-1.7b's layout", "[.slow][vae_layouts]") {
  check_vae_layout({"hf_layouts/text-to-video-ms-1.7b/vae/config.json", "keys/ms17b_vae.txt", 0.18215, 4});
}

TEST_CASE("Tiles are placed and blended so that a local decoder gives the untiled result", "[vae]") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const int64_t factor = 4;
  auto mix = torch::randn({3, 4, 1, 1});
  // A position-wise decoder: each latent pixel becomes a factor x factor block of its own colour.
  auto local_decoder = [&](const at::Tensor& z) {
    auto image = torch::conv2d(z, mix);
    return image.repeat_interleave(factor, 2).repeat_interleave(factor, 3);
  };
  for (auto size : {std::pair<int64_t, int64_t>{12, 16}, {11, 13}, {5, 9}}) {
    auto z = torch::randn({2, 4, size.first, size.second});
    auto full = local_decoder(z);
    for (const VAETiling& tiling : {VAETiling{4, 0.25}, VAETiling{6, 0.5}, VAETiling{5, 0.4}, VAETiling{3, 0.0}}) {
      INFO("latent " << size.first << "x" << size.second << ", tile " << tiling.tile_latent_size << ", overlap "
                     << tiling.overlap);
      auto tiled = decode_in_tiles(z, tiling, factor, local_decoder);
      A2A_CHECK_CLOSE(tiled, full, 1e-6);
    }
  }
}

TEST_CASE("Tiled VAE decoding approaches untiled decoding as tiles grow", "[vae]") {
  torch::NoGradGuard no_grad;
  auto vae = tiny_vae(true);
  torch::manual_seed(11);
  auto z = torch::randn({1, 4, 16, 16});
  auto full = vae->decode(z);
  double previous = std::numeric_limits<double>::infinity();
  for (int64_t tile : {6, 10, 14}) {
    auto tiled = vae->decode(z, VAETiling{tile, 0.25});
    REQUIRE(tiled.sizes() == full.sizes());
    // GroupNorm statistics and the mid-block attention see one tile at a time: random-weight tiles
    // are not identical to the whole, but the difference shrinks as tiles cover more of the latent.
    const double mean_diff = (tiled - full).abs().mean().item<double>();
    std::cout << "vae tiling, tile " << tile << ": mean |tiled - full| " << mean_diff << " (output std "
              << full.std().item<double>() << ")" << std::endl;
    CHECK(mean_diff < previous);
    previous = mean_diff;
  }
  CHECK(previous < 0.35 * full.std().item<double>());
  // A tile covering the whole latent is the untiled path exactly.
  CHECK(torch::equal(vae->decode(z, VAETiling{16, 0.25}), full));
  // Odd sizes still come out whole.
  auto odd = z.narrow(2, 0, 11).narrow(3, 0, 13).contiguous();
  CHECK(vae->decode(odd, VAETiling{5, 0.4}).sizes() == vae->decode(odd).sizes());
}

TEST_CASE("AutoencoderKL latent scaling and shift", "[vae]") {
  torch::NoGradGuard no_grad;
  AutoencoderKLOptions o = AutoencoderKLOptions::from_json({{"block_out_channels", {8}}, {"norm_num_groups", 4}});
  CHECK(o.scaling_factor == 0.18215);
  CHECK_FALSE(o.shift_factor.has_value());
  o.scaling_factor = 0.5;
  o.shift_factor = 0.25;
  AutoencoderKL vae(o);
  auto z = torch::randn({1, 4, 2, 2});
  A2A_CHECK_CLOSE(vae->scale_latent(z), (z - 0.25) * 0.5, 1e-7);
  A2A_CHECK_CLOSE(vae->unscale_latent(vae->scale_latent(z)), z, 1e-6);
}

TEST_CASE("AutoencoderKL sampling is seeded and the mode is the mean", "[vae]") {
  torch::NoGradGuard no_grad;
  auto vae = tiny_vae(true);
  auto x = torch::rand({1, 3, 8, 8}) * 2 - 1;
  auto posterior = vae->encode(x);
  CHECK(posterior.mean.sizes() == at::IntArrayRef({1, 4, 4, 4}));
  auto g1 = at::detail::createCPUGenerator(5);
  auto g2 = at::detail::createCPUGenerator(5);
  auto a = posterior.sample(&g1);
  auto b = posterior.sample(&g2);
  CHECK(torch::equal(a, b));
  CHECK_FALSE(torch::equal(a, posterior.mode()));
}

TEST_CASE("AutoencoderKL rejects bad configs and shapes", "[vae]") {
  CHECK_THROWS_AS(AutoencoderKLOptions::from_json({{"down_block_types", {"AttnDownEncoderBlock2D"}}}), a2a::Error);
  CHECK_THROWS_AS(AutoencoderKLOptions::from_json({{"block_out_channels", {8, 16}}}), a2a::Error);
  auto vae = tiny_vae(false);
  CHECK_THROWS_AS(vae->encode(torch::zeros({1, 1, 8, 8})), a2a::Error);
  CHECK_THROWS_AS(vae->decode(torch::zeros({1, 3, 4, 4})), a2a::Error);
}

// ---- vae_encode / vae_decode stages ----

namespace {

using a2a::test::ConfiguredStage;

ConfiguredStage make_vae_stage(const std::string& type, Json given, ModuleCache* cache) {
  return a2a::test::configure_stage(type, given, cache);
}

}  // namespace

TEST_CASE("vae_encode and vae_decode share the seeded tiny preset", "[vae]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  auto encode = make_vae_stage("vae_encode", {{"sample_mode", "mean"}}, &cache);
  auto decode = make_vae_stage("vae_decode", Json::object(), &cache);
  REQUIRE(encode.stage->module() != nullptr);
  CHECK(encode.stage->module() == decode.stage->module());
  auto& vae = dynamic_cast<AutoencoderKLImpl&>(*decode.stage->module());

  torch::manual_seed(2);
  auto image = torch::rand({1, 3, 16, 16});
  RunContext run;
  auto latent = encode.stage->run({{"image", Value::image(image)}}, run).at("latent");
  REQUIRE(latent.type() == ValueType::Latent);
  const int64_t f = vae.options().downscale_factor();
  CHECK(latent.tensor().sizes() == at::IntArrayRef({1, vae.options().latent_channels, 16 / f, 16 / f}));
  A2A_CHECK_CLOSE(latent.tensor(), vae.encode(image * 2 - 1).mean * vae.options().scaling_factor, 1e-6);

  auto out = decode.stage->run({{"latent", latent}}, run);
  auto expected = vae.decode(latent.tensor() / vae.options().scaling_factor);
  A2A_CHECK_CLOSE(out.at("sample").tensor(), expected, 1e-6);
  A2A_CHECK_CLOSE(out.at("image").tensor(), (expected / 2 + 0.5).clamp(0, 1), 1e-6);
  CHECK(out.at("image").tensor().min().item<double>() >= 0.0);
  CHECK(out.at("image").tensor().max().item<double>() <= 1.0);

  // The same seed gives the same weights in a fresh cache; another seed does not.
  ModuleCache other;
  auto again = make_vae_stage("vae_decode", Json::object(), &other);
  CHECK(torch::equal(again.stage->run({{"latent", latent}}, run).at("sample").tensor(), out.at("sample").tensor()));
  auto reseeded = make_vae_stage("vae_decode", {{"tiny_seed", 1}}, &other);
  CHECK_FALSE(
      torch::equal(reseeded.stage->run({{"latent", latent}}, run).at("sample").tensor(), out.at("sample").tensor()));

  // Sampling draws from the run seed: reproducible, and not the mean.
  auto sampling = make_vae_stage("vae_encode", Json::object(), &cache);
  RunContext seeded;
  seeded.seed = 9;
  auto a = sampling.stage->run({{"image", Value::image(image)}}, seeded).at("latent").tensor();
  auto b = sampling.stage->run({{"image", Value::image(image)}}, seeded).at("latent").tensor();
  CHECK(torch::equal(a, b));
  CHECK_FALSE(torch::equal(a, latent.tensor()));
}

TEST_CASE("vae_decode tiles on request and the mel preset is AudioLDM's layout", "[vae]") {
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  RunContext run;
  auto plain = make_vae_stage("vae_decode", Json::object(), &cache);
  auto tiled = make_vae_stage("vae_decode", {{"tiling", true}, {"tile_size", 4}, {"tile_overlap", 0.25}}, &cache);
  torch::manual_seed(4);
  auto latent = Value::latent(torch::randn({1, 4, 10, 6}));
  auto a = plain.stage->run({{"latent", latent}}, run).at("image").tensor();
  auto b = tiled.stage->run({{"latent", latent}}, run).at("image").tensor();
  CHECK(a.sizes() == b.sizes());
  CHECK_FALSE(torch::equal(a, b));

  auto mel_encode = make_vae_stage("vae_encode", {{"preset", "mel"}, {"sample_mode", "mean"}}, &cache);
  auto mel_decode = make_vae_stage("vae_decode", {{"preset", "mel"}}, &cache);
  auto& vae = dynamic_cast<AutoencoderKLImpl&>(*mel_decode.stage->module());
  CHECK(vae.options().in_channels == 1);
  CHECK(vae.options().latent_channels == 8);
  CHECK(vae.options().scaling_factor == 0.9392935633659363);
  auto mel = torch::randn({1, 1, 16, 12});
  auto z = mel_encode.stage->run({{"sample", Value::tensor(mel)}}, run).at("latent");
  CHECK(z.tensor().size(1) == 8);
  auto decoded = mel_decode.stage->run({{"latent", z}}, run);
  CHECK(decoded.at("sample").tensor().sizes() == mel.sizes());
  CHECK(decoded.at("image").tensor().sizes() == at::IntArrayRef({1, 3, 16, 12}));

  CHECK_THROWS_AS(mel_encode.stage->run({}, run), a2a::Error);
  CHECK_THROWS_AS(plain.stage->run({{"latent", Value::latent(torch::zeros({1, 3, 4, 4}))}}, run), a2a::Error);
}

TEST_CASE("vae_decode loads a diffusers folder and matches the reference decode", "[vae]") {
  A2A_REQUIRE_FIXTURE("autoencoder_kl/diffusion_pytorch_model.safetensors");
  torch::NoGradGuard no_grad;
  ModuleCache cache;
  auto decode = make_vae_stage("vae_decode", {{"model", test::fixture_path("autoencoder_kl")}}, &cache);
  auto config = AutoencoderKLOptions::from_json(test::read_json(test::fixture_path("autoencoder_kl/config.json")));
  auto inputs = load_safetensors(test::fixture_path("autoencoder_kl/inputs.safetensors"));
  auto outputs = load_safetensors(test::fixture_path("autoencoder_kl/outputs.safetensors"));
  RunContext run;
  // The stage takes diffusion-space latents: the pipeline's z · scaling_factor.
  auto out = decode.stage->run({{"latent", Value::latent(inputs.at("z") * config.scaling_factor)}}, run);
  A2A_CHECK_CLOSE(out.at("sample").tensor(), outputs.at("decoded"), 1e-4);
  CHECK_THROWS_AS(make_vae_stage("vae_decode", {{"model", test::scratch_dir() + "/no_such_vae"}}, &cache), a2a::Error);
}
