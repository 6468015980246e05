#include "server/core/next_turn.h"

#include <algorithm>

#include <boost/asio/post.hpp>

namespace tnl::server {

void after_choice_finished(ServerContext& ctx, const std::string& key, const std::vector<int32_t>& prompt_ids,
                           const std::vector<int32_t>& generated, std::optional<std::string> next_prefix) {
  std::vector<int32_t> tokens = prompt_ids;
  tokens.insert(tokens.end(), generated.begin(), generated.end());
  if (!ctx.engine().options().prefix_cache || !next_prefix || generated.empty()) {
    ctx.finished_responses().remember(key, std::move(tokens));
    return;
  }
  boost::asio::post(ctx.workers(), [&ctx, key, tokens = std::move(tokens), text = std::move(*next_prefix)]() mutable {
    std::vector<int32_t> canonical = ctx.prompt_tokens().encode(text);
    if (canonical.size() > 1) {
      canonical.pop_back();  // may merge with the text that follows it next turn
      // The finish snapshot covers the tokens but the last generated one: when the
      // re-tokenized text is exactly those, it is already the next turn's prefix.
      const bool agrees = canonical.size() + 1 == tokens.size() &&
                          std::equal(canonical.begin(), canonical.end(), tokens.begin());
      if (!agrees) ctx.engine().warm_state(std::move(canonical));
    }
    ctx.finished_responses().remember(key, std::move(tokens));
  });
}

std::optional<std::string> next_turn_prefix(const ServerContext& ctx, const std::vector<ChatMessage>* messages,
                                            const std::string* prompt_text, const std::string& reply) {
  if (messages != nullptr) {
    std::vector<ChatMessage> history = *messages;
    history.push_back({"assistant", reply});
    return ctx.chat_template().render_history(history);
  }
  if (prompt_text != nullptr) return *prompt_text + reply;
  return std::nullopt;
}

}  // namespace tnl::server
