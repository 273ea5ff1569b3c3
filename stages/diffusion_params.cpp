#include "stages/diffusion_params.h"

#include <ATen/CPUGeneratorImpl.h>

#include "pipeline/registry.h"

namespace a2a {

std::vector<ParamSpec> diffusion_param_specs(const DiffusionParamDefaults& defaults) {
  std::vector<std::string> schedulers = {"default"};
  for (const auto& name : scheduler_names()) schedulers.push_back(name);
  std::vector<ParamSpec> specs = {
      choice_param("scheduler", "default", schedulers, defaults.scheduler_doc),
      param_spec("scheduler_config", ParamType::Path, "", "scheduler_config.json replacing the model's"),
      ranged_param("steps", ParamType::Int, defaults.steps, 1, 1000, defaults.steps_doc),
      ranged_param("guidance_scale", ParamType::Float, defaults.guidance_scale, 0.0, 100.0,
                   "classifier-free guidance scale; > 1 runs the unconditional pass in the same UNet batch"),
  };
  if (defaults.guidance_rescale) {
    specs.push_back(ranged_param("guidance_rescale", ParamType::Float, 0.0, 0.0, 1.0,
                                 "rescales the guided prediction towards the conditional one's standard deviation"));
  }
  specs.push_back(ranged_param("eta", ParamType::Float, 0.0, 0.0, 1.0, "DDIM's eta (0 = deterministic)"));
  specs.push_back(ranged_param("batch_size", ParamType::Int, 1, 1, 64, defaults.batch_size_doc));
  if (defaults.strength) {
    specs.push_back(
        ranged_param("strength", ParamType::Float, 0.8, 0.0, 1.0,
                     "image-to-image: the fraction of the schedule run from init_latent (1 = ignore the image)"));
  }
  specs.push_back(
      ranged_param("seed", ParamType::Int, -1, -1, 9007199254740991.0,
                   "generator seed, as torch.Generator().manual_seed(seed) in diffusers; -1 = the run's seed"));
  return specs;
}

DiffusionParams DiffusionParams::parse(const Json& params, const DiffusionParamDefaults& defaults) {
  DiffusionParams p;
  p.scheduler = param_string(params, "scheduler");
  if (p.scheduler == "default") p.scheduler.clear();
  p.steps = param_int(params, "steps");
  p.guidance_scale = param_float(params, "guidance_scale");
  if (defaults.guidance_rescale) p.guidance_rescale = param_float(params, "guidance_rescale");
  p.eta = param_float(params, "eta");
  p.batch_size = param_int(params, "batch_size");
  if (defaults.strength) p.strength = param_float(params, "strength");
  p.seed = param_int(params, "seed");
  return p;
}

std::string DiffusionParams::eta_warning(const Scheduler& scheduler) const {
  if (eta > 0 && !scheduler.uses_eta())
    return "eta only affects the DDIM scheduler; it is ignored by " + scheduler.class_name();
  return "";
}

at::Generator DiffusionParams::generator(const RunContext& ctx) const {
  const uint64_t value = seed >= 0 ? static_cast<uint64_t>(seed) : ctx.seed;
  return at::detail::createCPUGenerator(value);
}

SamplingOptions DiffusionParams::sampling_options(const RunContext& ctx) const {
  SamplingOptions options;
  options.num_inference_steps = steps;
  options.guidance_scale = guidance_scale;
  options.guidance_rescale = guidance_rescale;
  options.eta = eta;
  options.strength = strength;
  // The progress hook refers to `ctx`: these options are for this run only.
  const CancellationToken* cancel = ctx.cancel;
  options.is_cancelled = [cancel] { return cancel != nullptr && cancel->cancelled(); };
  options.on_progress = [&ctx](int64_t done, int64_t total) { ctx.report_progress(done, total, "denoising"); };
  return options;
}

}  // namespace a2a
