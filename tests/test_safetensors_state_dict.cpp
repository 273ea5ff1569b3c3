// Strict loading, harmless extras, key conversions, dtype/device at load, zero-copy loads.
#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "test_support.h"
#include "weights/hf_layout.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;

namespace {

// The attention block of a diffusers VAE mid block, named as the checkpoint names it.
struct VaeAttentionImpl : torch::nn::Module {
  explicit VaeAttentionImpl(int64_t channels) {
    group_norm = register_module("group_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(1, channels)));
    to_q = register_module("to_q", torch::nn::Linear(channels, channels));
    to_k = register_module("to_k", torch::nn::Linear(channels, channels));
    to_v = register_module("to_v", torch::nn::Linear(channels, channels));
    to_out = register_module("to_out", torch::nn::Sequential(torch::nn::Linear(channels, channels)));
  }
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::Sequential to_out{nullptr};
};
TORCH_MODULE(VaeAttention);

struct MidBlockImpl : torch::nn::Module {
  explicit MidBlockImpl(int64_t channels) {
    attentions = register_module("attentions", torch::nn::ModuleList(VaeAttention(channels)));
  }
  torch::nn::ModuleList attentions{nullptr};
};
TORCH_MODULE(MidBlock);

struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(int64_t channels) { mid_block = register_module("mid_block", MidBlock(channels)); }
  MidBlock mid_block{nullptr};
};
TORCH_MODULE(Decoder);

struct TinyTextModelImpl : torch::nn::Module {
  TinyTextModelImpl() {
    token_embedding = register_module("token_embedding", torch::nn::Embedding(10, 4));
    proj = register_module("proj", torch::nn::Linear(4, 3));
    step = register_buffer("step", torch::zeros({1}, torch::kLong));
  }
  torch::nn::Embedding token_embedding{nullptr};
  torch::nn::Linear proj{nullptr};
  torch::Tensor step;
};
TORCH_MODULE(TinyTextModel);

a2a::TensorMap tiny_text_checkpoint() {
  at::manual_seed(11);
  return {{"token_embedding.weight", at::randn({10, 4})},
          {"proj.weight", at::randn({3, 4})},
          {"proj.bias", at::randn({3})},
          {"step", at::full({1}, 5, at::kLong)}};
}

using a2a::test::fresh_dir;

}  // namespace

TEST_CASE("strict loading names every missing, unexpected and mis-shaped tensor", "[state_dict]") {
  TinyTextModel model;
  auto checkpoint = tiny_text_checkpoint();
  checkpoint.erase("proj.bias");
  checkpoint["proj.weight"] = at::randn({4, 4});
  checkpoint["extra.weight"] = at::randn({2});
  checkpoint["another.extra"] = at::randn({2});
  try {
    a2a::LoadOptions options;
    options.source = "tiny.safetensors";
    a2a::load_state_dict(*model, checkpoint, options);
    FAIL("a mismatched checkpoint must not load");
  } catch (const a2a::Error& e) {
    const std::string& m = e.message();
    INFO(m);
    CHECK(e.code() == "weights_mismatch");
    CHECK(m.find("tiny.safetensors") != std::string::npos);
    CHECK(m.find("proj.bias") != std::string::npos);
    CHECK(m.find("extra.weight") != std::string::npos);
    CHECK(m.find("another.extra") != std::string::npos);
    CHECK(m.find("proj.weight: checkpoint [4,4] vs module [3,4]") != std::string::npos);
  }
  a2a::LoadOptions lenient;
  lenient.strict = false;
  auto report = a2a::load_state_dict(*model, checkpoint, lenient);
  CHECK(report.missing == std::vector<std::string>{"proj.bias"});
  CHECK(report.unexpected == std::vector<std::string>{"another.extra", "extra.weight"});
  REQUIRE(report.mismatched.size() == 1);
  CHECK(report.loaded == 2);  // token_embedding.weight, step
  CHECK(at::equal(model->token_embedding->weight, checkpoint["token_embedding.weight"]));
}

