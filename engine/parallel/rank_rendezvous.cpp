#include "engine/parallel/rank_rendezvous.h"

#include <cstring>

namespace tnl {

RankRendezvous::RankRendezvous(int32_t size, std::chrono::milliseconds timeout)
    : size_(size), timeout_(timeout), published_(size_t(size)) {}

Status RankRendezvous::aborted_status() const {
  return fatal_error("tensor-parallel communicator aborted: " + abort_reason_);
}

Status RankRendezvous::meet_locked(int32_t rank, std::unique_lock<std::mutex>& lock) {
  if (aborted_) return aborted_status();
  const uint64_t generation = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return Status::ok();
  }
  const bool woke = cv_.wait_for(lock, timeout_, [&] { return generation_ != generation || aborted_; });
  if (generation_ != generation) return Status::ok();
  if (!woke && !aborted_) {
    aborted_ = true;
    abort_reason_ = "rank " + std::to_string(rank) + " waited " + std::to_string(timeout_.count()) +
                    " ms for its peers at a collective";
    cv_.notify_all();
  }
  return aborted_status();
}

Status RankRendezvous::exchange(int32_t rank, const RankBuffers& mine, std::vector<RankBuffers>* all) {
  std::unique_lock lock(mu_);
  published_[size_t(rank)] = mine;
  TNL_RETURN_IF_ERROR(meet_locked(rank, lock));
  // Every rank has published for this meeting and none can publish again before
  // the next one, which this rank's arrival gates: the copy below is consistent.
  *all = published_;
  for (const RankBuffers& b : *all) {
    if (std::strcmp(b.op, mine.op) != 0 || b.count != mine.count) {
      const std::string why = "ranks disagree on a collective: rank " + std::to_string(rank) + " runs " + mine.op +
                              " of " + std::to_string(mine.count) + ", a peer " + b.op + " of " +
                              std::to_string(b.count);
      if (!aborted_) {
        aborted_ = true;
        abort_reason_ = why;
        cv_.notify_all();
      }
      return aborted_status();
    }
  }
  return Status::ok();
}

Status RankRendezvous::meet(int32_t rank) {
  std::unique_lock lock(mu_);
  return meet_locked(rank, lock);
}

void RankRendezvous::abort(const std::string& why) {
  std::lock_guard lock(mu_);
  if (aborted_) return;
  aborted_ = true;
  abort_reason_ = why;
  cv_.notify_all();
}

}  // namespace tnl
