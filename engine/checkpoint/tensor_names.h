// The tensors of model-spec §3: names, shapes, and which a config requires.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_config.h"

namespace tnl {

// Per-layer suffixes for layer_tensor_name() (declared in checkpoint.h).
inline constexpr const char* kQkvuWeight = "token_mixer.qkvu_proj.weight";  // [4D, d]
inline constexpr const char* kQkvuBias = "token_mixer.qkvu_proj.bias";      // [4D]
inline constexpr const char* kOutWeight = "token_mixer.out_proj.weight";    // [d, D]
inline constexpr const char* kOutBias = "token_mixer.out_proj.bias";        // [d]
inline constexpr const char* kLrpeTheta = "token_mixer.lrpe.theta";         // [H, 1, e]
inline constexpr const char* kL1Weight = "channel_mixer.l1.weight";         // [G, d]
inline constexpr const char* kL1Bias = "channel_mixer.l1.bias";             // [G]
inline constexpr const char* kL2Weight = "channel_mixer.l2.weight";         // [G, d]
inline constexpr const char* kL2Bias = "channel_mixer.l2.bias";             // [G]
inline constexpr const char* kL3Weight = "channel_mixer.l3.weight";         // [d, G]
inline constexpr const char* kL3Bias = "channel_mixer.l3.bias";             // [d]

// A tensor's name and shape (row-major; [out, in] for linear weights).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor `config` requires, in file order: embedding, then each layer,
// then lm_head.weight when untied. Biases only when config.bias, lrpe.theta
// only on LRPE layers. A tied lm_head is optional and therefore not listed.
// lm_head never has a bias (the authors' lm_head is Linear(d, V, bias=False)).
std::vector<TensorSpec> required_tensors(const ModelConfig& config);

}  // namespace tnl
