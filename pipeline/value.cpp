#include "pipeline/value.h"

#include <ATen/ATen.h>

#include <cstring>
#include <mutex>
#include <sstream>

#include "base/error.h"

namespace a2a {

struct Value::Payload::HashCache {
  std::once_flag once;
  uint64_t value = 0;
};

namespace {
const char* const kTypeNames[] = {"text", "tokens", "image", "audio", "video", "embedding", "latent", "tensor"};
}

const char* value_type_name(ValueType type) { return kTypeNames[static_cast<int>(type)]; }

bool value_type_from_name(const std::string& name, ValueType* out) {
  for (int i = 0; i < 8; ++i) {
    if (name == kTypeNames[i]) {
      *out = static_cast<ValueType>(i);
      return true;
    }
  }
  return false;
}

ValueType value_type_from_name(const std::string& name) {
  ValueType type;
  if (!value_type_from_name(name, &type)) {
    throw_config_error(
        "unknown_value_type",
        "unknown value type '" + name + "' (expected text, tokens, image, audio, video, embedding, latent or tensor)");
  }
  return type;
}

Value::Value() : Value(make(Payload{})) {}

Value Value::make(Payload payload) {
  payload.hash = std::make_shared<Payload::HashCache>();
  return Value(std::make_shared<const Payload>(std::move(payload)));
}

static void require_rank(const at::Tensor& t, int64_t rank, const char* what) {
  if (!t.defined() || t.dim() != rank) {
    throw_input_error("bad_value_shape", std::string(what) + " value needs a " + std::to_string(rank) +
                                             "-d tensor, got " +
                                             (t.defined() ? std::to_string(t.dim()) + "-d" : "none"));
  }
}

Value Value::text(std::string text) {
  Payload p;
  p.type = ValueType::Text;
  p.text = std::move(text);
  return make(std::move(p));
}

Value Value::tokens(at::Tensor ids, at::Tensor mask) {
  require_rank(ids, 2, "tokens");
  Payload p;
  p.type = ValueType::Tokens;
  p.tensor = std::move(ids);
  p.mask = std::move(mask);
  return make(std::move(p));
}

Value Value::image(at::Tensor rgb) {
  require_rank(rgb, 4, "image");
  if (rgb.size(1) != 3) {
    throw_input_error("bad_value_shape",
                      "image value needs [B,3,H,W], got channel size " + std::to_string(rgb.size(1)));
  }
  Payload p;
  p.type = ValueType::Image;
  p.tensor = std::move(rgb);
  return make(std::move(p));
}

Value Value::audio(at::Tensor samples, int64_t sample_rate) {
  require_rank(samples, 3, "audio");
  if (sample_rate <= 0) throw_input_error("bad_sample_rate", "audio value needs a positive sample rate");
  Payload p;
  p.type = ValueType::Audio;
  p.tensor = std::move(samples);
  p.sample_rate = sample_rate;
  return make(std::move(p));
}

Value Value::video(at::Tensor frames, double fps) {
  require_rank(frames, 5, "video");
  if (frames.size(2) != 3) {
    throw_input_error("bad_value_shape",
                      "video value needs [B,T,3,H,W], got channel size " + std::to_string(frames.size(2)));
  }
  if (!(fps > 0)) throw_input_error("bad_fps", "video value needs a positive frame rate");
  Payload p;
  p.type = ValueType::Video;
  p.tensor = std::move(frames);
  p.fps = fps;
  return make(std::move(p));
}

Value Value::embedding(at::Tensor rows, at::Tensor mask) {
  require_rank(rows, 3, "embedding");
  Payload p;
  p.type = ValueType::Embedding;
  p.tensor = std::move(rows);
  p.mask = std::move(mask);
  return make(std::move(p));
}

Value Value::latent(at::Tensor latent) {
  if (!latent.defined() || latent.dim() < 3) {
    throw_input_error("bad_value_shape", "latent value needs a tensor of at least 3 dimensions");
  }
  Payload p;
  p.type = ValueType::Latent;
  p.tensor = std::move(latent);
  return make(std::move(p));
}

Value Value::tensor(at::Tensor tensor) {
  if (!tensor.defined()) throw_input_error("bad_value_shape", "tensor value needs a defined tensor");
  Payload p;
  p.type = ValueType::Tensor;
  p.tensor = std::move(tensor);
  return make(std::move(p));
}

const std::string& Value::text() const {
  if (payload_->type != ValueType::Text) {
    throw Error(ErrorKind::Internal, "value_type",
                std::string("asked for text of a ") + value_type_name(payload_->type) + " value");
  }
  return payload_->text;
}

const at::Tensor& Value::tensor() const {
  if (payload_->type == ValueType::Text) {
    throw Error(ErrorKind::Internal, "value_type", "asked for the tensor of a text value");
  }
  return payload_->tensor;
}

Value Value::with_aux(const std::string& name, at::Tensor tensor) const {
  Payload p;
  p.type = payload_->type;
  p.text = payload_->text;
  p.tensor = payload_->tensor;
  p.mask = payload_->mask;
  p.sample_rate = payload_->sample_rate;
  p.fps = payload_->fps;
  p.aux = payload_->aux;
  p.aux[name] = std::move(tensor);
  return make(std::move(p));
}

uint64_t hash_bytes(const void* data, size_t size, uint64_t seed) {
  // FNV-1a over 8-byte words for speed, then the tail bytes.
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  const uint64_t prime = 1099511628211ULL;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = (h ^ word) * prime;
  }
  for (; i < size; ++i) h = (h ^ bytes[i]) * prime;
  return h;
}