TEST_CASE("known-harmless extras are listed and ignored", "[state_dict]") {
  TinyTextModel model;
  auto checkpoint = tiny_text_checkpoint();
  checkpoint["text_model.embeddings.position_ids"] = at::arange(77, at::kLong).unsqueeze(0);
  checkpoint["model.layers.0.self_attn.rotary_emb.inv_freq"] = at::ones({8});
  auto report = a2a::load_state_dict(*model, checkpoint);
  CHECK(report.ok());
  CHECK(report.ignored ==
        std::vector<std::string>{"model.layers.0.self_attn.rotary_emb.inv_freq", "text_model.embeddings.position_ids"});
  CHECK(report.summary().find("text_model.embeddings.position_ids") != std::string::npos);

  a2a::LoadOptions no_harmless;
  no_harmless.ignore_known_harmless = false;
  CHECK_THROWS_WITH(a2a::load_state_dict(*model, checkpoint, no_harmless), Catch::Contains("position_ids"));

  a2a::LoadOptions listed;
  listed.ignore_known_harmless = false;
  listed.ignored_unexpected = {"*.position_ids", "model.layers.*.inv_freq"};
  CHECK(a2a::load_state_dict(*model, checkpoint, listed).ignored.size() == 2);

  CHECK(a2a::key_matches("*embeddings.position_ids", "vision_model.embeddings.position_ids"));
  CHECK(a2a::key_matches("a.*.c", "a.b.x.c"));
  CHECK_FALSE(a2a::key_matches("a.*.c", "a.b.x.d"));
  CHECK_FALSE(a2a::key_matches("proj.weight", "proj.weights"));
}

