// sum_rank_buffers: the single-device communicator's all-reduce. Tensor-parallel
// ranks that share one GPU keep their buffers in its memory; one launch on the
// shared stream adds them in rank order and writes the sum back to each.
#include <algorithm>

#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

__global__ void sum_rank_buffers_kernel(RankBufferSet buffers, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int32_t r = 0; r < buffers.count; ++r) sum += buffers.data[r][i];
    for (int32_t r = 0; r < buffers.count; ++r) buffers.data[r][i] = sum;
  }
}

}  // namespace

cudaError_t sum_rank_buffers(const RankBufferSet& buffers, int64_t n, cudaStream_t stream) {
  if (n < 0 || buffers.count < 1 || buffers.count > kMaxRankBuffers) return cudaErrorInvalidValue;
  for (int32_t r = 0; r < buffers.count; ++r) {
    if (!buffers.data[r]) return cudaErrorInvalidValue;
  }
  if (n == 0) return cudaSuccess;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 4096);
  sum_rank_buffers_kernel<<<unsigned(blocks), 256, 0, stream>>>(buffers, n);
  return cudaGetLastError();
}

}  // namespace tnl::cuda
