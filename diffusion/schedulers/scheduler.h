#pragma once
// Noise schedulers of the diffusers library (0.29.2), reproduced numerically: the timestep and sigma
// tables are computed in float64 where diffusers uses numpy and rounded to float32 where it converts to
// torch; per-step arithmetic is float32 as in torch.
//
// Usage, as diffusers' pipelines do it:
//   scheduler->set_timesteps(n);
//   latents = noise * scheduler->init_noise_sigma();
//   for t in scheduler->timesteps():
//     out = denoiser(scheduler->scale_model_input(latents, t), t);
//     latents = scheduler->step(out, t, latents, generator).prev_sample;
#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace a2a {

struct SchedulerStepOutput {
  at::Tensor prev_sample;
  at::Tensor pred_original_sample;  // undefined for schedulers that do not return one (PNDM, DPM-Solver)
};

// Fields shared by the beta-schedule schedulers, named as in scheduler_config.json. Each scheduler's
// options derive from this and set diffusers' per-class defaults in their constructor.
struct SchedulerOptions {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  std::string beta_schedule = "linear";      // linear | scaled_linear | squaredcos_cap_v2
  std::vector<double> trained_betas;         // empty = none (config null)
  std::string prediction_type = "epsilon";   // epsilon | v_prediction | sample
  std::string timestep_spacing = "leading";  // leading | trailing | linspace
  int64_t steps_offset = 0;
  bool rescale_betas_zero_snr = false;

  // Reads the shared fields present in `config`; absent or null keys keep their current value.
  void read_common(const nlohmann::json& config, const std::string& class_name);
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  virtual std::string class_name() const = 0;
  // Number of model evaluations per timestep entry (1 for every scheduler here).
  virtual int order() const { return 1; }

  virtual void set_timesteps(int64_t num_inference_steps) = 0;
  // int64 for DDPM, DDIM, PNDM, DPM-Solver and UniPC; float32 for the Euler family, as in diffusers.
  const at::Tensor& timesteps() const { return timesteps_; }
  // sigmas (float32, one more than timesteps) for the sigma-based schedulers, undefined otherwise.
  const at::Tensor& sigmas() const { return sigmas_; }
  // float32 [num_train_timesteps]; undefined for flow matching.
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }

  virtual double init_noise_sigma() const { return 1.0; }
  virtual at::Tensor scale_model_input(const at::Tensor& sample, double timestep) {
    (void)timestep;
    return sample;
  }
  // `timestep` is an entry of timesteps(). A generator is needed only by schedulers that draw noise;
  // without one the global generator is used, as torch does.
  virtual SchedulerStepOutput step(const at::Tensor& model_output, double timestep, const at::Tensor& sample,
                                   const std::optional<at::Generator>& generator = std::nullopt) = 0;
  // Forward diffusion of clean samples to `timestep` (img2img).
  virtual at::Tensor add_noise(const at::Tensor& original_samples, const at::Tensor& noise, double timestep) = 0;
  // img2img starts the schedule at this index (diffusers' set_begin_index); ignored by schedulers that
  // look timesteps up directly.
  virtual void set_begin_index(int64_t begin_index) { (void)begin_index; }
  // The eta of DDIM's step (0 = deterministic), which diffusers passes to step() and pipelines fix for a
  // whole run; schedulers without one ignore it and report false from uses_eta().
  virtual bool uses_eta() const { return false; }
  virtual void set_eta(double eta) { (void)eta; }

 protected:
  at::Tensor timesteps_;
  at::Tensor sigmas_;
  at::Tensor alphas_cumprod_;
};

// Creates a scheduler from a diffusers class name ("EulerDiscreteScheduler") or a short name ("euler",
// "euler_ancestral", "ddim", "ddpm", "pndm", "dpmsolver_multistep", "dpmsolver_multistep_karras",
// "flow_match_euler", "unipc") and a scheduler_config.json object. Empty `name_or_class` takes `_class_name` from
// the config. Keys absent from the config get diffusers' defaults for that class. When the name and the
// config's class differ (a different sampler for the same model), the shared fields of the config
// (betas, prediction type, spacing, offset) carry over, as diffusers' from_config does.
std::unique_ptr<Scheduler> make_scheduler(const std::string& name_or_class, const nlohmann::json& config);
std::vector<std::string> scheduler_names();

