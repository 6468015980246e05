// model.safetensors.index.json: which shard file holds each tensor of a
// sharded checkpoint (the Hugging Face layout). Pure parsing, no I/O.
#pragma once

#include <map>
#include <set>
#include <string>

#include "engine/status.h"

namespace tnl {

inline constexpr const char* kSingleWeightsFile = "model.safetensors";
inline constexpr const char* kShardIndexFile = "model.safetensors.index.json";

struct ShardIndex {
  // Shard file name (relative to the checkpoint directory) → tensor names in it.
  std::map<std::string, std::set<std::string>> tensors_by_shard;
};

// Parses the index JSON text; `source` names the file in messages. Requires an
// object with a "weight_map" object of tensor name → shard file name. A shard
// name must be a plain file name in the checkpoint directory (no '/', no "..").
Expected<ShardIndex> parse_shard_index(const std::string& json_text, const std::string& source);

}  // namespace tnl
