// config.json and scheduler_config.json through ConfigReader into every options struct.
#include "diffusion/autoencoder_kl.h"
#include "diffusion/schedulers/scheduler.h"
#include "diffusion/unet2d_condition.h"
#include "encoders/clip_text_model.h"
#include "fuzz/fuzz_target.h"
#include "llm/llama.h"
#include "llm/output_projection.h"
#include "vocoders/hifigan.h"
#include "weights/config_reader.h"

namespace a2a::fuzz {

namespace {

// Each reader on its own: one refusing the config does not keep the others from running.
template <typename Read>
void attempt(Read read) {
  try {
    read();
  } catch (const Error&) {
  }
}

void config_json(const Bytes& input) {
  const ConfigReader config = ConfigReader::from_file(scratch_file("config.json", input));
  attempt([&] { LlamaOptions::from_config(config); });
  attempt([&] { CLIPTextConfig::from_config(config); });
  attempt([&] { UNet2DConditionOptions::from_config(config); });
  attempt([&] { AutoencoderKLOptions::from_config(config); });
  attempt([&] { SpeechT5HifiGanConfig::from_config(config); });
  attempt([&] { OutputProjectionOptions::from_config(config); });
  attempt([&] { config.child("text_config").get_or<int64_t>("hidden_size", 0); });
  for (const auto& name : scheduler_names())
    attempt([&] {
      auto scheduler = make_scheduler(name, config.json());
      scheduler->set_timesteps(4);
    });
}

std::vector<std::pair<std::string, Bytes>> config_json_seeds() {
  using nlohmann::json;
  return {
      {"llama.json", json{{"hidden_size", 8},
                          {"intermediate_size", 16},
                          {"num_hidden_layers", 1},
                          {"num_attention_heads", 2},
                          {"num_key_value_heads", 1},
                          {"vocab_size", 32},
                          {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}},
                          {"eos_token_id", {2, 3}}}
                         .dump()},
      {"unet.json", json{{"_class_name", "UNet2DConditionModel"},
                         {"block_out_channels", {8, 16}},
                         {"down_block_types", {"CrossAttnDownBlock2D", "DownBlock2D"}},
                         {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D"}},
                         {"attention_head_dim", {1, 2}},
                         {"cross_attention_dim", 12},
                         {"layers_per_block", 1},
                         {"norm_num_groups", 4}}
                        .dump()},
      {"vae.json", json{{"block_out_channels", {8}}, {"latent_channels", 4}, {"scaling_factor", 0.18215}}.dump()},
      {"clip.json", json{{"hidden_size", 8}, {"projection_dim", 4}, {"hidden_act", "quick_gelu"}}.dump()},
      {"scheduler.json", json{{"_class_name", "EulerDiscreteScheduler"},
                              {"num_train_timesteps", 1000},
                              {"beta_schedule", "scaled_linear"},
                              {"use_karras_sigmas", true},
                              {"timestep_spacing", "leading"},
                              {"steps_offset", 1}}
                             .dump()},
      {"hifigan.json", json{{"upsample_rates", {2, 2}},
                            {"upsample_kernel_sizes", {4, 4}},
                            {"resblock_kernel_sizes", {3}},
                            {"resblock_dilation_sizes", {{1, 3}}}}
                           .dump()},
      {"nulls.json",
       R"({"hidden_size": null, "num_class_embeds": null, "attention_head_dim": [1], "vision_config": {}})"},
  };
}

}  // namespace

A2A_FUZZ_TARGET("config_json",
                "config.json / scheduler_config.json read through ConfigReader into the Llama, CLIP, "
                "UNet, VAE, HiFi-GAN and projection options and every scheduler (set_timesteps included)",
                config_json, config_json_seeds);

}  // namespace a2a::fuzz
