// tokenizer_config.json: the few fields of the Hugging Face tokenizer config
// that change how the engine encodes prompts.
#pragma once

#include <filesystem>

#include "engine/status.h"

namespace tnl {

struct TokenizerConfig {
  bool add_bos_token = true;   // prepend BOS to encoded prompts
  bool add_eos_token = false;  // append EOS to encoded prompts
};

// Reads `path` when it exists; a missing file gives the defaults above.
// A file that is unreadable, not JSON, or has a non-boolean add_*_token is an
// error whose message names the file.
Expected<TokenizerConfig> load_tokenizer_config(const std::filesystem::path& path);

}  // namespace tnl
