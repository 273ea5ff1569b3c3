#include "diffusion/schedulers/scheduler.h"

#include "base/error.h"
#include "base/json_parse.h"
#include "diffusion/schedulers/ddim_scheduler.h"
#include "diffusion/schedulers/ddpm_scheduler.h"
#include "diffusion/schedulers/dpmsolver_multistep_scheduler.h"
#include "diffusion/schedulers/euler_ancestral_scheduler.h"
#include "diffusion/schedulers/euler_discrete_scheduler.h"
#include "diffusion/schedulers/flow_match_euler_scheduler.h"
#include "diffusion/schedulers/pndm_scheduler.h"
#include "diffusion/schedulers/scheduler_config.h"
#include "diffusion/schedulers/unipc_multistep_scheduler.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace a2a {

void SchedulerOptions::read_common(const nlohmann::json& config, const std::string& class_name) {
  using scheduler_config::read;
  read(config, "num_train_timesteps", num_train_timesteps, class_name);
  read(config, "beta_start", beta_start, class_name);
  read(config, "beta_end", beta_end, class_name);
  read(config, "beta_schedule", beta_schedule, class_name);
  read(config, "trained_betas", trained_betas, class_name);
  read(config, "prediction_type", prediction_type, class_name);
  read(config, "timestep_spacing", timestep_spacing, class_name);
  read(config, "steps_offset", steps_offset, class_name);
  read(config, "rescale_betas_zero_snr", rescale_betas_zero_snr, class_name);
  scheduler_config::check_train_timesteps(num_train_timesteps, class_name);
  if (!trained_betas.empty() && static_cast<int64_t>(trained_betas.size()) != num_train_timesteps)
    throw_input_error("bad_scheduler_config", class_name + ": trained_betas has " +
                                                  std::to_string(trained_betas.size()) + " entries, expected " +
                                                  std::to_string(num_train_timesteps) + " (num_train_timesteps)");
}

