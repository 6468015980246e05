// FaultInjectingBackend: a test hook that wraps a real backend and, from its Nth
// step on, reports a fatal error the way a sticky CUDA error does. It exists so
// that the dead-engine path (engine latch, /health 503, gRPC NOT_SERVING, failed
// requests) is tested end to end on machines without a GPU. Only enabled by
// BackendOptions::test_fatal_step (tnl-server reads it from TNL_TEST_FATAL_STEP).
#pragma once

#include <memory>

#include "engine/backend.h"

namespace tnl {

std::unique_ptr<Backend> make_fault_injecting_backend(std::unique_ptr<Backend> inner, int64_t fatal_from_step);

}  // namespace tnl
