#pragma once
// The typed values that flow on the DAG's edges, and their tensor layouts.
//
//   type       tensor                      dtype            extra fields
//   ---------  --------------------------  ---------------  ------------------------------------------
//   text       (none)                      -                text()
//   tokens     [B, L] token ids            int64            mask(): optional [B, L] attention mask
//   image      [B, 3, H, W] RGB in [0, 1]  float            -
//   audio      [B, C, T] in [-1, 1]        float            sample_rate()
//   video      [B, T, 3, H, W] RGB [0, 1]  float            fps()
//   embedding  [B, N, D]                   float            mask(): optional [B, N] (1 = valid)
//   latent     [B, C, h, w] (or 5-d video) float            -
//   tensor     any                         any              -
//
// Any value may also carry named auxiliary tensors (aux()), for example the input embeddings
// of the LLM's signal tokens next to their hidden states.
//
// A Value is a cheap handle: copying it shares the payload and never copies tensor data.
#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace a2a {

enum class ValueType { Text, Tokens, Image, Audio, Video, Embedding, Latent, Tensor };

const char* value_type_name(ValueType type);
// Throws a2a::Error (config) for an unknown name.
ValueType value_type_from_name(const std::string& name);
bool value_type_from_name(const std::string& name, ValueType* out);

class Value {
 public:
  Value();  // an empty text value

  static Value text(std::string text);
  static Value tokens(at::Tensor ids, at::Tensor mask = {});
  static Value image(at::Tensor rgb);
  static Value audio(at::Tensor samples, int64_t sample_rate);
  static Value video(at::Tensor frames, double fps);
  static Value embedding(at::Tensor rows, at::Tensor mask = {});
  static Value latent(at::Tensor latent);
  static Value tensor(at::Tensor tensor);

  ValueType type() const { return payload_->type; }
  const std::string& text() const;   // Text only
  const at::Tensor& tensor() const;  // every tensor-carrying type
  const at::Tensor& mask() const { return payload_->mask; }
  int64_t sample_rate() const { return payload_->sample_rate; }
  double fps() const { return payload_->fps; }
  const std::map<std::string, at::Tensor>& aux() const { return payload_->aux; }

  // A new handle with one more auxiliary tensor; this value is unchanged.
  Value with_aux(const std::string& name, at::Tensor tensor) const;

  // A content hash of type, metadata and tensor bytes (cached). Used by the executor's cache.
  uint64_t content_hash() const;

  // The bytes its text and tensors hold: what keeping it costs a cache.
  size_t bytes() const;

  // Human-readable one-line summary, e.g. "image [1,3,64,64] float".
  std::string describe() const;

 private:
  struct Payload {
    ValueType type = ValueType::Text;
    std::string text;
    at::Tensor tensor;
    at::Tensor mask;
    int64_t sample_rate = 0;
    double fps = 0.0;
    std::map<std::string, at::Tensor> aux;
    struct HashCache;
    std::shared_ptr<HashCache> hash;  // computed once, on first use, shared by copies
  };
  explicit Value(std::shared_ptr<const Payload> payload) : payload_(std::move(payload)) {}
  static Value make(Payload payload);

  std::shared_ptr<const Payload> payload_;
};

// Incremental FNV-1a, used for content hashes and cache keys.
uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 1469598103934665603ULL);
uint64_t hash_tensor(const at::Tensor& tensor, uint64_t seed = 1469598103934665603ULL);

}  // namespace a2a