namespace scheduler_detail {

namespace {

double alpha_bar_cosine(double t) {
  double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
  return c * c;
}

}  // namespace

SigmaTable sigma_table(const SchedulerOptions& options, const std::string& class_name) {
  at::Tensor betas = make_betas(options, class_name);
  if (options.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  SigmaTable table;
  table.alphas_cumprod = at::cumprod(1.0 - betas, 0);
  if (options.rescale_betas_zero_snr) table.alphas_cumprod[-1] = std::pow(2.0, -24);
  table.sigmas = to_float_vector(((1 - table.alphas_cumprod) / table.alphas_cumprod).pow(0.5));
  for (size_t t = 0; t < table.sigmas.size(); ++t) {
    if (!std::isfinite(table.sigmas[t]))
      throw_input_error("bad_scheduler_config",
                        class_name + ": the noise schedule is degenerate: sigma at training step " + std::to_string(t) +
                            " of " + std::to_string(table.sigmas.size()) + " is not finite (alphas_cumprod " +
                            std::to_string(table.alphas_cumprod[t].item<double>()) + ")");
  }
  return table;
}

at::Tensor make_betas(const SchedulerOptions& options, const std::string& class_name) {
  const int64_t n = options.num_train_timesteps;
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  if (!options.trained_betas.empty()) return at::tensor(options.trained_betas, at::kDouble).to(at::kFloat);
  if (options.beta_schedule == "linear") return at::linspace(options.beta_start, options.beta_end, n, f32);
  if (options.beta_schedule == "scaled_linear")
    return at::linspace(std::pow(options.beta_start, 0.5), std::pow(options.beta_end, 0.5), n, f32).pow(2);
  if (options.beta_schedule == "squaredcos_cap_v2") {
    std::vector<double> betas(n);
    for (int64_t i = 0; i < n; ++i) {
      double t1 = static_cast<double>(i) / n;
      double t2 = static_cast<double>(i + 1) / n;
      betas[i] = std::min(1 - alpha_bar_cosine(t2) / alpha_bar_cosine(t1), 0.999);
    }
    return at::tensor(betas, at::kDouble).to(at::kFloat);
  }
  if (options.beta_schedule == "sigmoid" && class_name == "DDPMScheduler")
    return at::sigmoid(at::linspace(-6, 6, n, f32)) * (options.beta_end - options.beta_start) + options.beta_start;
  throw_input_error("bad_scheduler_config", class_name + ": beta_schedule '" + options.beta_schedule +
                                                "' is not supported (linear, scaled_linear, squaredcos_cap_v2)");
}

at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas) {
  at::Tensor alphas = 1.0 - betas;
  at::Tensor alphas_cumprod = at::cumprod(alphas, 0);
  at::Tensor alphas_bar_sqrt = alphas_cumprod.sqrt();
  at::Tensor first = alphas_bar_sqrt[0].clone();
  at::Tensor last = alphas_bar_sqrt[-1].clone();
  alphas_bar_sqrt -= last;
  alphas_bar_sqrt *= first / (first - last);
  at::Tensor alphas_bar = alphas_bar_sqrt.pow(2);
  at::Tensor ratios = alphas_bar.slice(0, 1) / alphas_bar.slice(0, 0, -1);
  return 1 - at::cat({alphas_bar.slice(0, 0, 1), ratios});
}

std::vector<double> np_linspace(double start, double stop, int64_t num) {
  std::vector<double> values;
  if (num <= 0) return values;
  values.resize(num);
  if (num == 1) {
    values[0] = start;
    return values;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) values[i] = static_cast<double>(i) * step + start;
  values[num - 1] = stop;
  return values;
}

std::vector<double> np_arange(double start, double stop, double step) {
  std::vector<double> values;
  double length = std::ceil((stop - start) / step);
  if (!(length > 0)) return values;
  values.resize(static_cast<size_t>(length));
  values[0] = start;
  // numpy fills from the first two values: start + i * ((start + step) - start).
  const double delta = (start + step) - start;
  for (size_t i = 1; i < values.size(); ++i) values[i] = start + static_cast<double>(i) * delta;
  return values;
}

double np_round(double value) {
  // nearbyint rounds halves to even under the default rounding mode, like numpy.round.
  return std::nearbyint(value);
}

double np_interp_index(double x, const std::vector<double>& fp) {
  const int64_t n = static_cast<int64_t>(fp.size());
  if (x <= 0) return fp.front();
  if (x >= static_cast<double>(n - 1)) return fp.back();
  int64_t j = static_cast<int64_t>(std::floor(x));
  if (static_cast<double>(j) == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / 1.0;
  return slope * (x - static_cast<double>(j)) + fp[j];
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int64_t num_inference_steps) {
  const double rho = 7.0;
  std::vector<double> ramp = np_linspace(0, 1, num_inference_steps);
  const double min_inv_rho = std::pow(sigma_min, 1 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1 / rho);
  std::vector<double> sigmas(ramp.size());
  for (size_t i = 0; i < ramp.size(); ++i)
    sigmas[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), rho);
  return sigmas;
}

float np_log_float32(float x) {
  // numpy >= 1.22 evaluates float32 log on x86-64 (AVX2/FMA3, AVX512F loops) with its own rational approximation,
  // which is up to a few ulp from the correctly rounded logf. diffusers takes log(sigmas) of a float32 table with
  // it, and _sigma_to_t interpolates in that table: at a sigma equal to a table entry the choice of the bracketing
  // pair, and so the timestep's last bits, depend on those ulp. x = m * 2^e, m in (sqrt(1/2), sqrt(2)];
  // log x = e * ln 2 + P(m - 1) / Q(m - 1), each step rounded to float32 with fused multiply-adds.
  if (!(x > 0.0f) || std::isinf(x)) return std::log(x);
  static constexpr float p[] = {0.0f,
                                9.999999999999998702752e-01f,
                                2.112677543073053063722e+00f,
                                1.480000633576506585156e+00f,
                                3.808837741388407920751e-01f,
                                2.589979117907922693523e-02f};
  static constexpr float q[] = {1.0f,
                                2.612677543073109236779e+00f,
                                2.453006071784736363091e+00f,
                                9.864942958519418960339e-01f,
                                1.546476374983906719538e-01f,
                                5.875095403124574342950e-03f};
  int exponent = 0;
  float m = std::frexp(x, &exponent);  // m in [0.5, 1)
  float e = static_cast<float>(exponent);
  if (m <= 0.707106781186547524400844362104849039f) {
    m = m + m;
    e = e - 1.0f;
  }
  const float t = m - 1.0f;
  float num = std::fma(p[5], t, p[4]);
  float den = std::fma(q[5], t, q[4]);
  for (int i = 3; i >= 0; --i) {
    num = std::fma(num, t, p[i]);
    den = std::fma(den, t, q[i]);
  }
  return std::fma(e, 0.693147180559945309417232121458176568f, num / den);
}

std::vector<float> np_log_table(const std::vector<float>& values) {
  std::vector<float> logs(values.size());
  for (size_t i = 0; i < values.size(); ++i) logs[i] = np_log_float32(values[i]);
  return logs;
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigmas) {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const int64_t n = static_cast<int64_t>(log_sigmas.size());
  // numpy computes in float32 wherever a float64 scalar meets a float32 array (value-based casting): the
  // distances, and the weight too, since the bracketing entries are 1-element arrays log_sigmas[low_idx]. It takes
  // the last index whose distance is non-negative. Only t = (1 - w) * low_idx + w * high_idx is float64.
  const float log_sigma_f = static_cast<float>(log_sigma);
  int64_t low_idx = 0;
  for (int64_t i = 0; i < n; ++i)
    if (log_sigma_f - log_sigmas[i] >= 0.0f) low_idx = i;
  low_idx = std::min(low_idx, n - 2);
  const int64_t high_idx = low_idx + 1;
  const float low = log_sigmas[low_idx];
  const float high = log_sigmas[high_idx];
  float w = (low - log_sigma_f) / (low - high);
  w = std::min(std::max(w, 0.0f), 1.0f);
  return static_cast<double>(1.0f - w) * static_cast<double>(low_idx) +
         static_cast<double>(w) * static_cast<double>(high_idx);
}

namespace {

void require_spacing(const SchedulerOptions& options, int64_t num_inference_steps) {
  if (num_inference_steps < 1)
    throw_input_error("bad_steps",
                      "the number of inference steps must be at least 1, got " + std::to_string(num_inference_steps));
  if (num_inference_steps > options.num_train_timesteps)
    throw_input_error("bad_steps", "the number of inference steps (" + std::to_string(num_inference_steps) +
                                       ") cannot exceed num_train_timesteps (" +
                                       std::to_string(options.num_train_timesteps) + ")");
  if (options.timestep_spacing != "leading" && options.timestep_spacing != "trailing" &&
      options.timestep_spacing != "linspace")
    throw_input_error("bad_scheduler_config", "timestep_spacing '" + options.timestep_spacing +
                                                  "' is not supported: choose linspace, leading or trailing");
}

}  // namespace

std::vector<int64_t> spaced_timesteps(const SchedulerOptions& options, int64_t num_inference_steps) {
  require_spacing(options, num_inference_steps);
  const int64_t train = options.num_train_timesteps;
  std::vector<int64_t> timesteps;
  if (options.timestep_spacing == "linspace") {
    for (double v : np_linspace(0, static_cast<double>(train - 1), num_inference_steps))
      timesteps.push_back(static_cast<int64_t>(np_round(v)));
    std::reverse(timesteps.begin(), timesteps.end());
  } else if (options.timestep_spacing == "leading") {
    const int64_t step_ratio = train / num_inference_steps;
    for (int64_t i = num_inference_steps - 1; i >= 0; --i) timesteps.push_back(i * step_ratio + options.steps_offset);
  } else {
    const double step_ratio = static_cast<double>(train) / static_cast<double>(num_inference_steps);
    for (double v : np_arange(static_cast<double>(train), 0, -step_ratio))
      timesteps.push_back(static_cast<int64_t>(np_round(v)) - 1);
  }
  return timesteps;
}

std::vector<float> spaced_timesteps_float(const SchedulerOptions& options, int64_t num_inference_steps) {
  require_spacing(options, num_inference_steps);
  const int64_t train = options.num_train_timesteps;
  std::vector<float> timesteps;
  if (options.timestep_spacing == "linspace") {
    for (double v : np_linspace(0, static_cast<double>(train - 1), num_inference_steps))
      timesteps.push_back(static_cast<float>(v));
    std::reverse(timesteps.begin(), timesteps.end());
  } else if (options.timestep_spacing == "leading") {
    const int64_t step_ratio = train / num_inference_steps;
    for (int64_t i = num_inference_steps - 1; i >= 0; --i)
      timesteps.push_back(static_cast<float>(i * step_ratio) + static_cast<float>(options.steps_offset));
  } else {
    const double step_ratio = static_cast<double>(train) / static_cast<double>(num_inference_steps);
    for (double v : np_arange(static_cast<double>(train), 0, -step_ratio))
      timesteps.push_back(static_cast<float>(np_round(v)) - 1.0f);
  }
  return timesteps;
}

int64_t index_for_timestep(const at::Tensor& timesteps, double timestep) {
  at::Tensor values = timesteps.to(at::kDouble).contiguous();
  const double* data = values.data_ptr<double>();
  std::vector<int64_t> matches;
  for (int64_t i = 0; i < values.numel(); ++i)
    if (data[i] == timestep) matches.push_back(i);
  if (matches.empty()) return -1;
  return matches.size() > 1 ? matches[1] : matches[0];
}

std::vector<float> to_float_vector(const at::Tensor& tensor) {
  at::Tensor values = tensor.to(at::kFloat).contiguous();
  return std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
}

at::Tensor draw_noise(at::IntArrayRef shape, const std::optional<at::Generator>& generator, at::Device device) {
  c10::optional<at::Generator> gen;
  if (generator) gen = *generator;
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)).to(device);
}

