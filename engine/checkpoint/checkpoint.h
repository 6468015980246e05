// Checkpoint: a validated, memory-mapped TransNormerLLM checkpoint directory
// (model-spec §1–3): config.json plus model.safetensors or shards listed in
// model.safetensors.index.json. open() checks every tensor's presence, dtype
// and shape; afterwards tensor() cannot fail for the names of model-spec §3.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint/dtype.h"  // DType, dtype_name, dtype_size, convert_to_f32
#include "engine/model_config.h"
#include "engine/status.h"

namespace tnl {

struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Points into a memory-mapped file: valid while the Checkpoint lives. Aligned
  // only as the file aligns it (safetensors gives no guarantee), so read it with
  // convert_to_f32 or memcpy rather than through a cast float*.
  const std::byte* data = nullptr;
  int64_t num_bytes = 0;
  std::string file;                   // the file it lives in, for messages
  int64_t numel() const;
};

// Names of model-spec §3.
std::string layer_tensor_name(int64_t layer, const std::string& suffix);  // "model.layers.{i}.{suffix}"
inline constexpr const char* kEmbedName = "model.embed_tokens.weight";
inline constexpr const char* kLmHeadName = "lm_head.weight";

class MappedFile;  // engine/checkpoint/mapped_file.h

class Checkpoint {
 public:
  // Opens and validates `dir`. Errors name the file and, where relevant, the tensor.
  static Expected<std::unique_ptr<Checkpoint>> open(const std::filesystem::path& dir);
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const ModelConfig& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Precondition: has(name) (always true for the names validated at open()).
  const TensorView& tensor(const std::string& name) const;
  // The output matrix [V, d]: lm_head.weight, or the embedding when tied.
  const TensorView& output_matrix() const;
  std::vector<float> to_f32(const std::string& name) const;
  // Identifies the weights (16 hex digits): a hash of the config and, per tensor,
  // its name, dtype, shape and sampled bytes (start, middle, end). Two checkpoints
  // of one shape (a base model and its fine-tune) differ. State blobs carry it.
  const std::string& fingerprint() const { return fingerprint_; }

 private:
  Checkpoint() = default;
  ModelConfig config_;
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
  std::string fingerprint_;
};

}  // namespace tnl
