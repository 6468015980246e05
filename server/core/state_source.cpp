#include "server/core/state_source.h"

#include "server/core/generation_plan.h"

namespace tnl::server {

ApiResult<std::vector<int32_t>> resolve_state_tokens(const ServerContext& ctx, const StateSource& source) {
  const Tokenizer& tokenizer = ctx.engine().tokenizer();
  const int64_t max_model_len = ctx.engine().options().max_model_len;
  std::vector<int32_t> tokens;
  switch (source.kind) {
    case StateSource::Kind::kResponse: {
      auto remembered = ctx.finished_responses().recall(FinishedResponses::key(source.response_id, source.choice));
      if (!remembered) {
        return not_found_error("no finished response " + source.response_id + " (choice " +
                                   std::to_string(source.choice) + ") is remembered by this server",
                               "response_id", "response_not_found");
      }
      tokens = std::move(*remembered);
      break;
    }
    case StateSource::Kind::kTokenIds:
      for (int32_t id : source.token_ids) {
        if (id < 0 || id >= ctx.engine().config().vocab_size) {
          return invalid_request("token id " + std::to_string(id) + " is outside the vocabulary", "prompt");
        }
      }
      tokens = source.token_ids;
      break;
    case StateSource::Kind::kText:
    case StateSource::Kind::kChat: {
      if (source.kind == StateSource::Kind::kChat) {
        CompletionSpec spec;
        spec.kind = ApiKind::kChat;
        spec.messages = source.messages;
        if (std::optional<ApiError> error = validate_completion_spec(spec, ctx.limits())) return *error;
      }
      const std::string text =
          source.kind == StateSource::Kind::kChat ? ctx.chat_template().render(source.messages) : source.text;
      if (std::optional<ApiError> error = check_tokenize_size(text.size(), tokenizer, max_model_len, "prompt")) {
        return *error;
      }
      tokens = tokenizer.encode(text);
      break;
    }
  }
  if (tokens.empty()) return invalid_request("a state needs at least one token", "prompt");
  if (int64_t(tokens.size()) > max_model_len) {
    return invalid_request(std::to_string(tokens.size()) + " tokens, over --max-model-len (" +
                               std::to_string(max_model_len) + ")",
                           "prompt", "context_length_exceeded");
  }
  return tokens;
}

}  // namespace tnl::server
