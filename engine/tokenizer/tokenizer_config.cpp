#include "engine/tokenizer/tokenizer_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

namespace tnl {
namespace {

// Reads an optional boolean field; absent or null keeps the default.
Status read_flag(const nlohmann::json& config, const char* key, const std::filesystem::path& path,
                 bool* flag) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return Status::ok();
  if (!it->is_boolean()) {
    return invalid_argument(path.string() + ": \"" + key + "\" must be true or false, got " +
                            it->dump());
  }
  *flag = it->get<bool>();
  return Status::ok();
}

}  // namespace

Expected<TokenizerConfig> load_tokenizer_config(const std::filesystem::path& path) {
  TokenizerConfig config;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return config;

  std::ifstream in(path);
  if (!in) return not_found(path.string() + ": cannot be opened");
  nlohmann::json json = nlohmann::json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return invalid_argument(path.string() + ": not valid JSON");
  if (!json.is_object()) return invalid_argument(path.string() + ": expected a JSON object");

  TNL_RETURN_IF_ERROR(read_flag(json, "add_bos_token", path, &config.add_bos_token));
  TNL_RETURN_IF_ERROR(read_flag(json, "add_eos_token", path, &config.add_eos_token));
  return config;
}

}  // namespace tnl
