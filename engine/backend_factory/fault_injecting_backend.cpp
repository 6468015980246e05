#include "engine/backend_factory/fault_injecting_backend.h"

#include <string>

namespace tnl {
namespace {

class FaultInjectingBackend final : public Backend {
 public:
  FaultInjectingBackend(std::unique_ptr<Backend> inner, int64_t fatal_from_step)
      : inner_(std::move(inner)), fatal_from_step_(fatal_from_step) {}

  const ModelConfig& config() const override { return inner_->config(); }
  std::string name() const override { return inner_->name(); }
  int32_t num_slots() const override { return inner_->num_slots(); }
  int64_t state_bytes_per_slot() const override { return inner_->state_bytes_per_slot(); }
  bool samples_on_device() const override { return inner_->samples_on_device(); }
  int32_t num_state_slots(StateTier tier) const override { return inner_->num_state_slots(tier); }
  Counters counters() const override { return inner_->counters(); }
  void set_step_timing(bool on) override { inner_->set_step_timing(on); }
  StepTiming last_step_timing() const override { return inner_->last_step_timing(); }
  Status read_state(StateRef slot, std::span<std::byte> out) override { return inner_->read_state(slot, out); }
  Status write_state(StateRef slot, std::span<const std::byte> in) override { return inner_->write_state(slot, in); }

  Status run_step(const StepPlan& plan, StepOutput* out) override {
    if (++steps_ >= fatal_from_step_) {
      return fatal_error("injected fatal backend error at step " + std::to_string(steps_) +
                         " (TNL_TEST_FATAL_STEP)");
    }
    return inner_->run_step(plan, out);
  }

 private:
  std::unique_ptr<Backend> inner_;
  int64_t fatal_from_step_;
  int64_t steps_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_fault_injecting_backend(std::unique_ptr<Backend> inner, int64_t fatal_from_step) {
  return std::make_unique<FaultInjectingBackend>(std::move(inner), fatal_from_step);
}

}  // namespace tnl
