// Tokenizer throughput (MB/s of UTF-8 input) on 1 MB of mixed-language text, every family side by side.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "tokenizers/tokenizer.h"

namespace {

namespace fs = std::filesystem;

// CPU seconds of this thread: on a shared machine wall time mostly measures the neighbours.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

fs::path fixtures_dir() {
  if (const char* env = std::getenv("A2A_FIXTURES"); env && *env) return env;
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "fixtures";
}

// About 1 MB of prose, code, numbers and several scripts; deterministic.
std::string mixed_text(size_t target_bytes) {
  const std::vector<std::string> sentences = {
      "The quick brown fox jumps over the lazy dog while the astronaut rides a horse on Mars. ",
      "Once upon a time, there was a little girl named Lily who loved to play outside in the park.\n",
      "Der schnelle braune Fuchs springt \xC3\xBC"
      "ber den faulen Hund; \xC3\xA4hnliche S\xC3\xA4tze sind n\xC3\xBCtzlich. ",
      "Le caf\xC3\xA9 na\xC3\xAF"
      "f du g\xC3\xA9n\xC3\xA9ral \xC3\xA9tait d\xC3\xA9j\xC3\xA0 ferm\xC3\xA9 \xC3\xA0 "
      "l'heure o\xC3\xB9 nous sommes arriv\xC3\xA9s. ",
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80! \xD0\xAD\xD1\x82\xD0\xBE "
      "\xD1\x82\xD0\xB5\xD1\x81\xD1\x82\xD0\xBE\xD0\xB2\xD1\x8B\xD0\xB9 \xD1\x82\xD0\xB5\xD0\xBA\xD1\x81\xD1\x82. ",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88\xE3\x81\xA8"
      "\xE4\xB8\xAD\xE6\x96\x87\xE6\xB5\x8B\xE8\xAF\x95\xEF\xBC\x8C\xE6\xA0\x87\xE7\x82\xB9\xE7\xAC\xA6\xE5\x8F\xB7\xE3\x80\x82 ",
      "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xED\x85\x8D\xEC\x8A\xA4\xED\x8A\xB8 \xEC\x83\x9D\xEC\x84\xB1. ",
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84\xD9\x85. ",
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89\xF0\x9F\x9A\x80 and \xE2\x9D\xA4\xEF\xB8\x8F family "
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 ",
      "for (int i = 0; i < n; ++i) { total += values[i] * 3.14159; }  // 1,000,000 iterations\n",
      "    def forward(self, x):\n        return self.proj(torch.relu(x)) + 42\n",
  };
  std::string text;
  text.reserve(target_bytes + 256);
  uint32_t state = 12345;
  while (text.size() < target_bytes) {
    state = state * 1664525u + 1013904223u;
    text += sentences[(state >> 8) % sentences.size()];
    if ((state >> 20) % 7 == 0) text += std::to_string(state % 100000) + " ";
  }
  return text;
}

void bench_tokenizers() {
  const fs::path root = fixtures_dir();
  struct Entry {
    const char* name;
    std::string path;
    const char* family;
  };
  const std::vector<Entry> entries = {
      {"clip (vocab.json+merges.txt, ftfy)", (root / "tokenizers/clip").string(), "clip"},
      {"gpt2 (vocab.json+merges.txt)", (root / "tokenizers/gpt2").string(), "gpt2"},
      {"llama3 (tokenizer.json, 128k)", (root / "tokenizers/llama3").string(), ""},
      {"roberta (tokenizer.json)", (root / "tokenizers/roberta").string(), ""},
      {"mistral (tokenizer.json, spm-bpe)", (root / "tokenizers/spm_bpe").string(), ""},
      {"llama2 (tokenizer.model)", (root / "tokenizers/llama_spm").string(), ""},
      {"llama2.c (tok512.bin)", (root / "llama2c/tok512.bin").string(), "llama2c"},
  };
  const std::string text = mixed_text(1 << 20);
  // SentencePiece-style models see the whole text as one word; feed them line by line as a chat turn would.
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size();) {
    size_t end =
        std::min(text.size(), text.find('\n', pos) == std::string::npos ? text.size() : text.find('\n', pos) + 1);
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  const double megabytes = static_cast<double>(text.size()) / 1e6;
  std::printf("tokenizers: %.2f MB of mixed-language text, %zu lines, encode() per line\n", megabytes, lines.size());
  std::printf("  %-36s %8s %11s %11s %13s %9s\n", "tokenizer", "load s", "MB/s wall", "MB/s cpu", "MB/s cpu hot",
              "tokens");
  for (const auto& entry : entries) {
    if (!fs::exists(entry.path)) {
      std::printf("  %-36s (fixture %s absent)\n", entry.name, entry.path.c_str());
      continue;
    }
    double c0 = thread_cpu_seconds();
    auto tokenizer = a2a::load_tokenizer(entry.path, entry.family);
    double load = thread_cpu_seconds() - c0;
    size_t tokens = 0;
    auto run = [&] {
      tokens = 0;
      for (const auto& line : lines) tokens += tokenizer->encode(line).size();
    };
    // First pass: empty word caches. Then repeated passes with warm caches.
    auto w0 = std::chrono::steady_clock::now();
    double c1 = thread_cpu_seconds();
    run();
    double cold_cpu = thread_cpu_seconds() - c1;
    double cold_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    double c2 = thread_cpu_seconds();
    const int repeats = 2;
    for (int r = 0; r < repeats; ++r) run();
    double hot_cpu = (thread_cpu_seconds() - c2) / repeats;
    std::printf("  %-36s %8.3f %11.2f %11.2f %13.2f %9zu\n", entry.name, load, megabytes / cold_wall,
                megabytes / cold_cpu, megabytes / hot_cpu, tokens);
  }
}

}  // namespace

A2A_BENCH("tokenizers", bench_tokenizers);
