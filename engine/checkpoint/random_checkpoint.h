// Random checkpoints: test fixtures and benchmark models with every tensor of
// model-spec §3 for a given config, deterministic in the seed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "engine/checkpoint/dtype.h"
#include "engine/checkpoint/safetensors_writer.h"
#include "engine/model_config.h"
#include "engine/status.h"

namespace tnl {

// Every tensor `config` requires (model-spec §3), filled with random values
// like the authors' initialisation: linear weights uniform in ±1/sqrt(in),
// biases uniform in ±0.02, embeddings ≈ N(0, 1), lrpe.theta = 10000^(-2/D·j)
// (j = 0…D-1, reshaped [H, 1, e]) times a random factor in [0.5, 1.5].
// A tensor's values depend only on (seed, name), not on the other tensors.
// Never all zeros. lm_head.weight only when untied.
std::vector<TensorData> random_checkpoint_tensors(const ModelConfig& config, uint64_t seed, DType dtype);

// Creates `dir` if needed and writes config.json (model_config_to_json) and
// model.safetensors holding random_checkpoint_tensors(config, seed, dtype).
Status write_random_checkpoint(const std::filesystem::path& dir, const ModelConfig& config, uint64_t seed,
                               DType dtype);

}  // namespace tnl
