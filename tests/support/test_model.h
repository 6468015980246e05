// Fixtures for tests of every part: tiny model configs, random checkpoints on
// disk, and temporary directories that clean up after themselves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "engine/checkpoint/checkpoint.h"  // DType
#include "engine/model_config.h"

namespace tnl::test {

// V=96 d=32 L=3 H=4 D=32 (e=8) G=48, silu, LRPE on layer 0 only, tied
// embeddings, embeddings scaled by sqrt(d), no biases. Valid by construction.
ModelConfig tiny_config();

// A checkpoint directory (config.json + model.safetensors) with random weights
// for `config` (engine/checkpoint/random_checkpoint.h), deterministic in
// (config, seed, dtype). Directories are cached under the build tree and shared
// by tests: treat them as read-only. On failure the test fails (ADD_FAILURE)
// and an empty path is returned.
std::filesystem::path make_random_checkpoint(const ModelConfig& config, uint64_t seed, DType dtype = DType::kF32);

// A fresh, empty directory under the system temp directory, removed with all
// its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;  // empty after a move
};

}  // namespace tnl::test
