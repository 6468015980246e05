// Bias add for checkpoints with `bias: true` (model-spec §3): y[r, :] += b.
// The released models have no biases, so this stays a plain elementwise pass.
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

template <typename Y, typename T>
__global__ void add_bias_kernel(Y* y, const T* bias, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * cols; i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = detail::from_f32<Y>(detail::to_f32(y[i]) + detail::to_f32(bias[i % cols]));
  }
}

template <typename Y, typename T>
cudaError_t launch(Y* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || !y || !bias) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int grid = int(std::min<int64_t>(detail::ceil_div(rows * cols, 256), 132 * 8));
  add_bias_kernel<<<grid, 256, 0, stream>>>(y, bias, rows, cols);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t add_bias(T* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  return launch(y, bias, rows, cols, stream);
}
template <typename T>
cudaError_t add_bias_f32(float* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  return launch(y, bias, rows, cols, stream);
}

template cudaError_t add_bias<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, int64_t, int64_t, cudaStream_t);
template cudaError_t add_bias<__half>(__half*, const __half*, int64_t, int64_t, cudaStream_t);
template cudaError_t add_bias_f32<__nv_bfloat16>(float*, const __nv_bfloat16*, int64_t, int64_t, cudaStream_t);
template cudaError_t add_bias_f32<__half>(float*, const __half*, int64_t, int64_t, cudaStream_t);

}  // namespace tnl::cuda
