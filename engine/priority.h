// Request priority: the range both front ends accept and the engine checks.
// vLLM's meaning: a lower value is served first; 0 is the default. The scheduler
// orders its queue by (priority, arrival) and preempts running sequences of a
// worse priority for a better one (engine/scheduler/scheduler.h).
#pragma once

#include <cstdint>

namespace tnl {

inline constexpr int32_t kMinPriority = -1'000'000;
inline constexpr int32_t kMaxPriority = 1'000'000;

}  // namespace tnl
