// TensorParallelBackend: N rank backends (one shard of the model each, see
// shard_layout.h) presented as one Backend, so that the scheduler and the front
// ends never know N beyond capacity. Every step the same StepPlan goes to every
// rank; the ranks meet at their collectives; rank 0's output (whole-vocabulary
// logits, sampled tokens) is the step's. States are read and written per rank
// and joined in global head order (each rank's heads are a contiguous range).
//
// Threads: run_step is called by one thread (the Backend contract); rank 0 runs
// on it and ranks 1…N−1 on threads this object owns, each bound to its rank for
// life (a CUDA rank's device stays current on its thread). A rank whose step
// fails aborts the communicators, so that no peer waits forever at a
// collective; the error is then kFatal, since a group that lost a collective
// midway cannot be trusted again.
#pragma once

#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/parallel/communicator.h"

namespace tnl {

// `ranks[r]` computes with `comms[r]`; both vectors have N ≥ 1 entries. The
// backends are destroyed before the communicators.
std::unique_ptr<Backend> make_tensor_parallel_backend(std::vector<std::unique_ptr<Communicator>> comms,
                                                      std::vector<std::unique_ptr<Backend>> ranks);

}  // namespace tnl
