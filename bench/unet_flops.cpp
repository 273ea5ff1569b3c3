#include "bench/unet_flops.h"

#include <string>

namespace a2a::bench {

namespace {

bool contains(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

// The resolution level of a parameter (0 = full latent size), and whether it runs per token at all.
int64_t parameter_level(const std::string& name, int64_t levels, bool* per_token) {
  auto index_after = [&](const std::string& prefix) { return std::stoll(name.substr(prefix.size())); };
  *per_token = !contains(name, "time_emb_proj");
  if (name.rfind("down_blocks.", 0) == 0) return index_after("down_blocks.") + (contains(name, "downsamplers") ? 1 : 0);
  if (name.rfind("up_blocks.", 0) == 0)
    return levels - 1 - index_after("up_blocks.") - (contains(name, "upsamplers") ? 1 : 0);
  if (name.rfind("mid_block", 0) == 0) return levels - 1;
  if (name.rfind("time_embedding", 0) == 0 || name.rfind("class_embedding", 0) == 0) *per_token = false;
  return 0;
}

}  // namespace

double unet_flops_per_sample(const torch::nn::Module& unet, const UNetCallShape& shape) {
  double total = 0;
  for (const auto& p : unet.named_parameters()) {
    const std::string& name = p.key();
    const at::Tensor& w = p.value();
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0 || w.dim() < 2) continue;
    bool per_token = true;
    const int64_t level = parameter_level(name, shape.levels, &per_token);
    const double positions = static_cast<double>((shape.height >> level) * (shape.width >> level));
    const double frames = static_cast<double>(shape.frames);
    const double tokens = per_token ? positions * frames : 1.0;
    const double context = static_cast<double>(shape.context_length);
    const bool temporal = contains(name, "temp_attentions") || name.rfind("transformer_in", 0) == 0;
    const bool cross_kv = contains(name, "attn2.to_k") || contains(name, "attn2.to_v");
    total += 2.0 * static_cast<double>(w.numel()) * (cross_kv && !temporal ? context * frames : tokens);
    const double inner = static_cast<double>(w.size(0));
    if (contains(name, "attn1.to_q.weight") || (temporal && contains(name, "attn2.to_q.weight"))) {
      // Spatial self-attention over the positions of each frame; temporal over the frames of each position.
      total += temporal ? 4.0 * frames * frames * positions * inner : 4.0 * positions * positions * frames * inner;
    } else if (contains(name, "attn2.to_q.weight")) {
      total += 4.0 * positions * context * frames * inner;
    }
  }
  return total;
}

}  // namespace a2a::bench
