// The media encoder stages: imagebind_encoder (image, video, audio, text), t5_text_encoder (mask and Wan's
// zero padding), audio_diffusion on T5 states, video_audio / video_with_audio, embedding_similarity, and
// tensor values saved as .safetensors.
#include <torch/torch.h>

#include <filesystem>

#include "base/error.h"
#include "encoders/imagebind_model.h"
#include "encoders/t5_encoder_model.h"
#include "media/audio_io.h"
#include "media/image_preprocess.h"
#include "media/video_audio.h"
#include "pipeline/registry.h"
#include "stage_runner.h"
#include "stages/media_file.h"
#include "test_support.h"
#include "tokenizers/tokenizer.h"
#include "weights/safetensors.h"

namespace fs = std::filesystem;
using namespace a2a;

namespace {

Value encoder_output(Stage& stage, const std::string& port, const Value& value) {
  auto run = test::run_stage(stage, {{port, value}});
  REQUIRE(run.outputs.count("embedding"));
  return run.outputs.at("embedding");
}

// 8-bit values, so that the image path's uint8 rounding leaves them as they are.
at::Tensor quantized_frame(int64_t size) {
  torch::manual_seed(3);
  return (torch::rand({3, size, size}) * 255).round() / 255;
}

}  // namespace

TEST_CASE("imagebind_encoder's tiny preset embeds each modality as [B, 1, D]", "[encoder_stages]") {
  ModuleCache cache;
  const Json tiny = {{"tiny_width", 16}, {"tiny_embed_dim", 12}};
  auto with = [&](const std::string& modality) {
    Json p = tiny;
    p["modality"] = modality;
    return test::configure_stage("imagebind_encoder", p, &cache).stage;
  };
  torch::manual_seed(1);
  const Value image = encoder_output(*with("image"), "image", Value::image(torch::rand({2, 3, 40, 30})));
  CHECK(image.tensor().sizes() == at::IntArrayRef({2, 1, 12}));
  CHECK(image.tensor().norm(2, -1).sub(1).abs().max().item<double>() < 1e-5);  // vision: normalised only

  const Value audio = encoder_output(*with("audio"), "audio", Value::audio(torch::randn({1, 2, 22050}) * 0.1, 22050));
  CHECK(audio.tensor().sizes() == at::IntArrayRef({1, 1, 12}));
  CHECK(audio.tensor().norm(2, -1).item<double>() == Approx(20.0).epsilon(1e-4));  // the x20 of imagebind_huge

  Json unscaled = tiny;
  unscaled["modality"] = "audio";
  unscaled["audio_logit_scale"] = false;  // NExT-GPT's copy of ImageBind
  const Value plain = encoder_output(*test::configure_stage("imagebind_encoder", unscaled, &cache).stage, "audio",
                                     Value::audio(torch::randn({1, 1, 16000}) * 0.1, 16000));
  CHECK(plain.tensor().norm(2, -1).item<double>() == Approx(1.0).epsilon(1e-4));

  const Value text = encoder_output(*with("text"), "text", Value::text("a dog barking"));
  CHECK(text.tensor().sizes() == at::IntArrayRef({1, 1, 12}));
  const Value other = encoder_output(*with("text"), "text", Value::text("rain on a roof"));
  CHECK_FALSE(torch::allclose(text.tensor(), other.tensor()));
}

