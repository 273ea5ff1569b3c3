// input_projection and output_projection: NExT-GPT's bridges between encoders, the LLM and decoders.
//   input_projection:  encoder embedding [B, N, in] -> LLM-width rows [B, N, out] (a Linear; 1024 -> 4096)
//   output_projection: the LLM's signal-token states [S, K, in] (+ aux input_embeds) -> decoder
//                      conditioning [S, M, out] (linear or transformer mode, see nn/output_projection.h)
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "base/path_query.h"
#include "llm/output_projection.h"
#include "nn/dtype.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace a2a {
namespace {

namespace fs = std::filesystem;

std::string shape_of(const at::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

// The tensors under `prefix` (e.g. "llama_proj." in a NExT-GPT delta checkpoint), renamed without it.
TensorMap tensors_under(const std::string& path, const std::string& prefix) {
  if (!path_exists(path)) throw_input_error("weights_not_found", "projection weights '" + path + "' do not exist");
  TensorMap out;
  for (auto& kv : load_safetensors(path)) {
    if (kv.first.rfind(prefix, 0) == 0) out[kv.first.substr(prefix.size())] = kv.second;
  }
  if (out.empty()) throw_input_error("weights_mismatch", path + " holds no tensor under the prefix '" + prefix + "'");
  return out;
}

// Seeded N(0, 1/fan_in) matrices, 0.1·N biases, 1 + 0.1·N norm scales, N(0, 1) queries.
void initialize_tiny(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (auto& p : module.named_parameters()) {
    at::Tensor& t = p.value();
    const std::string& name = p.key();
    auto noise = at::randn(t.sizes(), generator, t.options().device(at::kCPU)).to(t.device());
    if (name == "query_embs") {
      t.copy_(noise);
    } else if (t.dim() >= 2) {
      t.copy_(noise / std::sqrt(static_cast<double>(t.size(-1))));
    } else if (name.find("norm") != std::string::npos && name.size() > 7 &&
               name.compare(name.size() - 7, 7, ".weight") == 0) {
      t.copy_(1.0 + 0.1 * noise);
    } else {
      t.copy_(0.1 * noise);
    }
  }
}

void load_or_initialize(torch::nn::Module& module, const Json& params, const ConfigureContext& ctx,
                        const std::string& stage_type) {
  const std::string weights = param_string(params, "weights");
  if (weights.empty()) {
    initialize_tiny(module, static_cast<uint64_t>(param_int(params, "tiny_seed")));
  } else {
    const std::string path = ctx.resolve_path(weights);
    LoadOptions load;
    load.source = stage_type + " weights " + path;
    load.device = ctx.device;
    load.dtype = dtype_from_name(ctx.dtype);
    load_state_dict(module, tensors_under(path, param_string(params, "prefix")), load);
  }
  // Seeded weights are drawn in float32 and then cast, so that every dtype starts from the same values.
  cast_floating_point(module, dtype_from_name(ctx.dtype));
  module.to(at::Device(ctx.device));
  module.eval();
}

// ---------------------------------------------------------------------------------------------------
class InputProjectionStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    const int64_t in = param_int(params, "in_dim"), out = param_int(params, "out_dim");
    device_ = ctx.device;
    dtype_ = dtype_from_name(ctx.dtype);
    const std::string key = "input_projection:" + params.dump() + ":" +
                            ctx.resolve_path(param_string(params, "weights")) + ":" + ctx.device + ":" + ctx.dtype;
    auto create = [&] {
      auto linear =
          std::make_shared<torch::nn::LinearImpl>(torch::nn::LinearOptions(in, out).bias(param_bool(params, "bias")));
      load_or_initialize(*linear, params, ctx, "input_projection");
      return linear;
    };
    linear_ = ctx.shared_module<torch::nn::LinearImpl>(key, create);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const Value& value = input(inputs, "embedding");
    at::Tensor x = value.tensor();
    if (x.dim() == 2) x = x.unsqueeze(1);  // one pooled vector per item: [B, D] -> [B, 1, D]
    const int64_t in = linear_->options.in_features();
    if (x.dim() != 3 || x.size(2) != in)
      throw_input_error("bad_embedding", "input_projection: expected an embedding [B, N, " + std::to_string(in) +
                                             "] or [B, " + std::to_string(in) + "]; got " + shape_of(value.tensor()));
    auto y = linear_->forward(x.to(at::Device(device_), dtype_)).to(at::kCPU, at::kFloat);
    ctx.report_progress(1, 1);
    PortValues out;
    out["embedding"] = Value::embedding(y, value.mask());
    return out;
  }

  torch::nn::Module* module() override { return linear_.get(); }

 private:
  std::shared_ptr<torch::nn::LinearImpl> linear_;
  std::string device_ = "cpu";
  at::ScalarType dtype_ = at::kFloat;
};

StageInfo input_projection_info() {
  StageInfo info;
  info.type = "input_projection";
  info.description =
      "Linear map from an encoder's width to the LLM's (NExT-GPT's llama_proj: ImageBind 1024 -> Vicuna 4096). "
      "Weights: a safetensors file with weight/bias under `prefix`; without one, seeded random weights. It computes in "
      "the pipeline's dtype; the embedding comes out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      ranged_param("in_dim", ParamType::Int, 1024, 1, 1 << 20, "encoder width"),
      ranged_param("out_dim", ParamType::Int, 4096, 1, 1 << 20, "LLM width"),
      param_spec("bias", ParamType::Bool, true, "the Linear has a bias"),
      param_spec("weights", ParamType::Path, "", "safetensors file; empty = seeded random weights"),
      param_spec("prefix", ParamType::String, "", "key prefix in the file, e.g. llama_proj."),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the random weights"),
  };
  // Tensor accepts any tensor-carrying value: an embedding [B, N, in] or a pooled tensor [B, in].
  info.ports.inputs = {
      in_port("embedding", ValueType::Tensor, "[B, N, in_dim] embedding or [B, in_dim] pooled vectors")};
  info.ports.outputs = {out_port("embedding", ValueType::Embedding, "[B, N, out_dim], mask kept")};
  info.create = [] { return std::make_unique<InputProjectionStage>(); };
  return info;
}

