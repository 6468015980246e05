#include "engine/backend.h"

#include <vector>

namespace tnl {

const char* state_tier_name(StateTier tier) {
  switch (tier) {
    case StateTier::kLive: return "live";
    case StateTier::kCache: return "cache";
    case StateTier::kHost: return "host";
  }
  return "?";
}

Status validate_state_ref(StateRef slot, const Backend& backend) {
  const int32_t n = backend.num_state_slots(slot.tier);
  if (slot.index < 0 || slot.index >= n) {
    return invalid_argument(std::string(state_tier_name(slot.tier)) + " state slot " + std::to_string(slot.index) +
                            " outside [0, " + std::to_string(n) + ")");
  }
  return Status::ok();
}

Status validate_state_copies(const StepPlan& plan, const Backend& backend) {
  for (const auto* copies : {&plan.copies_before, &plan.copies_after}) {
    for (const StateCopy& c : *copies) {
      TNL_RETURN_IF_ERROR(validate_state_ref(c.from, backend));
      TNL_RETURN_IF_ERROR(validate_state_ref(c.to, backend));
      if (c.from == c.to) return invalid_argument("a state copy onto itself");
    }
  }
  return Status::ok();
}

Status validate_sequence_chunk(const SequenceChunk& c, size_t index, const ModelConfig& config, int32_t num_slots,
                               bool device_sampling) {
  // The message prefix is built only for a rejected chunk: this runs for every chunk of every step.
  auto where = [index] { return "step chunk " + std::to_string(index); };
  if (c.slot < 0 || c.slot >= num_slots) {
    return invalid_argument(where() + ": slot " + std::to_string(c.slot) + " outside [0, " + std::to_string(num_slots) +
                            ")");
  }
  if (c.tokens.empty()) return invalid_argument(where() + ": no tokens");
  if (c.start_pos < 0) return invalid_argument(where() + ": negative start position");
  if (c.sample && !device_sampling) return invalid_argument(where() + ": this backend samples on the host only");
  for (int32_t t : c.tokens) {
    if (t < 0 || t >= config.vocab_size) {
      return invalid_argument(where() + ": token id " + std::to_string(t) + " outside the vocabulary [0, " +
                              std::to_string(config.vocab_size) + ")");
    }
  }
  return Status::ok();
}

Status validate_step_plan(const StepPlan& plan, const ModelConfig& config, int32_t num_slots, bool device_sampling) {
  std::vector<bool> used(num_slots, false);
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const SequenceChunk& c = plan.chunks[i];
    const bool in_range = c.slot >= 0 && c.slot < num_slots;
    if (in_range && used[c.slot]) {
      return invalid_argument("step chunk " + std::to_string(i) + ": slot " + std::to_string(c.slot) + " appears twice");
    }
    TNL_RETURN_IF_ERROR(validate_sequence_chunk(c, i, config, num_slots, device_sampling));
    used[c.slot] = true;
  }
  return Status::ok();
}

}  // namespace tnl
