#include "engine/scheduler/slot_allocator.h"

#include <cassert>

namespace tnl {

SlotAllocator::SlotAllocator(int32_t num_slots) : in_use_(num_slots > 0 ? num_slots : 0, false) {}

std::optional<int32_t> SlotAllocator::allocate() {
  // Linear scan: slot counts are in the hundreds at most and this runs once per admission.
  for (size_t s = 0; s < in_use_.size(); ++s) {
    if (!in_use_[s]) {
      in_use_[s] = true;
      ++num_used_;
      return static_cast<int32_t>(s);
    }
  }
  return std::nullopt;
}

void SlotAllocator::release(int32_t slot) {
  assert(slot >= 0 && slot < num_slots() && in_use_[slot] && "releasing a slot that is not in use");
  in_use_[slot] = false;
  --num_used_;
}

}  // namespace tnl
