#include "engine/checkpoint/tensor_names.h"

#include "engine/checkpoint/checkpoint.h"

namespace tnl {

std::string layer_tensor_name(int64_t layer, const std::string& suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

std::vector<TensorSpec> required_tensors(const ModelConfig& c) {
  const int64_t V = c.vocab_size, d = c.dim, D = c.hidden_dim, G = c.glu_dim;
  std::vector<TensorSpec> specs;
  specs.push_back({kEmbedName, {V, d}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto add = [&](const char* suffix, std::vector<int64_t> shape) {
      specs.push_back({layer_tensor_name(i, suffix), std::move(shape)});
    };
    add(kQkvuWeight, {4 * D, d});
    if (c.bias) add(kQkvuBias, {4 * D});
    add(kOutWeight, {d, D});
    if (c.bias) add(kOutBias, {d});
    if (static_cast<size_t>(i) < c.lrpe_layers.size() && c.lrpe_layers[i]) add(kLrpeTheta, {c.num_heads, 1, c.head_dim()});
    add(kL1Weight, {G, d});
    if (c.bias) add(kL1Bias, {G});
    add(kL2Weight, {G, d});
    if (c.bias) add(kL2Bias, {G});
    add(kL3Weight, {d, G});
    if (c.bias) add(kL3Bias, {d});
  }
  if (!c.tie_word_embeddings) specs.push_back({kLmHeadName, {V, d}});
  return specs;
}

}  // namespace tnl
