#include "server/core/finished_responses.h"

namespace tnl::server {

std::string FinishedResponses::key(const std::string& response_id, int32_t choice) {
  return choice == 0 ? response_id : response_id + "/" + std::to_string(choice);
}

void FinishedResponses::remember(std::string key, std::vector<int32_t> tokens) {
  if (int64_t(tokens.size()) > max_tokens_) return;
  std::lock_guard lock(mu_);
  if (by_key_.count(key) != 0) return;
  tokens_ += int64_t(tokens.size());
  order_.push_back(key);
  by_key_.emplace(std::move(key), std::move(tokens));
  while (tokens_ > max_tokens_ && !order_.empty()) {
    auto it = by_key_.find(order_.front());
    tokens_ -= int64_t(it->second.size());
    by_key_.erase(it);
    order_.pop_front();
  }
}

std::optional<std::vector<int32_t>> FinishedResponses::recall(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tnl::server
