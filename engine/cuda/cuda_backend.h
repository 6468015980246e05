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

// A CUDA backend over random weights drawn on the GPU (tnl-bench: any config.json,
// no checkpoint on disk). Same computation, same state slots.
// Tensor parallelism over options.tensor_parallel_size ranks (model-spec §7):
// NCCL, one GPU per rank from options.gpu_device on; or "single-device", every
// rank on options.gpu_device (tests of the sharded path on one GPU).
Expected<std::unique_ptr<Backend>> make_cuda_tensor_parallel(const Checkpoint& checkpoint,
                                                             const BackendOptions& options);

Expected<std::unique_ptr<Backend>> make_cuda_backend_random(const ModelConfig& config, const BackendOptions& options,
                                                            uint64_t seed);

}  // namespace tnl
