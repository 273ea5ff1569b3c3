// The guided sampler's options and hooks: eta, cancellation, progress, and guidance off at scale 1.
#include "base/error.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "test_support.h"

#include <ATen/CPUGeneratorImpl.h>

namespace guided_sampler_test {

nlohmann::json sd_like_config() {
  return {{"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}, {"steps_offset", 1},
          {"skip_prk_steps", true},           {"clip_sample", false}};
}

at::Tensor linear_denoiser(const at::Tensor& latent_input, const at::Tensor& timestep) {
  return 0.1 * latent_input + 0.001 * timestep.to(at::kFloat);
}

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// The loop written out by hand without guidance, as diffusers' pipelines run it at guidance_scale <= 1.
at::Tensor unguided_by_hand(a2a::Scheduler& scheduler, int64_t steps, const std::vector<int64_t>& shape,
                            uint64_t seed) {
  at::Generator generator = seeded(seed);
  scheduler.set_timesteps(steps);
  const c10::optional<at::Generator> gen(generator);
  at::Tensor latents = at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)) * scheduler.init_noise_sigma();
  for (int64_t i = 0; i < scheduler.timesteps().size(0); ++i) {
    const at::Tensor t = scheduler.timesteps()[i];
    const double t_value = t.item<double>();
    at::Tensor prediction = linear_denoiser(scheduler.scale_model_input(latents, t_value), t);
    latents = scheduler.step(prediction, t_value, latents, generator).prev_sample;
  }
  return latents;
}

a2a::SamplingOptions unguided_options(int64_t steps) {
  a2a::SamplingOptions options;
  options.num_inference_steps = steps;
  options.guidance_scale = 1.0;
  options.latent_shape = {1, 4, 4, 4};
  return options;
}

}  // namespace guided_sampler_test

using namespace guided_sampler_test;

TEST_CASE("guided sampler: eta reaches DDIM through the options and is ignored elsewhere", "[guided_sampler]") {
  a2a::SamplingOptions options = unguided_options(4);
  options.eta = 0.7;
  auto ddim = a2a::make_scheduler("ddim", sd_like_config());
  REQUIRE(ddim->uses_eta());
  const at::Tensor with_eta = a2a::run_guided_sampling(*ddim, linear_denoiser, options, seeded(9));

  auto by_hand = a2a::make_scheduler("ddim", sd_like_config());
  by_hand->set_eta(0.7);
  CHECK(at::equal(with_eta, unguided_by_hand(*by_hand, 4, options.latent_shape, 9)));
  auto deterministic = a2a::make_scheduler("ddim", sd_like_config());
  CHECK_FALSE(at::equal(with_eta, unguided_by_hand(*deterministic, 4, options.latent_shape, 9)));

  // A fresh run with eta 0 on the same scheduler object is deterministic DDIM again.
  options.eta = 0.0;
  auto zero = a2a::make_scheduler("ddim", sd_like_config());
  CHECK(at::equal(a2a::run_guided_sampling(*ddim, linear_denoiser, options, seeded(9)),
                  unguided_by_hand(*zero, 4, options.latent_shape, 9)));

  for (const char* name : {"euler", "pndm", "dpmsolver_multistep"}) {
    INFO(name);
    auto scheduler = a2a::make_scheduler(name, sd_like_config());
    CHECK_FALSE(scheduler->uses_eta());
    options.eta = 0.9;
    const at::Tensor ignored = a2a::run_guided_sampling(*scheduler, linear_denoiser, options, seeded(4));
    options.eta = 0.0;
    auto again = a2a::make_scheduler(name, sd_like_config());
    CHECK(at::equal(ignored, a2a::run_guided_sampling(*again, linear_denoiser, options, seeded(4))));
  }
}

TEST_CASE("guided sampler: the cancellation hook stops the loop with the cancelled error", "[guided_sampler]") {
  auto scheduler = a2a::make_scheduler("ddim", sd_like_config());
  a2a::SamplingOptions options = unguided_options(6);
  int64_t calls = 0;
  int64_t polls = 0;
  a2a::Denoiser counting = [&](const at::Tensor& x, const at::Tensor& t) {
    ++calls;
    return linear_denoiser(x, t);
  };
  options.is_cancelled = [&] { return ++polls > 2; };
  try {
    a2a::run_guided_sampling(*scheduler, counting, options, seeded(0));
    FAIL("a cancelled loop must throw");
  } catch (const a2a::Error& e) {
    CHECK(e.kind() == a2a::ErrorKind::Cancelled);
  }
  // Polled before every step: two steps ran, the third never started.
  CHECK(calls == 2);
  CHECK(polls == 3);
}

TEST_CASE("guided sampler: progress counts the steps run", "[guided_sampler]") {
  std::vector<std::pair<int64_t, int64_t>> seen;
  a2a::SamplingOptions options = unguided_options(5);
  options.on_progress = [&](int64_t done, int64_t total) { seen.emplace_back(done, total); };
  auto ddim = a2a::make_scheduler("ddim", sd_like_config());
  a2a::run_guided_sampling(*ddim, linear_denoiser, options, seeded(1));
  CHECK(seen == std::vector<std::pair<int64_t, int64_t>>{{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}});

  // Image-to-image counts only the steps that strength leaves: 10 steps at 0.3 run 3.
  seen.clear();
  options.num_inference_steps = 10;
  options.init_latent = at::zeros({1, 4, 4, 4});
  options.strength = 0.3;
  auto img2img = a2a::make_scheduler("ddim", sd_like_config());
  a2a::run_guided_sampling(*img2img, linear_denoiser, options, seeded(1));
  CHECK(seen == std::vector<std::pair<int64_t, int64_t>>{{1, 3}, {2, 3}, {3, 3}});
}

TEST_CASE("guided sampler: guidance_scale 1 is an unguided run", "[guided_sampler]") {
  for (const std::string& name : a2a::scheduler_names()) {
    INFO(name);
    a2a::SamplingOptions options = unguided_options(4);
    int64_t rows = 0;
    a2a::Denoiser single = [&](const at::Tensor& x, const at::Tensor& t) {
      rows = x.size(0);
      return linear_denoiser(x, t);
    };
    auto scheduler = a2a::make_scheduler(name, sd_like_config());
    const at::Tensor at_one = a2a::run_guided_sampling(*scheduler, single, options, seeded(21));
    // One pass per step on the B rows: no unconditional half.
    CHECK(rows == 1);
    auto reference = a2a::make_scheduler(name, sd_like_config());
    CHECK(at::equal(at_one, unguided_by_hand(*reference, 4, options.latent_shape, 21)));
  }
  at::Tensor negative = at::zeros({1, 3});
  at::Tensor positive = at::ones({1, 3});
  CHECK(at::equal(a2a::guidance_conditioning(negative, positive, 1.0), positive));
  CHECK(at::equal(a2a::guidance_conditioning(negative, positive, 7.5), at::cat({negative, positive}, 0)));
}
