#include "llm/llama2c.h"

#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <fstream>

#include "base/error.h"

namespace a2a {

at::Tensor llama2c_rotary_rows_to_transformers(const at::Tensor& weight, int64_t heads) {
  const int64_t rows = weight.size(0), cols = weight.size(1);
  const int64_t head_size = rows / heads;
  return weight.reshape({heads, head_size / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

namespace {

struct Llama2cHeader {
  LlamaOptions options;  // rms eps 1e-5, rope theta 10000, tied when vocab_size > 0, BOS 1, EOS 2
  int64_t floats = 0;    // the float32 values after the header
};

// The seven header fields, checked against each other, against bounds that keep the size sum from
// overflowing, and against the file's size; `in` is left at the first float.
Llama2cHeader read_header(std::ifstream& in, const std::string& path) {
  auto fail = [&](const std::string& what) { throw_input_error("bad_llama2c", path + ": " + what); };
  in.seekg(0, std::ios::end);
  const int64_t file_size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  int32_t header[7];
  if (file_size < static_cast<int64_t>(sizeof(header)) || !in.read(reinterpret_cast<char*>(header), sizeof(header)))
    fail("shorter than the 28-byte header");
  const int64_t dim = header[0], hidden = header[1], layers = header[2], heads = header[3], kv_heads = header[4];
  const int64_t vocab = header[5] < 0 ? -static_cast<int64_t>(header[5]) : header[5];
  const int64_t seq_len = header[6];
  const bool shared_classifier = header[5] > 0;
  if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 || vocab <= 0 || seq_len <= 0 ||
      dim % heads != 0 || heads % kv_heads != 0 || (dim / heads) % 2 != 0)
    fail("implausible header (dim " + std::to_string(dim) + ", hidden_dim " + std::to_string(hidden) + ", n_layers " +
         std::to_string(layers) + ", n_heads " + std::to_string(heads) + ", n_kv_heads " + std::to_string(kv_heads) +
         ", vocab_size " + std::to_string(header[5]) + ", seq_len " + std::to_string(seq_len) + ")");
  // Bounded so that the size sum below cannot overflow (it stays under 2^59 bytes); real checkpoints are far
  // inside: dim 8192, 80 layers, vocab 32000.
  constexpr int64_t kMaxWidth = int64_t{1} << 20, kMaxLayers = 4096, kMaxVocab = int64_t{1} << 24,
                    kMaxSeqLen = int64_t{1} << 24;
  if (dim > kMaxWidth || hidden > kMaxWidth || layers > kMaxLayers || vocab > kMaxVocab || seq_len > kMaxSeqLen)
    fail("header beyond the supported sizes (dim " + std::to_string(dim) + ", hidden_dim " + std::to_string(hidden) +
         ", n_layers " + std::to_string(layers) + ", vocab_size " + std::to_string(vocab) + ", seq_len " +
         std::to_string(seq_len) + "; at most 2^20, 2^20, 4096, 2^24, 2^24)");
  const int64_t head_size = dim / heads;
  const int64_t kv_dim = kv_heads * head_size;
  const int64_t floats = vocab * dim +
                         layers * (2 * dim + dim * dim + 2 * dim * kv_dim + dim * dim + 3 * dim * hidden) + dim +
                         seq_len * head_size + (shared_classifier ? 0 : vocab * dim);
  const int64_t expected = static_cast<int64_t>(sizeof(header)) + floats * 4;
  if (file_size != expected)
    fail("the header describes " + std::to_string(expected) + " bytes but the file has " + std::to_string(file_size));

  Llama2cHeader out;
  out.floats = floats;
  auto& o = out.options;
  o.vocab_size = vocab;
  o.hidden_size = dim;
  o.intermediate_size = hidden;
  o.num_hidden_layers = layers;
  o.num_attention_heads = heads;
  o.num_key_value_heads = kv_heads;
  o.max_position_embeddings = seq_len;
  o.rms_norm_eps = 1e-5;
  o.rope_theta = 10000.0;
  o.tie_word_embeddings = shared_classifier;
  o.bos_token_id = 1;
  o.eos_token_id = {2};
  return out;
}

std::ifstream open_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input_error("missing_model", "cannot open llama2.c checkpoint '" + path + "'");
  return in;
}

}  // namespace

LlamaOptions read_llama2c_options(const std::string& path) {
  std::ifstream in = open_checkpoint(path);
  return read_header(in, path).options;
}

Llama2cCheckpoint read_llama2c(const std::string& path) {
  auto fail = [&](const std::string& what) { throw_input_error("bad_llama2c", path + ": " + what); };
  std::ifstream in = open_checkpoint(path);
  const Llama2cHeader header = read_header(in, path);
  const LlamaOptions& options = header.options;
  const int64_t dim = options.hidden_size, hidden = options.intermediate_size, layers = options.num_hidden_layers;
  const int64_t heads = options.num_attention_heads, kv_heads = options.num_key_value_heads;
  const int64_t vocab = options.vocab_size, seq_len = options.max_position_embeddings;
  const int64_t head_size = dim / heads, kv_dim = kv_heads * head_size;
  const int64_t floats = header.floats;

  at::Tensor data = at::empty({floats}, at::kFloat);
  if (!in.read(reinterpret_cast<char*>(data.data_ptr<float>()), floats * 4)) fail("read failed");

  int64_t offset = 0;
  auto take = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    auto t = data.narrow(0, offset, n).view(shape);
    offset += n;
    return t;
  };
  auto per_layer = [&](std::vector<int64_t> shape) {
    shape.insert(shape.begin(), layers);
    return take(shape);
  };

  Llama2cCheckpoint out;
  out.options = options;

  auto& t = out.tensors;
  t["model.embed_tokens.weight"] = take({vocab, dim});
  auto attention_norm = per_layer({dim});
  auto wq = per_layer({dim, dim});
  auto wk = per_layer({kv_dim, dim});
  auto wv = per_layer({kv_dim, dim});
  auto wo = per_layer({dim, dim});
  auto ffn_norm = per_layer({dim});
  auto w1 = per_layer({hidden, dim});
  auto w2 = per_layer({dim, hidden});
  auto w3 = per_layer({hidden, dim});
  t["model.norm.weight"] = take({dim});
  take({seq_len, head_size / 2});  // freq_cis_real: recomputed by the model
  take({seq_len, head_size / 2});  // freq_cis_imag
  if (!options.tie_word_embeddings) t["lm_head.weight"] = take({vocab, dim});
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t[p + "input_layernorm.weight"] = attention_norm[i];
    t[p + "self_attn.q_proj.weight"] = llama2c_rotary_rows_to_transformers(wq[i], heads);
    t[p + "self_attn.k_proj.weight"] = llama2c_rotary_rows_to_transformers(wk[i], kv_heads);
    t[p + "self_attn.v_proj.weight"] = wv[i];
    t[p + "self_attn.o_proj.weight"] = wo[i];
    t[p + "post_attention_layernorm.weight"] = ffn_norm[i];
    t[p + "mlp.gate_proj.weight"] = w1[i];
    t[p + "mlp.down_proj.weight"] = w2[i];
    t[p + "mlp.up_proj.weight"] = w3[i];
  }
  out.options.validate(path);
  return out;
}

}  // namespace a2a
