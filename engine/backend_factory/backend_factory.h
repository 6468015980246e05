// Creates the backend a user asked for ("auto" picks CUDA when a GPU is present).
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/backend_options.h"
#include "engine/checkpoint/checkpoint.h"

namespace tnl {

// True when this build has the CUDA backend and a CUDA device is visible.
bool cuda_available();

// The checkpoint must outlive nothing: backends copy (and convert) the weights.
Expected<std::unique_ptr<Backend>> make_backend(const Checkpoint& checkpoint, const BackendOptions& options);

}  // namespace tnl
