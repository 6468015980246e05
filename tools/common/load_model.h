// Opens a checkpoint directory as the tools use it: checkpoint, tokenizer and
// backend, with the tokenizer checked against the model's vocabulary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/backend_factory/backend_factory.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/tokenizer/tokenizer.h"

namespace tnl::tools {

struct LoadedModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;
};

inline Expected<LoadedModel> load_model(const std::string& dir, const BackendOptions& options) {
  LoadedModel m;
  TNL_ASSIGN_OR_RETURN(m.checkpoint, Checkpoint::open(dir));
  TNL_ASSIGN_OR_RETURN(m.tokenizer, Tokenizer::load(dir));
  TNL_ASSIGN_OR_RETURN(m.backend, make_backend(*m.checkpoint, options));
  return m;
}

// Every id must index the model's embedding (a tokenizer larger than the model is a broken checkpoint).
inline Status check_ids_in_vocabulary(const std::vector<int32_t>& ids, const ModelConfig& config) {
  for (int32_t id : ids) {
    if (id < 0 || id >= config.vocab_size) {
      return invalid_argument("tokenizer id " + std::to_string(id) + " is outside the model's vocabulary of " +
                              std::to_string(config.vocab_size));
    }
  }
  return Status::ok();
}

}  // namespace tnl::tools