void require_prediction_type(const std::string& class_name, const std::string& prediction_type,
                             const std::vector<std::string>& allowed) {
  for (const auto& name : allowed)
    if (name == prediction_type) return;
  std::string list;
  for (const auto& name : allowed) list += (list.empty() ? "" : ", ") + name;
  throw_input_error("bad_scheduler_config",
                    class_name + ": prediction_type '" + prediction_type + "' is not supported (" + list + ")");
}

void require_no_thresholding(const std::string& class_name, bool thresholding) {
  if (thresholding)
    throw_input_error("bad_scheduler_config",
                      class_name +
                          ": thresholding (dynamic thresholding for pixel-space models) is not supported; "
                          "set \"thresholding\": false");
}

void require_timesteps_set(const std::string& class_name, const at::Tensor& timesteps, int64_t num_inference_steps) {
  if (!timesteps.defined() || num_inference_steps <= 0)
    throw_input_error("scheduler_not_ready", class_name + ": set_timesteps must be called before step");
}

int64_t SigmaStepIndex::ensure(const at::Tensor& timesteps, double timestep, const std::string& class_name,
                               int64_t missing) {
  if (step_index_ >= 0) return step_index_;
  if (begin_index_ >= 0) {
    step_index_ = begin_index_;
    return step_index_;
  }
  int64_t index = index_for_timestep(timesteps, timestep);
  if (index < 0) index = missing;
  if (index < 0)
    throw_input_error("bad_timestep", class_name + ": timestep " + std::to_string(timestep) +
                                          " is not in the schedule set by set_timesteps");
  step_index_ = index;
  return step_index_;
}

