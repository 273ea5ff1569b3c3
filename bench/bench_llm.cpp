// LLM decoding speed: prefill throughput, KV-cached decode at 32 and 256 tokens of context, and the
// same model decoding without the cache (re-running the whole sequence per token). With the cache a
// step's cost grows slowly with the context; without it, it grows with the whole sequence.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "bench/bench.h"
#include "llm/llama.h"
#include "llm/llama_tiny.h"

namespace {

void bench_llm() {
  torch::NoGradGuard no_grad;
  a2a::LlamaOptions options;
  options.vocab_size = 8192;
  options.hidden_size = 256;
  options.intermediate_size = 688;
  options.num_hidden_layers = 4;
  options.num_attention_heads = 8;
  options.num_key_value_heads = 4;
  options.max_position_embeddings = 1024;
  a2a::LlamaForCausalLM model(options);
  a2a::initialize_tiny_llama_weights(*model, 0);
  model->eval();
  std::printf("model: hidden %lld, %lld layers, %lld heads (%lld kv), vocab %lld, threads %d\n",
              static_cast<long long>(options.hidden_size), static_cast<long long>(options.num_hidden_layers),
              static_cast<long long>(options.num_attention_heads), static_cast<long long>(options.num_key_value_heads),
              static_cast<long long>(options.vocab_size), at::get_num_threads());

  // Each figure is measured with one intra-op thread and with the configured count: on a busy shared
  // machine, OpenMP barriers of the multi-threaded kernels can dominate a small decode step.
  const int configured_threads = at::get_num_threads();
  std::vector<int> thread_counts{1};
  if (configured_threads > 1) thread_counts.push_back(configured_threads);
  for (int threads : thread_counts) {
    at::set_num_threads(threads);
    std::printf("-- %d thread%s\n", threads, threads == 1 ? "" : "s");
    auto ids = at::randint(0, options.vocab_size, {1, 257}, at::kLong);
    const int64_t prefill_len = 256;
    const double prefill_s = a2a::bench::seconds_per_call([&] {
      auto cache = model->new_cache(1, prefill_len);
      a2a::LlamaForwardOptions call;
      call.cache = &cache;
      call.last_logits_only = true;
      model->forward_ids(ids.narrow(1, 0, prefill_len), call);
    });
    std::printf("prefill %lld tokens: %.1f tokens/s\n", static_cast<long long>(prefill_len), prefill_len / prefill_s);

    // The two contexts are timed in alternation, so that a change in machine load hits both alike.
    const int64_t contexts[2] = {32, 256};
    std::vector<a2a::LlamaKVCache> caches;
    for (auto context : contexts) {
      caches.push_back(model->new_cache(1, context + 1));
      a2a::LlamaForwardOptions call;
      call.cache = &caches.back();
      call.last_logits_only = true;
      model->forward_ids(ids.narrow(1, 0, context), call);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    auto timed = [](const std::function<void()>& fn) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::vector<double> cached[2], uncached[2];
    for (int round = 0; round < 12; ++round) {
      for (int i = 0; i < 2; ++i) {
        const int64_t context = contexts[i];
        a2a::LlamaForwardOptions call;
        call.cache = &caches[i];
        call.last_logits_only = true;
        cached[i].push_back(timed([&] {
          caches[i].truncate(context);
          model->forward_ids(ids.narrow(1, context, 1), call);
        }));
        if (round % 3 == 0) {
          a2a::LlamaForwardOptions no_cache;
          no_cache.last_logits_only = true;
          uncached[i].push_back(timed([&] { model->forward_ids(ids.narrow(1, 0, context + 1), no_cache); }));
        }
      }
    }
    double cached_rate[2], uncached_rate[2];
    for (int i = 0; i < 2; ++i) {
      cached_rate[i] = 1.0 / median(cached[i]);
      uncached_rate[i] = 1.0 / median(uncached[i]);
      std::printf(
          "decode at %3lld tokens of context: cached %.1f tokens/s, uncached %.1f tokens/s (cache speed-up %.1fx)\n",
          static_cast<long long>(contexts[i]), cached_rate[i], uncached_rate[i], cached_rate[i] / uncached_rate[i]);
    }
    std::printf("context 32 -> 256 slows a cached step %.2fx and an uncached step %.2fx\n",
                cached_rate[0] / cached_rate[1], uncached_rate[0] / uncached_rate[1]);
  }
  at::set_num_threads(configured_threads);
}

}  // namespace

A2A_BENCH("llm", bench_llm);
