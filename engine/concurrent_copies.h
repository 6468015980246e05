// ConcurrentCopies: which state copies of a plan may run at the same time.
//
// A plan's copies run in order (engine/backend.h). A backend that runs several
// in one launch (the CUDA backend: every tile of every copy at once) keeps that
// order's result only while no copy depends on another of the same launch, so it
// starts a new launch at the first copy that
//   - reads a slot the launch writes (a restore of a snapshot taken in the same step),
//   - writes a slot the launch reads (a finished sequence's snapshot, then a
//     restore into the slot it freed: the scheduler gives that slot out at once),
//   - or writes a slot the launch writes.
// Reading one slot from several copies (one snapshot restored into many slots) is
// no conflict.
//
// Threads: a value type, used by one thread.
#pragma once

#include <vector>

#include "engine/backend.h"

namespace tnl {

class ConcurrentCopies {
 public:
  // Whether `copy` must wait for the copies added since the last clear().
  bool conflicts(const StateCopy& copy) const;
  void add(const StateCopy& copy);
  void clear();
  bool empty() const { return writes_.empty(); }

 private:
  std::vector<StateRef> reads_;   // a launch holds few copies: a linear scan is the fast way
  std::vector<StateRef> writes_;
};

}  // namespace tnl