int64_t SigmaStepIndex::for_add_noise(const at::Tensor& timesteps, double timestep, const std::string& class_name,
                                      int64_t missing) const {
  if (begin_index_ >= 0) return step_index_ >= 0 ? step_index_ : begin_index_;
  const int64_t index = index_for_timestep(timesteps, timestep);
  if (index < 0 && missing >= 0) return missing;
  if (index < 0)
    throw_input_error("bad_timestep", class_name + ": timestep " + std::to_string(timestep) +
                                          " is not in the schedule set by set_timesteps");
  return index;
}

}  // namespace scheduler_detail

namespace {

struct SchedulerName {
  const char* short_name;
  const char* class_name;
  bool karras;
};

const SchedulerName kSchedulerNames[] = {
    {"ddpm", "DDPMScheduler", false},
    {"ddim", "DDIMScheduler", false},
    {"pndm", "PNDMScheduler", false},
    {"euler", "EulerDiscreteScheduler", false},
    {"euler_karras", "EulerDiscreteScheduler", true},
    {"euler_ancestral", "EulerAncestralDiscreteScheduler", false},
    {"dpmsolver_multistep", "DPMSolverMultistepScheduler", false},
    {"dpmsolver_multistep_karras", "DPMSolverMultistepScheduler", true},
    {"flow_match_euler", "FlowMatchEulerDiscreteScheduler", false},
    {"unipc", "UniPCMultistepScheduler", false},
};

}  // namespace

