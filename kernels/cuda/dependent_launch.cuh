// Programmatic Dependent Launch (Hopper, CUDA ≥ 12.3), for chains of short kernels
// where each launch's ramp-up would otherwise wait for the previous one's tail.
//
// A kernel launched by launch_dependent() may start while the kernel before it on
// the stream is still running, as soon as every CTA of that kernel has called
// allow_dependents() (or exited) and there is room on an SM. Until it calls
// wait_for_predecessor() it may only touch memory that no kernel of the chain
// writes (weights; the decode state of its own layer, written by the previous
// step's kernels, which have finished: the first kernel of every step is an
// ordinary launch). After the wait, everything the predecessor wrote is visible;
// since the predecessor itself waited on its own, so is all earlier work. A
// kernel launched the ordinary way after such a chain waits for all of it.
// Older GPUs run the same code as ordinary launches (the device side compiles to nothing).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "kernels/cuda/device_attribute.h"

namespace tnl::cuda {
namespace detail {

__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_predecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

}  // namespace detail

// kernel<<<grid, block, smem, stream>>>(args...), allowed to overlap the kernel
// before it on the stream (captured into a graph as a programmatic edge).
template <typename... Params, typename... Args>
cudaError_t launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             Args&&... args) {
  cudaLaunchAttribute attribute[1] = {};
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attribute;
  config.numAttrs = current_device_attribute(cudaDevAttrComputeCapabilityMajor) >= 9 ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace tnl::cuda
