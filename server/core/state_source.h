// StateSource: what POST /v1/states and gRPC ExportState ask to export — the
// state after a text, a token sequence, chat messages (rendered with the chat
// template) or a finished response — resolved to token ids with the same checks
// and messages on both front ends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/api/api_error.h"
#include "server/api/completion_spec.h"
#include "server/core/server_context.h"

namespace tnl::server {

struct StateSource {
  enum class Kind { kText, kTokenIds, kChat, kResponse } kind = Kind::kText;
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<ChatMessage> messages;
  std::string response_id;
  int32_t choice = 0;
};

// Runs on a worker (it may tokenize a long text).
ApiResult<std::vector<int32_t>> resolve_state_tokens(const ServerContext& ctx, const StateSource& source);

}  // namespace tnl::server