TEST_CASE("legacy VAE attention keys convert to to_q/to_k/to_v/to_out.0", "[state_dict]") {
  const int64_t c = 8;
  at::manual_seed(5);
  const std::string scope = "decoder.mid_block.attentions.0.";
  a2a::TensorMap legacy;
  for (const char* name : {"query", "key", "value", "proj_attn"}) {
    legacy[scope + name + ".weight"] = at::randn({c, c, 1, 1});
    legacy[scope + name + ".bias"] = at::randn({c});
  }
  legacy[scope + "group_norm.weight"] = at::randn({c});
  legacy[scope + "group_norm.bias"] = at::randn({c});
  legacy["text_model.encoder.layer.0.attention.self.key.weight"] = at::randn({c, c});  // not a VAE attention

  auto converted = a2a::convert_legacy_vae_attention(legacy);
  CHECK(converted.size() == legacy.size());
  const std::map<std::string, std::string> renamed = {
      {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};
  for (const auto& [old_name, new_name] : renamed) {
    INFO(old_name);
    const at::Tensor& w = converted.at(scope + new_name + ".weight");
    CHECK(w.sizes() == at::IntArrayRef({c, c}));
    CHECK(at::equal(w, legacy.at(scope + old_name + ".weight").flatten(1)));
    CHECK(at::equal(converted.at(scope + new_name + ".bias"), legacy.at(scope + old_name + ".bias")));
    CHECK(converted.count(scope + old_name + ".weight") == 0);
  }
  CHECK(converted.count("text_model.encoder.layer.0.attention.self.key.weight") == 1);

  // Loading through LoadOptions.convert into a module named like current diffusers.
  Decoder decoder(c);
  auto decoder_keys = a2a::rename_prefixes(legacy, {{"decoder.", ""}});
  decoder_keys.erase("text_model.encoder.layer.0.attention.self.key.weight");
  CHECK_THROWS_WITH(a2a::load_state_dict(*decoder, decoder_keys),
                    Catch::Contains("mid_block.attentions.0.query.weight"));
  a2a::LoadOptions options;
  options.convert = a2a::convert_legacy_vae_attention;
  auto report = a2a::load_state_dict(*decoder, decoder_keys, options);
  CHECK(report.ok());
  CHECK(report.loaded == 10);
  CHECK(at::equal(decoder->mid_block->attentions[0]->as<VaeAttention>()->to_out[0]->as<torch::nn::Linear>()->weight,
                  legacy.at(scope + "proj_attn.weight").flatten(1)));

  // Old and new names for the same tensor cannot both be kept.
  auto both = legacy;
  both[scope + "to_q.weight"] = at::randn({c, c});
  CHECK_THROWS_WITH(a2a::convert_legacy_vae_attention(both), Catch::Contains("to_q.weight"));
}

TEST_CASE("dtype and device conversion happen at load", "[state_dict]") {
  const std::string dir = fresh_dir("load_dtype");
  auto checkpoint = tiny_text_checkpoint();
  a2a::TensorMap half;
  for (const auto& kv : checkpoint)
    half[kv.first] = at::isFloatingType(kv.second.scalar_type()) ? kv.second.to(at::kHalf) : kv.second;
  a2a::save_safetensors(dir + "/model.safetensors", half);

  TinyTextModel model;
  auto report = a2a::load_weights(*model, dir);  // the folder's model.safetensors
  CHECK(report.ok());
  CHECK(model->proj->weight.scalar_type() == at::kFloat);  // the module keeps its dtype
  CHECK(at::equal(model->proj->weight, half["proj.weight"].to(at::kFloat)));
  CHECK_FALSE(a2a::is_mapped_view(model->proj->weight));

  a2a::LoadOptions to_half;
  to_half.dtype = at::kHalf;
  a2a::load_weights(*model, dir, to_half);
  CHECK(model->proj->weight.scalar_type() == at::kHalf);
  CHECK(model->step.scalar_type() == at::kLong);  // integer buffers keep their dtype
  CHECK(model->step.item<int64_t>() == 5);
  CHECK(at::equal(model->proj->weight, half["proj.weight"]));

  a2a::LoadOptions bad_device;
  bad_device.device = "tpu:7";
  CHECK_THROWS_WITH(a2a::load_weights(*model, dir, bad_device), Catch::Contains("tpu:7"));
  if (!at::hasCUDA()) {
    a2a::LoadOptions cuda;
    cuda.device = "cuda";
    CHECK_THROWS_WITH(a2a::load_weights(*model, dir, cuda), Catch::Contains("no CUDA"));
  }
}

TEST_CASE("zero-copy loads share the mapped tensors whose dtype the module keeps", "[state_dict]") {
  const std::string dir = fresh_dir("load_zero_copy");
  auto checkpoint = tiny_text_checkpoint();
  a2a::save_safetensors(dir + "/diffusion_pytorch_model.safetensors", checkpoint);
  TinyTextModel model;
  a2a::LoadOptions options;
  options.zero_copy = true;
  auto report = a2a::load_weights(*model, dir, options);
  CHECK(report.loaded == 4);
  CHECK(report.shared == 4);
  CHECK(a2a::is_mapped_view(model->proj->weight));
  CHECK(at::equal(model->proj->weight, checkpoint["proj.weight"]));
  auto out = model->proj->forward(at::ones({2, 4}));
  CHECK(at::allclose(out, at::ones({2, 4}).matmul(checkpoint["proj.weight"].t()) + checkpoint["proj.bias"]));

  // Asking for another dtype copies instead.
  a2a::LoadOptions to_double = options;
  to_double.dtype = at::kDouble;
  auto converted = a2a::load_weights(*model, dir, to_double);
  CHECK(converted.shared == 1);  // only the int64 buffer keeps its dtype
  CHECK_FALSE(a2a::is_mapped_view(model->proj->weight));
}

TEST_CASE("loading from caller-held views keeps what was written to them", "[state_dict]") {
  const std::string dir = fresh_dir("load_written_view");
  at::manual_seed(2);
  // Large enough to span whole pages, which the loader lets go after copying.
  a2a::TensorMap checkpoint = {{"weight", at::randn({64, 256})}, {"bias", at::randn({64})}};
  a2a::save_safetensors(dir + "/model.safetensors", checkpoint);
  auto tensors = a2a::load_safetensors(dir + "/model.safetensors");
  REQUIRE(a2a::is_mapped_view(tensors["weight"]));
  tensors["weight"].mul_(3);  // private copy-on-write pages
  torch::nn::Linear linear(256, 64);
  a2a::load_state_dict(*linear, tensors);
  CHECK(at::equal(linear->weight, checkpoint["weight"] * 3));
  CHECK(at::equal(tensors["weight"], checkpoint["weight"] * 3));  // the write survives
  CHECK(at::equal(linear->bias, checkpoint["bias"]));
}
