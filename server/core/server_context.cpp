#include "server/core/server_context.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <random>

namespace tnl::server {

ServerContext::ServerContext(Engine& engine, std::string served_model_name, ChatTemplate chat_template,
                             std::string api_key, int64_t created_unix_s, FrontEndLimits front_end_limits)
    : engine_(engine),
      served_model_name_(std::move(served_model_name)),
      chat_template_(std::move(chat_template)),
      api_key_(std::move(api_key)),
      created_(created_unix_s),
      prompt_tokens_(engine.tokenizer(), kPromptTokenCacheBytes),
      front_end_limits_(front_end_limits),
      workers_(size_t(std::max(1, front_end_limits.worker_threads))) {
  limits_.served_model = served_model_name_;
  limits_.vocab_size = int32_t(engine.tokenizer().vocab_size());
  // Every choice is queued on its own: a request with more choices than the queue
  // holds could never be admitted, so it is a 400, not a retry-able 429.
  limits_.max_choices = std::min<int32_t>(limits_.max_choices, engine.options().max_queue);
  char salt[16];
  std::snprintf(salt, sizeof salt, "%08x", unsigned(std::random_device{}()));
  id_salt_ = salt;
}

void ServerContext::begin_drain() {
  draining_.store(true);
  engine_.begin_drain();
}

std::string ServerContext::next_request_id(const char* prefix) {
  return std::string(prefix) + "-" + id_salt_ + std::to_string(next_id_.fetch_add(1));
}

ServerContext::~ServerContext() { workers_.join(); }

bool ServerContext::authorized(std::string_view header) const {
  if (api_key_.empty()) return true;
  constexpr std::string_view kBearer = "bearer";
  if (header.size() <= kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kBearer[i]) return false;
  }
  std::string_view given = header.substr(kBearer.size());
  if (given.front() != ' ') return false;
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  // Length leaks; contents do not (no early exit).
  unsigned char diff = given.size() == api_key_.size() ? 0 : 1;
  for (size_t i = 0; i < given.size() && i < api_key_.size(); ++i) diff |= (given[i] ^ api_key_[i]);
  return diff == 0;
}

}  // namespace tnl::server
