// CpuBackend: the reference implementation of Backend (fp32, OpenBLAS, OpenMP),
// readable next to model-spec §4 line by line.
#pragma once

#include <memory>

#include "engine/backend.h"
#include "engine/backend_options.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/parallel/communicator.h"
#include "engine/parallel/shard_layout.h"

namespace tnl {

Expected<std::unique_ptr<Backend>> make_cpu_backend(const Checkpoint& checkpoint, const BackendOptions& options);

// One tensor-parallel rank: the part of the model `shard` names, meeting its
// peers through `comm` (not owned; outlives the backend). Its config() is the
// whole model's; its states hold this rank's heads only (read_state's layout
// restricted to them). tensor_parallel_backend.h joins the ranks into one Backend.
Expected<std::unique_ptr<Backend>> make_cpu_backend_rank(const Checkpoint& checkpoint, const BackendOptions& options,
                                                         const ShardLayout& shard, Communicator* comm);

}  // namespace tnl