std::vector<std::string> scheduler_names() {
  std::vector<std::string> names;
  for (const auto& entry : kSchedulerNames) names.push_back(entry.short_name);
  return names;
}

nlohmann::json read_scheduler_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("file_not_found", "cannot open scheduler configuration " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::string quoted;
  quoted.reserve(text.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      quoted += c;
      if (c == '\\' && i + 1 < text.size()) {
        quoted += text[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      quoted += c;
      continue;
    }
    bool replaced = false;
    for (const char* token : {"-Infinity", "Infinity", "NaN"}) {
      const size_t length = std::char_traits<char>::length(token);
      if (text.compare(i, length, token) == 0) {
        quoted += std::string("\"") + token + "\"";
        i += length - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) quoted += c;
  }
  try {
    return parse_json_bounded(quoted, path);
  } catch (const nlohmann::json::exception& e) {
    throw_input_error("bad_scheduler_config", path + ": not valid JSON: " + e.what());
  }
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& name_or_class, const nlohmann::json& config) {
  if (!config.is_object() && !config.is_null())
    throw_input_error("bad_scheduler_config", "a scheduler configuration must be a JSON object");
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& cfg = config.is_object() ? config : empty;

  std::string class_name = name_or_class;
  bool karras = false;
  if (class_name.empty()) {
    if (!cfg.contains("_class_name") || !cfg["_class_name"].is_string())
      throw_input_error("bad_scheduler_config",
                        "no scheduler named and the scheduler configuration has no _class_name");
    class_name = cfg["_class_name"].get<std::string>();
  }
  for (const auto& entry : kSchedulerNames) {
    if (class_name == entry.short_name) {
      class_name = entry.class_name;
      karras = entry.karras;
      break;
    }
  }

  if (class_name == "DDPMScheduler") return std::make_unique<DDPMScheduler>(DDPMSchedulerOptions::from_json(cfg));
  if (class_name == "DDIMScheduler") return std::make_unique<DDIMScheduler>(DDIMSchedulerOptions::from_json(cfg));
  if (class_name == "PNDMScheduler") return std::make_unique<PNDMScheduler>(PNDMSchedulerOptions::from_json(cfg));
  if (class_name == "EulerDiscreteScheduler") {
    auto options = EulerDiscreteSchedulerOptions::from_json(cfg);
    if (karras) options.use_karras_sigmas = true;
    return std::make_unique<EulerDiscreteScheduler>(options);
  }
  if (class_name == "EulerAncestralDiscreteScheduler")
    return std::make_unique<EulerAncestralDiscreteScheduler>(EulerAncestralDiscreteSchedulerOptions::from_json(cfg));
  if (class_name == "DPMSolverMultistepScheduler") {
    auto options = DPMSolverMultistepSchedulerOptions::from_json(cfg);
    if (karras) options.use_karras_sigmas = true;
    return std::make_unique<DPMSolverMultistepScheduler>(options);
  }
  if (class_name == "FlowMatchEulerDiscreteScheduler")
    return std::make_unique<FlowMatchEulerDiscreteScheduler>(FlowMatchEulerDiscreteSchedulerOptions::from_json(cfg));
  if (class_name == "UniPCMultistepScheduler")
    return std::make_unique<UniPCMultistepScheduler>(UniPCMultistepSchedulerOptions::from_json(cfg));

  std::string known;
  for (const auto& entry : kSchedulerNames) known += std::string(known.empty() ? "" : ", ") + entry.short_name;
  throw_input_error("unknown_scheduler",
                    "unknown scheduler '" + class_name + "'; known: " + known + " (or their diffusers class names)");
}

}  // namespace a2a
