// Scheduler step cost on a Stable Diffusion 512 px latent ([1, 4, 64, 64]), each sampler side by side,
// next to the classifier-free guidance combine that precedes every step. All are tiny next to one UNet
// call (hundreds of GFLOP), which is the point: the samplers can be swapped freely.
#include "bench/bench.h"
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>

namespace {

void bench_scheduler() {
  const nlohmann::json config = {
      {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085}, {"beta_end", 0.012}, {"steps_offset", 1},
      {"skip_prk_steps", true},           {"clip_sample", false}};
  const int64_t steps = 25;
  at::Tensor noise = at::randn({1, 4, 64, 64});
  at::Tensor model_output = at::randn({1, 4, 64, 64});
  std::printf("scheduler step on [1,4,64,64], %lld steps per run\n", static_cast<long long>(steps));
  double reference = 0;
  for (const std::string& name : a2a::scheduler_names()) {
    auto scheduler = a2a::make_scheduler(name, config);
    const double seconds = a2a::bench::seconds_per_call([&] {
      scheduler->set_timesteps(steps);
      auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
      at::Tensor sample = noise * scheduler->init_noise_sigma();
      for (int64_t i = 0; i < scheduler->timesteps().size(0); ++i) {
        const double t = scheduler->timesteps()[i].item<double>();
        at::Tensor input = scheduler->scale_model_input(sample, t);
        sample = scheduler->step(model_output + 0 * input, t, sample, generator).prev_sample;
      }
    });
    const double per_step = seconds / static_cast<double>(steps);
    if (reference == 0) reference = per_step;
    std::printf("  %-28s %8.3f ms/step  (x%.2f of %s)\n", name.c_str(), per_step * 1e3, per_step / reference,
                a2a::scheduler_names().front().c_str());
  }
  at::Tensor both = at::randn({2, 4, 64, 64});
  const double guidance = a2a::bench::seconds_per_call([&] { a2a::classifier_free_guidance(both, 7.5, 0.0); });
  std::printf("  %-28s %8.3f ms/step  (x%.2f of %s)\n", "classifier-free guidance", guidance * 1e3,
              guidance / reference, a2a::scheduler_names().front().c_str());
}

}  // namespace

A2A_BENCH("scheduler", bench_scheduler);