TEST_CASE("imagebind_encoder: a video of one repeated frame gives that image's embedding", "[encoder_stages]") {
  ModuleCache cache;
  const Json tiny = {{"tiny_width", 16}, {"tiny_embed_dim", 8}};
  Json image_params = tiny, video_params = tiny;
  image_params["modality"] = "image";
  video_params["modality"] = "video";
  auto image_stage = test::configure_stage("imagebind_encoder", image_params, &cache).stage;
  auto video_stage = test::configure_stage("imagebind_encoder", video_params, &cache).stage;
  CHECK(image_stage->module() == video_stage->module());  // one vision tower
  const int64_t size = dynamic_cast<ImageBindModelImpl&>(*image_stage->module()).options().image_size;
  const at::Tensor frame = quantized_frame(size);
  const at::Tensor image = encoder_output(*image_stage, "image", Value::image(frame.unsqueeze(0))).tensor();
  // 3 s at 4 fps: every one of the 5 clips of 2 s holds frames.
  const at::Tensor frames = frame.unsqueeze(0).expand({12, 3, size, size}).contiguous();
  const at::Tensor video = encoder_output(*video_stage, "video", Value::video(frames.unsqueeze(0), 4.0)).tensor();
  INFO("scaled error " << test::scaled_error(video, image));
  CHECK(test::scaled_error(video, image) <= 1e-5);
  // Moving content changes it.
  const at::Tensor moving = at::cat({frames.slice(0, 0, 6), 1 - frames.slice(0, 6)});
  CHECK(test::scaled_error(encoder_output(*video_stage, "video", Value::video(moving.unsqueeze(0), 4.0)).tensor(),
                           image) > 1e-3);
}

TEST_CASE("imagebind_encoder refuses pickle, missing weights, tokenizers and shapes with codes", "[encoder_stages]") {
  const std::string dir = test::fresh_dir("imagebind_stage_errors");
  test::write_text(dir + "/imagebind_huge.pth", std::string("PK\x03\x04", 4) + std::string(60, '\0'));
  CHECK(test::error_code([&] {
          test::configure_stage("imagebind_encoder", {{"model", dir + "/imagebind_huge.pth"}});
        }) == "pickle_checkpoint");
  CHECK(test::error_code([&] {
          test::configure_stage("imagebind_encoder", {{"model", dir + "/absent.safetensors"}});
        }) == "path_not_found");
  // A checkpoint holding only the audio tower, asked for images; then text without a tokenizer.
  ImageBindOptions o;
  o.out_embed_dim = 8;
  o.audio_embed_dim = o.text_embed_dim = 16;
  o.audio_num_heads = o.text_num_heads = 2;
  o.audio_num_blocks = o.text_num_blocks = 1;
  o.text_vocab_size = 64;
  o.modalities = {"audio", "text"};
  ImageBindModel partial(o);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& kv : partial->named_parameters()) tensors[kv.key()] = kv.value();
  for (const auto& kv : partial->named_buffers()) tensors[kv.key()] = kv.value();
  save_safetensors(dir + "/model.safetensors", tensors);
  test::write_text(dir + "/config.json", R"({"audio_num_heads": 2, "text_num_heads": 2})");
  CHECK(test::error_code([&] {
          test::configure_stage("imagebind_encoder", {{"model", dir}, {"modality", "image"}});
        }) == "bad_modality");
  CHECK(test::error_code([&] {
          test::configure_stage("imagebind_encoder", {{"model", dir}, {"modality", "text"}});
        }) == "tokenizer_not_found");
  CHECK(test::error_code([&] {
          test::configure_stage("imagebind_encoder", {{"modality", "depth"}});
        }) == "param_not_allowed");

  auto stage = test::configure_stage("imagebind_encoder", {{"tiny_width", 8}, {"modality", "audio"}}).stage;
  CHECK(test::error_code([&] {
          test::run_stage(*stage, {{"audio", Value::audio(torch::zeros({1, 1, 0}), 16000)}});
        }) == "bad_shape");
}

