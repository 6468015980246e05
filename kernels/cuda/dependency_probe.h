// A producer for testing whether a kernel waits for its programmatic
// predecessor (dependent_launch.cuh) before it reads what that predecessor
// writes: delayed_copy lets its dependents be placed at once, then spins for
// `delay_ns` of GPU time, and only then copies `bytes` from src to dst. A
// consumer placed behind it by a programmatic edge that reads dst without
// waiting (griddepcontrol.wait) reads what dst held before; one that waits reads
// src. The GEMM runner uses it to decide which cuBLASLt kernels may enter a
// captured graph that way (engine/cuda/gemm.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tnl::cuda {

// bytes: a multiple of 16, src and dst 16-byte aligned. An ordinary launch.
cudaError_t delayed_copy(const void* src, void* dst, int64_t bytes, int64_t delay_ns, cudaStream_t stream);

}  // namespace tnl::cuda
