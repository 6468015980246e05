// SlotAllocator: hands out decode-state slots [0, num_slots) to sequences.
//
// Always the lowest free slot, so a given arrival order maps onto the same slots
// run after run (handy when reading logs; results never depend on the slot).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace tnl {

class SlotAllocator {
 public:
  explicit SlotAllocator(int32_t num_slots);

  std::optional<int32_t> allocate();  // nullopt when every slot is in use
  void release(int32_t slot);         // slot must be in use

  int32_t num_slots() const { return static_cast<int32_t>(in_use_.size()); }
  int32_t num_used() const { return num_used_; }
  int32_t num_free() const { return num_slots() - num_used_; }

 private:
  std::vector<bool> in_use_;
  int32_t num_used_ = 0;
};

}  // namespace tnl