TEST_CASE("t5_text_encoder pads with a mask (Tango) or trims and zero-pads (Wan)", "[encoder_stages]") {
  ModuleCache cache;
  auto stage_with = [&](const Json& p) { return test::configure_stage("t5_text_encoder", p, &cache).stage; };
  const std::string text = "a cat";
  auto masked = test::run_stage(*stage_with({{"max_length", 16}, {"tiny_d_model", 16}}), {{"text", Value::text(text)}});
  const Value& e = masked.outputs.at("embedding");
  CHECK(e.tensor().sizes() == at::IntArrayRef({1, 16, 16}));
  REQUIRE(e.mask().defined());
  CHECK(e.mask().sum().item<int64_t>() == static_cast<int64_t>(text.size()) + 1);  // the bytes and </s>
  CHECK(masked.outputs.count("negative_embedding"));

  // Wan's layout: the same states on the real tokens, zero rows after them, no mask. UMT5 picks it itself.
  auto zeros = test::run_stage(*stage_with({{"max_length", 16}, {"tiny_d_model", 16}, {"padding", "zeros"}}),
                               {{"text", Value::text(text)}});
  const Value& z = zeros.outputs.at("embedding");
  CHECK_FALSE(z.mask().defined());
  const int64_t length = static_cast<int64_t>(text.size()) + 1;
  CHECK(torch::equal(z.tensor().slice(1, 0, length), e.tensor().slice(1, 0, length)));
  CHECK(z.tensor().slice(1, length).abs().max().item<double>() == 0.0);
  CHECK(e.tensor().slice(1, length).abs().max().item<double>() > 0.0);  // padded rows are computed under a mask
  auto umt5 = test::run_stage(*stage_with({{"max_length", 16}, {"tiny_d_model", 16}, {"tiny_family", "umt5"}}),
                              {{"text", Value::text(text)}});
  CHECK_FALSE(umt5.outputs.at("embedding").mask().defined());

  // A text past max_length keeps </s> in the last slot.
  auto cut =
      test::run_stage(*stage_with({{"max_length", 4}, {"tiny_d_model", 16}}), {{"text", Value::text("a long prompt")}});
  CHECK(cut.outputs.at("embedding").mask().sum().item<int64_t>() == 4);
}

TEST_CASE("t5_text_encoder loads a transformers folder and tokenizes as the encoder expects", "[encoder_stages]") {
  A2A_REQUIRE_FIXTURE("t5_encoder/model.safetensors");
  A2A_REQUIRE_FIXTURE("sentencepiece_unigram/spiece.model");
  torch::NoGradGuard no_grad;
  const std::string folder = test::fresh_dir("t5_stage_model");
  fs::copy_file(test::fixture_path("t5_encoder/config.json"), folder + "/config.json");
  fs::create_symlink(test::fixture_path("t5_encoder/model.safetensors"), folder + "/model.safetensors");
  const std::string spiece = test::fixture_path("sentencepiece_unigram/spiece.model");
  auto tokenizer = load_tokenizer(spiece);
  auto model = load_t5_encoder(folder);
  const int64_t vocab = model->config().vocab_size;
  // A text whose pieces all lie inside the fixture model's vocabulary.
  std::string text;
  for (const std::string word : {"the", "a", "s", "e", "t", "in", "and", "to", "of", "on"})
    if (!tokenizer->encode(word).empty() && tokenizer->encode(word).back() < vocab)
      text += (text.empty() ? "" : " ") + word;
  REQUIRE_FALSE(text.empty());
  std::vector<int64_t> ids = tokenizer->encode(text);
  for (int64_t id : ids) REQUIRE(id < vocab);
  const int64_t max_length = static_cast<int64_t>(ids.size()) + 3;
  auto stage =
      test::configure_stage("t5_text_encoder",
                            {{"model", folder}, {"tokenizer", spiece}, {"max_length", max_length}, {"padding", "mask"}})
          .stage;
  const Value out = test::run_stage(*stage, {{"text", Value::text(text)}}).outputs.at("embedding");
  std::vector<int64_t> expected = ids, mask(ids.size() + 1, 1);
  expected.push_back(model->config().eos_token_id);
  expected.resize(max_length, model->config().pad_token_id);
  mask.resize(max_length, 0);
  const auto id_tensor = torch::tensor(expected).view({1, max_length});
  const auto mask_tensor = torch::tensor(mask).view({1, max_length});
  CHECK(torch::equal(out.mask(), mask_tensor));
  A2A_CHECK_CLOSE(out.tensor(), model->forward(id_tensor, mask_tensor).last_hidden_state, 1e-6);

  // The SentencePiece model has more pieces than this model has rows: a clear error, not an index crash.
  std::string outside;
  for (int64_t id = vocab; id < tokenizer->vocab_size() && outside.empty(); ++id) {
    const std::string piece = tokenizer->decode({id});
    if (!piece.empty() && tokenizer->encode(piece) == std::vector<int64_t>{id}) outside = piece;
  }
  REQUIRE_FALSE(outside.empty());
  CHECK(test::error_code([&] { test::run_stage(*stage, {{"text", Value::text(outside)}}); }) == "tokenizer_mismatch");
}

