// RankRendezvous: where the ranks of one process meet at each collective (the
// in-process and single-device communicators). A collective is two meetings:
// at the first each rank publishes its buffers and learns everyone's; then each
// does its share of the work; at the second they agree the buffers may change.
//
// Threads: one thread per rank calls meet(); abort() may come from any thread.
// A rank that waits longer than the timeout aborts the group (a peer that never
// arrives is a bug or a dead rank, and waiting for it would hang the server).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "engine/status.h"

namespace tnl {

// What one rank brings to a collective.
struct RankBuffers {
  const char* op = "";        // the collective's name, checked equal across ranks
  const void* send = nullptr;
  void* recv = nullptr;
  int64_t count = 0;          // checked equal across ranks
};

class RankRendezvous {
 public:
  RankRendezvous(int32_t size, std::chrono::milliseconds timeout);

  int32_t size() const { return size_; }
  // Publishes `mine` and waits for every rank; then every rank's buffers are in
  // `all` (indexed by rank). Fails when the group is (or gets) aborted, or when
  // the ranks disagree on the collective or its count (which aborts it).
  Status exchange(int32_t rank, const RankBuffers& mine, std::vector<RankBuffers>* all);
  // Waits for every rank (the end of a collective).
  Status meet(int32_t rank);
  void abort(const std::string& why);

 private:
  Status meet_locked(int32_t rank, std::unique_lock<std::mutex>& lock);
  Status aborted_status() const;

  const int32_t size_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  int32_t arrived_ = 0;            // guarded by mu_
  uint64_t generation_ = 0;        // guarded by mu_: meetings completed
  std::vector<RankBuffers> published_;  // guarded by mu_
  bool aborted_ = false;           // guarded by mu_
  std::string abort_reason_;       // guarded by mu_
};

}  // namespace tnl
