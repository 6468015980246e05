// CpuBackend: the reference implementation of Backend (fp32, OpenBLAS, OpenMP),
// readable next to model-spec §4 line by line.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/backend_options.h"
#include "engine/checkpoint/checkpoint.h"

namespace tnl {

Expected<std::unique_ptr<Backend>> make_cpu_backend(const Checkpoint& checkpoint, const BackendOptions& options);

}  // namespace tnl
