// A sharded checkpoint's model.safetensors.index.json over two real shards.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz/fuzz_target.h"
#include "weights/safetensors.h"

namespace a2a::fuzz {

namespace {

// Two shards written once per process; the index is the input.
std::string shard_folder() {
  static const std::string folder = [] {
    const std::string dir = scratch_folder() + "/sharded";
    std::filesystem::create_directories(dir);
    save_safetensors_sharded(
        dir, "model", {{"a.weight", at::ones({4, 4})}, {"b.weight", at::ones({4, 4})}, {"c", at::ones({2})}}, 64);
    return dir;
  }();
  return folder;
}

void safetensors_index(const Bytes& input) {
  const std::string index = shard_folder() + "/fuzz.safetensors.index.json";
  scratch_file("sharded/fuzz.safetensors.index.json", input);
  auto checkpoint = SafeTensorsCheckpoint::open(index);
  for (const auto& record : checkpoint->records()) {
    fuzz_check(checkpoint->contains(record.name), "a record of a shard is not in the index");
    checkpoint->tensor(record.name).sum();
  }
  checkpoint->metadata();
  checkpoint->index_metadata();
}

std::vector<std::pair<std::string, Bytes>> safetensors_index_seeds() {
  const std::string index = shard_folder() + "/model.safetensors.index.json";
  return {{"index.json", read_bytes(index)},
          {"missing_shard.json", R"({"metadata": {"total_size": 1}, "weight_map": {"a.weight": "nope.safetensors"}})"},
          {"escape.json", R"({"weight_map": {"a.weight": "../../../../etc/passwd"}})"},
          {"deep.json", std::string(300, '[') + std::string(300, ']')}};
}

}  // namespace

A2A_FUZZ_TARGET("safetensors_index",
                "a sharded checkpoint's *.safetensors.index.json (weight_map, metadata, "
                "shard names) over two real shards",
                safetensors_index, safetensors_index_seeds);

}  // namespace a2a::fuzz