uint64_t hash_tensor(const at::Tensor& tensor, uint64_t seed) {
  if (!tensor.defined()) return hash_bytes("undef", 5, seed);
  at::Tensor t = tensor.device().is_cpu() ? tensor.contiguous() : tensor.cpu().contiguous();
  std::string header = std::string(c10::toString(t.scalar_type()));
  for (auto s : t.sizes()) header += "," + std::to_string(s);
  uint64_t h = hash_bytes(header.data(), header.size(), seed);
  return hash_bytes(t.data_ptr(), t.numel() * t.element_size(), h);
}

uint64_t Value::content_hash() const {
  std::call_once(payload_->hash->once, [this] {
    const Payload& p = *payload_;
    uint64_t h = hash_bytes(value_type_name(p.type), std::strlen(value_type_name(p.type)));
    h = hash_bytes(p.text.data(), p.text.size(), h);
    h = hash_tensor(p.tensor, h);
    h = hash_tensor(p.mask, h);
    h = hash_bytes(&p.sample_rate, sizeof(p.sample_rate), h);
    h = hash_bytes(&p.fps, sizeof(p.fps), h);
    for (const auto& kv : p.aux) {
      h = hash_bytes(kv.first.data(), kv.first.size(), h);
      h = hash_tensor(kv.second, h);
    }
    p.hash->value = h;
  });
  return payload_->hash->value;
}

size_t Value::bytes() const {
  auto tensor_bytes = [](const at::Tensor& t) { return t.defined() ? t.numel() * t.element_size() : size_t{0}; };
  const Payload& p = *payload_;
  size_t total = p.text.size() + tensor_bytes(p.tensor) + tensor_bytes(p.mask);
  for (const auto& kv : p.aux) total += tensor_bytes(kv.second);
  return total;
}

std::string Value::describe() const {
  std::ostringstream os;
  os << value_type_name(payload_->type);
  if (payload_->type == ValueType::Text) {
    std::string t = payload_->text.size() > 60 ? payload_->text.substr(0, 57) + "..." : payload_->text;
    os << " \"" << t << "\"";
    return os.str();
  }
  os << " [";
  for (int64_t i = 0; i < payload_->tensor.dim(); ++i) os << (i ? "," : "") << payload_->tensor.size(i);
  os << "] " << c10::toString(payload_->tensor.scalar_type());
  if (payload_->type == ValueType::Audio) os << " @" << payload_->sample_rate << " Hz";
  if (payload_->type == ValueType::Video) os << " @" << payload_->fps << " fps";
  return os.str();
}

}  // namespace a2a