A2A_REGISTER_STAGE(input_projection_info);

// ---------------------------------------------------------------------------------------------------
class OutputProjectionStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    OutputProjectionOptions options;
    options.mode = param_string(params, "mode");
    options.in_dim = param_int(params, "in_dim");
    options.out_dim = param_int(params, "out_dim");
    options.num_input_tokens = param_int(params, "num_input_tokens");
    options.num_output_tokens = param_int(params, "num_output_tokens");
    options.hidden_dim = param_int(params, "hidden_dim");
    options.nhead = param_int(params, "nhead");
    options.num_encoder_layers = options.num_decoder_layers = param_int(params, "layers");
    options.dim_feedforward = 4 * options.hidden_dim;
    device_ = ctx.device;
    dtype_ = dtype_from_name(ctx.dtype);
    const std::string key = "output_projection:" + params.dump() + ":" +
                            ctx.resolve_path(param_string(params, "weights")) + ":" + ctx.device + ":" + ctx.dtype;
    auto create = [&] {
      auto projection = std::make_shared<OutputProjectionImpl>(options);
      load_or_initialize(*projection, params, ctx, "output_projection");
      return projection;
    };
    projection_ = ctx.shared_module<OutputProjectionImpl>(key, create);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    torch::NoGradGuard no_grad;
    const Value& value = input(inputs, "signal");
    const auto& o = projection_->options;
    at::Tensor hidden = value.tensor();
    if (hidden.dim() != 3 || hidden.size(2) != o.in_dim)
      throw_input_error("bad_signal", "output_projection: expected signal states [S, K, " + std::to_string(o.in_dim) +
                                          "]; got " + shape_of(hidden));
    if (o.mode == "transformer" && hidden.size(1) != o.num_input_tokens)
      ctx.warning("output_projection: " + std::to_string(hidden.size(1)) +
                  " signal rows where the projection was "
                  "trained on " +
                  std::to_string(o.num_input_tokens));
    at::Tensor input_embeds;
    auto aux = value.aux().find("input_embeds");
    if (aux != value.aux().end()) {
      input_embeds = aux->second;
    } else if (o.mode == "transformer") {
      ctx.warning(
          "output_projection: the signal carries no input_embeds aux tensor; projecting the hidden states alone");
    }
    const auto device = at::Device(device_);
    auto y = projection_->forward(hidden.to(device, dtype_),
                                  input_embeds.defined() ? input_embeds.to(device, dtype_) : at::Tensor());
    ctx.report_progress(1, 1);
    PortValues out;
    out["embedding"] = Value::embedding(y.to(at::kCPU, at::kFloat));
    return out;
  }

  torch::nn::Module* module() override { return projection_.get(); }

 private:
  std::shared_ptr<OutputProjectionImpl> projection_;
  std::string device_ = "cpu";
  at::ScalarType dtype_ = at::kFloat;
};

StageInfo output_projection_info() {
  StageInfo info;
  info.type = "output_projection";
  info.description =
      "NExT-GPT's output projection (TextFcLayer): signal-token states of the LLM -> a decoder's conditioning. "
      "transformer: model(tfm(fc(hidden + input_embeds), query_embs)), tfm = torch.nn.Transformer(norm_first) with "
      "`layers` encoder and decoder layers; linear: model(hidden)[:, :M]. Weights: safetensors under `prefix` "
      "(fc, tfm.*, model, query_embs); without a file, seeded random weights. It computes in the pipeline's dtype "
      "(attention softmax in float32); the conditioning comes out in float32.";
  info.dtypes = {"float32", "bfloat16", "float16"};
  info.params = {
      choice_param("mode", "transformer", {"transformer", "linear"}, "projection architecture"),
      ranged_param("in_dim", ParamType::Int, 4096, 1, 1 << 20, "LLM width"),
      ranged_param("out_dim", ParamType::Int, 768, 1, 1 << 20, "decoder conditioning width (SD 1.5: 768)"),
      ranged_param("num_input_tokens", ParamType::Int, 4, 1, 4096, "K signal tokens (image 4, video 24, audio 8)"),
      ranged_param("num_output_tokens", ParamType::Int, 77, 1, 4096,
                   "M conditioning rows (77 for CLIP-conditioned decoders)"),
      ranged_param("hidden_dim", ParamType::Int, 512, 1, 1 << 16, "transformer width"),
      ranged_param("nhead", ParamType::Int, 4, 1, 256, "attention heads"),
      ranged_param("layers", ParamType::Int, 4, 1, 64, "encoder and decoder layers each"),
      param_spec("weights", ParamType::Path, "", "safetensors file; empty = seeded random weights"),
      param_spec("prefix", ParamType::String, "", "key prefix in the file, e.g. gen_text_hidden_fcs.0."),
      ranged_param("tiny_seed", ParamType::Int, 0, 0, 2147483647.0, "seed of the random weights"),
  };
  info.ports.inputs = {in_port("signal", ValueType::Embedding,
                               "[S, K, in_dim] signal states (the llm stage's modality port), aux input_embeds")};
  info.ports.outputs = {out_port("embedding", ValueType::Embedding, "[S, M, out_dim] decoder conditioning")};
  info.create = [] { return std::make_unique<OutputProjectionStage>(); };
  return info;
}

A2A_REGISTER_STAGE(output_projection_info);

}  // namespace
}  // namespace a2a
