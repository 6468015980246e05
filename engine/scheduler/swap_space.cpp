#include "engine/scheduler/swap_space.h"

#include <string>
#include <utility>

namespace tnl {

std::vector<std::byte> SwapSpace::take_buffer() {
  if (spare_.empty()) return std::vector<std::byte>(size_t(state_bytes_));
  std::vector<std::byte> buffer = std::move(spare_.back());
  spare_.pop_back();
  return buffer;
}

void SwapSpace::give_back(std::vector<std::byte> buffer) { spare_.push_back(std::move(buffer)); }

Status SwapSpace::swap_out(Backend& backend, uint64_t seq, StateRef slot) {
  std::vector<std::byte> buffer = take_buffer();
  if (Status s = backend.read_state(slot, buffer); !s.is_ok()) {
    give_back(std::move(buffer));
    return s;
  }
  held_[seq] = std::move(buffer);
  return Status::ok();
}

Status SwapSpace::swap_in(Backend& backend, uint64_t seq, StateRef slot) {
  auto it = held_.find(seq);
  if (it == held_.end()) return not_found("no swapped-out state for sequence " + std::to_string(seq));
  const Status s = backend.write_state(slot, it->second);
  give_back(std::move(it->second));
  held_.erase(it);
  return s;
}

void SwapSpace::drop(uint64_t seq) {
  auto it = held_.find(seq);
  if (it == held_.end()) return;
  give_back(std::move(it->second));
  held_.erase(it);
}

}  // namespace tnl
