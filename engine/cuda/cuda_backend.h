// The CUDA backend (implemented in engine/cuda/, built only when CUDA is found).
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/backend_options.h"
#include "engine/checkpoint/checkpoint.h"

namespace tnl {

// Number of visible CUDA devices (0 when no driver or no device).
int cuda_device_count();

Expected<std::unique_ptr<Backend>> make_cuda_backend(const Checkpoint& checkpoint, const BackendOptions& options);

}  // namespace tnl