// Parses a scheduler_config.json file. Python's json module writes non-finite floats as bare
// Infinity / -Infinity / NaN (DPM-Solver's lambda_min_clipped); they are read as the strings
// "Infinity", "-Infinity", "NaN", which the option parsers accept as numbers.
nlohmann::json read_scheduler_config(const std::string& path);

namespace scheduler_detail {

// diffusers' beta schedule, float32.
at::Tensor make_betas(const SchedulerOptions& options, const std::string& class_name);
at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas);
// The sigma schedulers' training table: alphas_cumprod of the options' betas (with a zero terminal SNR the
// last one is lifted to 2^-24, as diffusers does) and sigmas sqrt((1 - a) / a). A schedule whose sigmas
// are not finite (so long that alphas_cumprod underflows, or betas outside (0, 1)) is bad_scheduler_config.
struct SigmaTable {
  at::Tensor alphas_cumprod;
  std::vector<float> sigmas;
};
SigmaTable sigma_table(const SchedulerOptions& options, const std::string& class_name);
// numpy.linspace (float64).
std::vector<double> np_linspace(double start, double stop, int64_t num);
// numpy.arange with a float step (float64).
std::vector<double> np_arange(double start, double stop, double step);
// numpy.round: halves to even.
double np_round(double value);
// numpy.interp with xp = 0, 1, ..., fp.size()-1.
double np_interp_index(double x, const std::vector<double>& fp);
// Karras et al. (2022) sigmas between sigma_max and sigma_min, rho = 7 (float64).
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t num_inference_steps);
// numpy.log of a float32 value as numpy's vectorised x86-64 loops compute it (not the correctly rounded logf).
float np_log_float32(float x);
// np.log(values) of a float32 array: diffusers' log_sigmas table.
std::vector<float> np_log_table(const std::vector<float>& values);
// diffusers' _sigma_to_t: fractional timestep for a sigma by interpolating log-sigmas (float32 table).
double sigma_to_t(double sigma, const std::vector<float>& log_sigmas);
// The integer timesteps of DDPM/DDIM's set_timesteps for leading/trailing/linspace spacing (descending).
std::vector<int64_t> spaced_timesteps(const SchedulerOptions& options, int64_t num_inference_steps);
// The float32 timesteps of the Euler schedulers' set_timesteps (descending, not rounded for linspace).
std::vector<float> spaced_timesteps_float(const SchedulerOptions& options, int64_t num_inference_steps);
// Entry of `timesteps` equal to `timestep`: the second when there are several (diffusers'
// index_for_timestep); -1 when none.
int64_t index_for_timestep(const at::Tensor& timesteps, double timestep);
std::vector<float> to_float_vector(const at::Tensor& tensor);
// float32 N(0, 1) noise as diffusers' randn_tensor draws it with a CPU generator:
// torch.randn(shape, generator=generator).to(device).
at::Tensor draw_noise(at::IntArrayRef shape, const std::optional<at::Generator>& generator,
                      at::Device device = at::kCPU);
void require_prediction_type(const std::string& class_name, const std::string& prediction_type,
                             const std::vector<std::string>& allowed);
void require_no_thresholding(const std::string& class_name, bool thresholding);
void require_timesteps_set(const std::string& class_name, const at::Tensor& timesteps, int64_t num_inference_steps);

// Step-index bookkeeping shared by the sigma-based schedulers (diffusers' _step_index / _begin_index).
class SigmaStepIndex {
 public:
  void reset() {
    step_index_ = -1;
    begin_index_ = -1;
  }
  void set_begin_index(int64_t index) { begin_index_ = index; }
  int64_t begin_index() const { return begin_index_; }
  bool started() const { return step_index_ >= 0; }
  int64_t current() const { return step_index_; }
  // Initialises the index on first use from the timestep; `missing` is the index for a timestep not in
  // the schedule (-1 = error).
  int64_t ensure(const at::Tensor& timesteps, double timestep, const std::string& class_name, int64_t missing = -1);
  void advance() { ++step_index_; }
  // The index add_noise uses: looked up from the timestep unless a begin index was set; `missing` is the
  // index for a timestep not in the schedule (-1 = error).
  int64_t for_add_noise(const at::Tensor& timesteps, double timestep, const std::string& class_name,
                        int64_t missing = -1) const;

 private:
  int64_t step_index_ = -1;
  int64_t begin_index_ = -1;
};

}  // namespace scheduler_detail

}  // namespace a2a
