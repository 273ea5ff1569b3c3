#pragma once
// The sampling parameters that latent_diffusion and audio_diffusion share, defined once (their specs and
// their parsing) so that the two stages cannot drift apart, and their mapping onto the guided sampler.
#include "diffusion/guided_sampler.h"
#include "diffusion/schedulers/scheduler.h"
#include "pipeline/stage.h"

#include <cstdint>
#include <string>
#include <vector>

namespace a2a {

// What differs between the stages' sampling parameters.
struct DiffusionParamDefaults {
  std::string scheduler_doc;  // what the scheduler "default" means for the stage's models
  int64_t steps = 50;
  std::string steps_doc = "denoising steps";
  double guidance_scale = 7.5;
  std::string batch_size_doc;     // what one batch item is ("images per conditioning row")
  bool guidance_rescale = false;  // offers guidance_rescale
  bool strength = false;          // offers strength (image-to-image)
};

// scheduler, scheduler_config, steps, guidance_scale, [guidance_rescale], eta, batch_size, [strength], seed.
// scheduler_config is a path the stage resolves and reads with its model.
std::vector<ParamSpec> diffusion_param_specs(const DiffusionParamDefaults& defaults);

// The values of those parameters.
struct DiffusionParams {
  std::string scheduler;  // empty = the class of the model's scheduler_config.json
  int64_t steps = 50;
  double guidance_scale = 7.5;
  double guidance_rescale = 0.0;
  double eta = 0.0;
  double strength = 0.8;
  int64_t batch_size = 1;
  int64_t seed = -1;  // -1 = the run's seed

  // From a stage's validated, defaults-filled params.
  static DiffusionParams parse(const Json& params, const DiffusionParamDefaults& defaults);

  // The warning for an eta that `scheduler` ignores; empty when there is none.
  std::string eta_warning(const Scheduler& scheduler) const;
  // A run's CPU generator: the seed parameter, else the run's seed.
  at::Generator generator(const RunContext& ctx) const;
  // Steps, guidance, eta, strength, and the run's cancellation and progress as the sampler's hooks; the
  // stage adds the device and the latent geometry or init latent.
  SamplingOptions sampling_options(const RunContext& ctx) const;
};

}  // namespace a2a
