// Checks made before anything is queued: engine options at start-up, and each
// request at submit(). Messages name the field and the offending value so a
// front end can return them to the user as is.
#pragma once

#include <cstdint>

#include "engine/scheduler/engine.h"
#include "engine/status.h"

namespace tnl {

// Options that make sense on their own (the slot/budget relation is checked by
// validate_scheduler_limits once the backend's slot count is known).
Status validate_engine_options(const EngineOptions& options);

// INVALID_ARGUMENT (or OUT_OF_RANGE from the sampling parameters) when the
// request cannot run on a model with `vocab_size` ids under `options`.
Status validate_request(const GenerationRequest& request, int64_t vocab_size, const EngineOptions& options);

}  // namespace tnl