TEST_CASE("audio_diffusion cross-attends to T5 states under their mask (Tango)", "[encoder_stages]") {
  ModuleCache cache;
  auto encoder = test::configure_stage("t5_text_encoder", {{"max_length", 12}}, &cache).stage;
  auto encoded = test::run_stage(*encoder, {{"text", Value::text("rain")}, {"negative_text", Value::text("")}});
  const Json denoise = {{"steps", 2}, {"duration", 0.32}, {"tiny_cross_attention_dim", 32}};
  auto stage = test::configure_stage("audio_diffusion", denoise, &cache).stage;
  PortValues inputs = {{"conditioning", encoded.outputs.at("embedding")},
                       {"negative_conditioning", encoded.outputs.at("negative_embedding")}};
  const at::Tensor latent = test::run_stage(*stage, inputs).outputs.at("latent").tensor();
  CHECK(latent.dim() == 4);
  CHECK(std::isfinite(latent.abs().max().item<double>()));
  CHECK(torch::equal(test::run_stage(*stage, inputs).outputs.at("latent").tensor(), latent));  // seeded

  // Padded rows are masked: changing them leaves the result as it is; changing a real token's state does not.
  const Value& e = encoded.outputs.at("embedding");
  const int64_t length = e.mask().sum().item<int64_t>();
  at::Tensor noisy = e.tensor().clone();
  noisy.slice(1, length).normal_();
  inputs["conditioning"] = Value::embedding(noisy, e.mask());
  CHECK(test::scaled_error(test::run_stage(*stage, inputs).outputs.at("latent").tensor(), latent) < 1e-5);
  noisy.slice(1, 0, 1).normal_();
  inputs["conditioning"] = Value::embedding(noisy, e.mask());
  CHECK(test::scaled_error(test::run_stage(*stage, inputs).outputs.at("latent").tensor(), latent) > 1e-4);

  inputs["conditioning"] = Value::embedding(torch::zeros({1, 12, 16}));
  CHECK(test::error_code([&] { test::run_stage(*stage, inputs); }) == "bad_shape");  // width 16, UNet wants 32
  inputs["conditioning"] = Value::embedding(torch::zeros({1, 5, 32}));
  CHECK(test::error_code([&] { test::run_stage(*stage, inputs); }) == "bad_shape");  // 5 tokens against 12
}

