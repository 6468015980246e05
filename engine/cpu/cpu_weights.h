// CpuWeights: every tensor of model-spec §3 as fp32, in PyTorch layout ([out, in]),
// or a tensor-parallel rank's part of each (shard_layout.h): shapes below are the
// rank's (ShardLayout::local), the vocabulary rows padded with zeros to V'.
#pragma once

#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/parallel/shard_layout.h"

namespace tnl {

struct CpuLayerWeights {
  std::vector<float> qkvu, qkvu_bias;  // [4D, d], [4D] (bias empty unless config.bias)
  std::vector<float> out, out_bias;    // [d, D], [d] (bias: rank 0 only)
  std::vector<float> theta;            // [H, e], only on LRPE layers
  std::vector<float> l1, l1_bias;      // [G, d]
  std::vector<float> l2, l2_bias;      // [G, d]
  std::vector<float> l3, l3_bias;      // [d, G]
  std::vector<float> decay_rate;       // [H]: s_{ℓ,h}; λ = exp(−s)
};

struct CpuWeights {
  std::vector<float> embed;            // [V, d]
  std::vector<float> lm_head;          // [V, d]; empty when tied (use embed)
  std::vector<CpuLayerWeights> layers;
  const std::vector<float>& output_matrix() const { return lm_head.empty() ? embed : lm_head; }
};

// Converts a validated checkpoint's tensors, or the rank's blocks of them, to
// fp32 (bf16/f16 are widened exactly). Reads nothing outside the blocks.
CpuWeights load_cpu_weights(const Checkpoint& checkpoint, const ShardLayout& shard);

}  // namespace tnl
