// embedding_similarity: the cosine similarity between every pair of the embeddings given, as a table the
// user reads (ImageBind's demo: which image matches which text or sound) and as a matrix.
#include <ATen/ATen.h>

#include <iomanip>
#include <sstream>

#include "base/error.h"
#include "pipeline/registry.h"
#include "pipeline/stage.h"

namespace a2a {
namespace {

std::vector<std::string> similarity_names(const Json& params) {
  std::vector<std::string> names;
  if (params.contains("inputs") && params["inputs"].is_array())
    for (const auto& n : params["inputs"])
      if (n.is_string()) names.push_back(n.get<std::string>());
  return names;
}

// One row per item: an embedding [B, N, D] gives B rows (the mean over N, then L2-normalised), named
// "name" or "name[b]".
void add_rows(const std::string& name, const Value& value, std::vector<std::string>& labels,
              std::vector<at::Tensor>& rows) {
  at::Tensor t = value.tensor().to(at::kFloat);
  if (t.dim() == 2) t = t.unsqueeze(1);
  if (t.dim() != 3 || t.size(0) == 0 || t.size(1) == 0 || t.size(2) == 0)
    throw_input_error("bad_shape", "embedding_similarity: '" + name + "' must be [B, N, D], got " + value.describe());
  if (!rows.empty() && rows.front().size(0) != t.size(2)) {
    throw_input_error("bad_shape", "embedding_similarity: '" + name + "' has width " + std::to_string(t.size(2)) +
                                       ", '" + labels.front() + "' " + std::to_string(rows.front().size(0)) +
                                       " (compare embeddings of one space)");
  }
  const at::Tensor pooled = t.mean(1);
  for (int64_t b = 0; b < pooled.size(0); ++b) {
    labels.push_back(pooled.size(0) == 1 ? name : name + "[" + std::to_string(b) + "]");
    rows.push_back(pooled[b] / pooled[b].norm().clamp_min(1e-12));
  }
}

std::string similarity_table(const std::vector<std::string>& labels, const at::Tensor& similarity) {
  size_t width = 7;  // "-0.1234"
  for (const auto& l : labels) width = std::max(width, l.size());
  std::ostringstream os;
  os << "cosine similarity\n" << std::setw(static_cast<int>(width)) << "";
  for (const auto& l : labels) os << "  " << std::setw(static_cast<int>(width)) << l;
  os << std::fixed << std::setprecision(4);
  for (size_t i = 0; i < labels.size(); ++i) {
    os << "\n" << std::setw(static_cast<int>(width)) << labels[i];
    for (size_t j = 0; j < labels.size(); ++j)
      os << "  " << std::setw(static_cast<int>(width)) << similarity[i][j].item<double>();
  }
  return os.str();
}

class EmbeddingSimilarityStage : public Stage {
 public:
  void configure(const Json& params, const ConfigureContext& ctx) override {
    (void)ctx;
    names_ = similarity_names(params);
  }

  PortValues run(const PortValues& inputs, RunContext& ctx) override {
    std::vector<std::string> labels;
    std::vector<at::Tensor> rows;
    for (const auto& name : names_)
      if (const Value* value = optional_input(inputs, name)) add_rows(name, *value, labels, rows);
    ctx.report_progress(1, 1);
    if (rows.empty()) return {{"table", Value::text("cosine similarity: no embeddings were given")}};
    const at::Tensor unit = at::stack(rows);
    const at::Tensor similarity = at::matmul(unit, unit.t());
    return {{"table", Value::text(similarity_table(labels, similarity))}, {"similarity", Value::tensor(similarity)}};
  }

 private:
  std::vector<std::string> names_;
};

StagePorts similarity_ports(const Json& params) {
  StagePorts ports;
  for (const auto& name : similarity_names(params))
    ports.inputs.push_back(optional_in_port(name, ValueType::Embedding, "[B, N, D]; absent inputs are left out"));
  ports.outputs = {out_port("table", ValueType::Text, "the similarity of every pair, as a table"),
                   out_port("similarity", ValueType::Tensor, "[R, R] cosine similarities; absent without inputs")};
  return ports;
}

std::vector<ParamProblem> check_similarity_params(const Json& params) {
  const auto names = similarity_names(params);
  if (names.empty()) return {{"inputs", "bad_value", "embedding_similarity: name at least one input"}};
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (names[i] == names[j])
        return {{"inputs", "duplicate_input", "embedding_similarity: '" + names[i] + "' twice"}};
  return {};
}

StageInfo embedding_similarity_info() {
  StageInfo info;
  info.type = "embedding_similarity";
  info.description =
      "Cosine similarity between every pair of the embeddings given (each item's rows averaged, then normalised): "
      "a table to read, as ImageBind's demo prints which inputs match, and the matrix. One optional embedding input "
      "per name in `inputs`; those left unconnected or absent are left out.";
  info.params = {param_spec("inputs", ParamType::StringList, Json::array({"a", "b"}),
                            "the input port names, in the table's order")};
  info.ports_for = similarity_ports;
  info.ports = similarity_ports(Json{{"inputs", {"a", "b"}}});
  info.create = [] { return std::make_unique<EmbeddingSimilarityStage>(); };
  info.check_params = check_similarity_params;
  return info;
}

A2A_REGISTER_STAGE(embedding_similarity_info);

}  // namespace
}  // namespace a2a