TEST_CASE("a video's sound track is read with it, taken out by video_audio and saved back", "[encoder_stages]") {
  const std::string dir = test::fresh_dir("sound_track");
  const at::Tensor frames = torch::rand({6, 3, 32, 32});
  const at::Tensor tone = 0.3 * torch::sin(torch::arange(16000).to(at::kFloat) * (2 * M_PI * 440 / 16000)).unsqueeze(0);
  write_video_with_audio(dir + "/with_sound.mp4", frames, 6.0, AudioData{tone, 16000});
  const Value video = load_media_value(dir + "/with_sound.mp4", ValueType::Video);
  auto stage = test::configure_stage("video_audio").stage;
  auto run = test::run_stage(*stage, {{"video", video}});
  REQUIRE(run.outputs.count("audio"));
  const Value& audio = run.outputs.at("audio");
  CHECK(audio.sample_rate() == 16000);
  CHECK(audio.tensor().size(0) == 1);
  CHECK(std::abs(audio.tensor().size(2) - 16000) <= 1024);
  CHECK(audio.tensor().abs().max().item<double>() > 0.1);

  // Saved again to .mp4 the sound goes with it; a video without sound gives no audio value.
  const auto saved = save_value(video, dir + "/again.mp4");
  CHECK(saved.at(0).format.find("AAC") != std::string::npos);
  CHECK(read_video_audio_track(dir + "/again.mp4").has_value());
  const Value silent = Value::video(frames.unsqueeze(0), 6.0);
  save_value(silent, dir + "/silent.mp4");
  CHECK(test::run_stage(*stage, {{"video", load_media_value(dir + "/silent.mp4", ValueType::Video)}}).outputs.empty());

  auto attach = test::configure_stage("video_with_audio").stage;
  auto attached = test::run_stage(*attach, {{"video", silent}, {"audio", Value::audio(tone.unsqueeze(0), 16000)}});
  CHECK(sound_track(attached.outputs.at("video")).has_value());
  CHECK(test::error_code([&] {
          test::run_stage(*attach, {{"video", silent}, {"audio", Value::audio(torch::zeros({2, 1, 8}), 16000)}});
        }) == "bad_shape");
}

TEST_CASE("embedding_similarity prints the cosine of every pair and leaves absent inputs out", "[encoder_stages]") {
  auto stage = test::configure_stage("embedding_similarity", {{"inputs", {"text", "image", "audio"}}}).stage;
  const at::Tensor a = torch::tensor({1.0f, 0.0f, 0.0f}).view({1, 1, 3});
  const at::Tensor b = torch::tensor({1.0f, 1.0f, 0.0f}).view({1, 1, 3});
  auto run = test::run_stage(*stage, {{"text", Value::embedding(a)}, {"image", Value::embedding(b * 3)}});
  const at::Tensor sim = run.outputs.at("similarity").tensor();
  REQUIRE(sim.sizes() == at::IntArrayRef({2, 2}));
  CHECK(sim[0][1].item<double>() == Approx(std::sqrt(0.5)).epsilon(1e-6));
  CHECK(sim[0][0].item<double>() == Approx(1.0));
  const std::string table = run.outputs.at("table").text();
  CHECK(table.find("0.7071") != std::string::npos);
  CHECK(table.find("audio") == std::string::npos);
  CHECK(test::error_code([&] {
          test::run_stage(*stage, {{"text", Value::embedding(a)}, {"image", Value::embedding(torch::ones({1, 1, 4}))}});
        }) == "bad_shape");
  CHECK(test::error_code([&] {
          test::configure_stage("embedding_similarity", {{"inputs", {"x", "x"}}});
        }) == "duplicate_input");
  CHECK(test::run_stage(*stage, {}).outputs.at("table").text().find("no embeddings") != std::string::npos);
}

TEST_CASE("embedding, latent and tensor values save to .safetensors and load back", "[encoder_stages]") {
  const std::string dir = test::fresh_dir("tensor_values");
  const Value e = Value::embedding(torch::randn({2, 3, 4}), torch::ones({2, 3}, torch::kLong))
                      .with_aux("input_embeds", torch::randn({2, 3, 4}));
  const auto saved = save_value(e, dir + "/e.safetensors");
  REQUIRE(saved.size() == 1);
  const Value back = load_media_value(dir + "/e.safetensors", ValueType::Embedding);
  CHECK(torch::equal(back.tensor(), e.tensor()));
  CHECK(torch::equal(back.mask(), e.mask()));
  CHECK(torch::equal(back.aux().at("input_embeds"), e.aux().at("input_embeds")));
  CHECK(test::error_code([&] { load_media_value(dir + "/e.safetensors", ValueType::Latent); }) == "wrong_media_kind");
  CHECK(media_extension_problem(ValueType::Embedding, dir + "/e.png") != "");
  CHECK(media_extension_problem(ValueType::Embedding, dir + "/e.safetensors") == "");
  CHECK(media_extension_problem(ValueType::Image, dir + "/e.safetensors") != "");
}
