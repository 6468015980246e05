#include "engine/parallel/in_process_communicator.h"

#include <algorithm>
#include <cstring>

#include "engine/parallel/rank_rendezvous.h"

namespace tnl {
namespace {

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<RankRendezvous> group, int32_t rank)
      : group_(std::move(group)), rank_(rank) {}

  int32_t rank() const override { return rank_; }
  int32_t size() const override { return group_->size(); }
  std::string name() const override { return "in-process"; }
  void abort(const std::string& why) override { group_->abort(why); }

  Status all_reduce_sum(float* data, int64_t count) override {
    std::vector<RankBuffers> all;
    TNL_RETURN_IF_ERROR(group_->exchange(rank_, {"all_reduce_sum", data, data, count}, &all));
    const int64_t n = size(), begin = count * rank_ / n, end = count * (rank_ + 1) / n;
    for (int64_t i = begin; i < end; ++i) {
      float sum = 0.0f;
      for (const RankBuffers& b : all) sum += static_cast<const float*>(b.send)[i];
      for (const RankBuffers& b : all) static_cast<float*>(b.recv)[i] = sum;
    }
    return group_->meet(rank_);
  }

  Status all_gather(const float* send, float* recv, int64_t count) override {
    std::vector<RankBuffers> all;
    TNL_RETURN_IF_ERROR(group_->exchange(rank_, {"all_gather", send, recv, count}, &all));
    for (size_t r = 0; r < all.size(); ++r) {
      std::memcpy(recv + int64_t(r) * count, all[r].send, size_t(count) * sizeof(float));
    }
    return group_->meet(rank_);
  }

  Status broadcast(void* data, int64_t bytes, int32_t root) override {
    if (root < 0 || root >= size()) return invalid_argument("broadcast: no rank " + std::to_string(root));
    std::vector<RankBuffers> all;
    TNL_RETURN_IF_ERROR(group_->exchange(rank_, {"broadcast", data, data, bytes}, &all));
    if (rank_ != root) std::memcpy(data, all[size_t(root)].send, size_t(bytes));
    return group_->meet(rank_);
  }

 private:
  std::shared_ptr<RankRendezvous> group_;
  int32_t rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_in_process_communicators(int32_t size,
                                                                         std::chrono::milliseconds timeout) {
  auto group = std::make_shared<RankRendezvous>(size, timeout);
  std::vector<std::unique_ptr<Communicator>> ranks;
  for (int32_t r = 0; r < size; ++r) ranks.push_back(std::make_unique<InProcessCommunicator>(group, r));
  return ranks;
}

}  // namespace tnl
