#include "engine/backend_factory/backend_factory.h"

#include <omp.h>

#include <algorithm>

#include "engine/backend_factory/fault_injecting_backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/parallel/in_process_communicator.h"
#include "engine/parallel/shard_layout.h"
#include "engine/parallel/tensor_parallel_backend.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/cuda_backend.h"
#endif

namespace tnl {

bool cuda_available() {
#if defined(TNL_WITH_CUDA)
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

namespace {

// The CPU ranks are threads of this process: they share the cores.
Expected<std::unique_ptr<Backend>> make_cpu_tensor_parallel(const Checkpoint& checkpoint,
                                                            const BackendOptions& options) {
  const int32_t n = options.tensor_parallel_size;
  if (options.tensor_parallel_comm != "auto" && options.tensor_parallel_comm != "in-process") {
    return invalid_argument("--tensor-parallel-comm " + options.tensor_parallel_comm +
                            " needs the CUDA backend; the CPU backend's ranks meet in-process");
  }
  BackendOptions rank_options = options;
  const int32_t threads = options.cpu_threads > 0 ? options.cpu_threads : omp_get_num_procs();
  rank_options.cpu_threads = std::max(1, threads / n);
  std::vector<std::unique_ptr<Communicator>> comms = make_in_process_communicators(n);
  std::vector<std::unique_ptr<Backend>> ranks;
  for (int32_t r = 0; r < n; ++r) {
    const ShardLayout shard = ShardLayout::make(checkpoint.config(), r, n);
    TNL_ASSIGN_OR_RETURN(std::unique_ptr<Backend> rank,
                         make_cpu_backend_rank(checkpoint, rank_options, shard, comms[size_t(r)].get()));
    if (options.test_fatal_step > 0 && r == n - 1) {
      rank = make_fault_injecting_backend(std::move(rank), options.test_fatal_step);
    }
    ranks.push_back(std::move(rank));
  }
  return make_tensor_parallel_backend(std::move(comms), std::move(ranks));
}

Expected<std::unique_ptr<Backend>> make_device_backend(const Checkpoint& checkpoint, const BackendOptions& options) {
  std::string device = options.device;
  if (device == "auto") device = cuda_available() ? "cuda" : "cpu";
  TNL_RETURN_IF_ERROR(check_tensor_parallel(checkpoint.config(), options.tensor_parallel_size));
  const bool sharded = options.tensor_parallel_size > 1;
  if (device == "cpu") {
    if (sharded) return make_cpu_tensor_parallel(checkpoint, options);
    return make_cpu_backend(checkpoint, options);
  }
  if (device == "cuda") {
#if defined(TNL_WITH_CUDA)
    if (cuda_device_count() == 0) return unavailable("--device cuda: no CUDA device is visible");
    if (sharded) return make_cuda_tensor_parallel(checkpoint, options);
    return make_cuda_backend(checkpoint, options);
#else
    return unavailable("--device cuda: this build has no CUDA backend (nvcc was not found at configure time)");
#endif
  }
  return invalid_argument("unknown device \"" + options.device + "\" (expected auto, cpu or cuda)");
}

}  // namespace

Expected<std::unique_ptr<Backend>> make_backend(const Checkpoint& checkpoint, const BackendOptions& options) {
  TNL_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_device_backend(checkpoint, options));
  if (options.test_fatal_step > 0 && options.tensor_parallel_size <= 1) {
    return make_fault_injecting_backend(std::move(backend), options.test_fatal_step);
  }
  return backend;
}

}  // namespace tnl
