// FinishedResponses: the token sequences of recently finished choices, by response
// id, so that POST /v1/states (and gRPC ExportState) can export "the state of a
// finished response". Bounded by the tokens it holds (the oldest are forgotten).
//
// Threads: any (HTTP strands, gRPC strands); one mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tnl::server {

class FinishedResponses {
 public:
  explicit FinishedResponses(int64_t max_tokens = int64_t(4) << 20) : max_tokens_(max_tokens) {}

  // `key` is "<response id>" for choice 0 and "<response id>/<i>" for choice i.
  static std::string key(const std::string& response_id, int32_t choice);
  void remember(std::string key, std::vector<int32_t> tokens);
  std::optional<std::vector<int32_t>> recall(const std::string& key) const;

 private:
  const int64_t max_tokens_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<int32_t>> by_key_;
  std::deque<std::string> order_;  // oldest first
  int64_t tokens_ = 0;
};

}  // namespace tnl::server
