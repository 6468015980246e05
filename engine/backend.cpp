#include "engine/backend.h"

#include <vector>

namespace tnl {

Status validate_step_plan(const StepPlan& plan, const ModelConfig& config, int32_t num_slots, bool device_sampling) {
  std::vector<bool> used(num_slots, false);
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const SequenceChunk& c = plan.chunks[i];
    const std::string where = "step chunk " + std::to_string(i);
    if (c.slot < 0 || c.slot >= num_slots) {
      return invalid_argument(where + ": slot " + std::to_string(c.slot) + " outside [0, " +
                              std::to_string(num_slots) + ")");
    }
    if (used[c.slot]) return invalid_argument(where + ": slot " + std::to_string(c.slot) + " appears twice");
    used[c.slot] = true;
    if (c.tokens.empty()) return invalid_argument(where + ": no tokens");
    if (c.start_pos < 0) return invalid_argument(where + ": negative start position");
    if (c.sample && !device_sampling) return invalid_argument(where + ": this backend samples on the host only");
    for (int32_t t : c.tokens) {
      if (t < 0 || t >= config.vocab_size) {
        return invalid_argument(where + ": token id " + std::to_string(t) + " outside the vocabulary [0, " +
                                std::to_string(config.vocab_size) + ")");
      }
    }
  }
  return Status::ok();
}

}  // namespace tnl
