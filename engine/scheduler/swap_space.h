// SwapSpace: the host-memory copies of preempted sequences' decode states
// (scheduler.h: priority and preemption). One buffer per swapped-out sequence,
// state_bytes_per_slot() bytes each, held from the swap-out until the sequence
// resumes or ends. Freed buffers are kept for the next swap-out, so that a server
// preempting steadily stops allocating once it has as many as it ever swapped at
// once.
//
// Threads: owned by the ContinuousBatcher (the step loop); not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/status.h"

namespace tnl {

class SwapSpace {
 public:
  explicit SwapSpace(int64_t state_bytes) : state_bytes_(state_bytes) {}

  // Copies `slot` out of the backend (between steps) and keeps it for `seq`.
  Status swap_out(Backend& backend, uint64_t seq, StateRef slot);
  // Writes `seq`'s kept state into `slot` (between steps) and lets the buffer go.
  // NOT_FOUND when nothing is kept for `seq`.
  Status swap_in(Backend& backend, uint64_t seq, StateRef slot);
  // Forgets `seq`'s state (it ended while swapped out); no-op when none is kept.
  void drop(uint64_t seq);

  bool holds(uint64_t seq) const { return held_.count(seq) != 0; }
  int32_t num_held() const { return static_cast<int32_t>(held_.size()); }
  int64_t state_bytes() const { return state_bytes_; }

 private:
  std::vector<std::byte> take_buffer();
  void give_back(std::vector<std::byte> buffer);

  int64_t state_bytes_;
  std::unordered_map<uint64_t, std::vector<std::byte>> held_;
  std::vector<std::vector<std::byte>> spare_;
};

}  // namespace tnl
