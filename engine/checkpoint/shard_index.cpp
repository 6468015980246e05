#include "engine/checkpoint/shard_index.h"

#include <nlohmann/json.hpp>

namespace tnl {

Expected<ShardIndex> parse_shard_index(const std::string& json_text, const std::string& source) {
  const nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(source + ": malformed index: not valid JSON");
  if (!j.is_object()) return invalid_argument(source + ": malformed index: not a JSON object");
  auto map_it = j.find("weight_map");
  if (map_it == j.end() || !map_it->is_object()) {
    return invalid_argument(source + ": malformed index: missing \"weight_map\" object");
  }
  ShardIndex index;
  for (auto it = map_it->begin(); it != map_it->end(); ++it) {
    if (!it->is_string()) {
      return invalid_argument(source + ": malformed index: tensor \"" + it.key() + "\" maps to a non-string");
    }
    const std::string shard = it->get<std::string>();
    if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
        shard.find('\0') != std::string::npos) {
      return invalid_argument(source + ": malformed index: tensor \"" + it.key() + "\" maps to \"" + shard +
                              "\", which is not a file name in the checkpoint directory");
    }
    index.tensors_by_shard[shard].insert(it.key());
  }
  if (index.tensors_by_shard.empty()) return invalid_argument(source + ": malformed index: empty \"weight_map\"");
  return index;
}

}  // namespace tnl
