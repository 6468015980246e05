#include "engine/backend_factory/backend_factory.h"

#include "engine/backend_factory/fault_injecting_backend.h"
#include "engine/cpu/cpu_backend.h"
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

Expected<std::unique_ptr<Backend>> make_device_backend(const Checkpoint& checkpoint, const BackendOptions& options) {
  std::string device = options.device;
  if (device == "auto") device = cuda_available() ? "cuda" : "cpu";
  if (device == "cpu") return make_cpu_backend(checkpoint, options);
  if (device == "cuda") {
#if defined(TNL_WITH_CUDA)
    if (cuda_device_count() == 0) return unavailable("--device cuda: no CUDA device is visible");
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
  if (options.test_fatal_step > 0) return make_fault_injecting_backend(std::move(backend), options.test_fatal_step);
  return backend;
}

}  // namespace tnl
