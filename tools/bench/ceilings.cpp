#include "tools/bench/ceilings.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_buffer.h"
#include "kernels/cuda/launchers.h"

namespace tnl::bench {

Expected<Ceilings> measure_ceilings(GpuTimer& timer, cudaStream_t stream) {
  Ceilings c;
  int device = 0;
  TNL_CUDA_TRY(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  TNL_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  c.device = prop.name;
  c.sm_count = prop.multiProcessorCount;

  {  // Copy: 2 GiB read + 2 GiB written per run.
    const int64_t n = int64_t(1) << 31;
    DeviceBuffer<std::byte> src, dst;
    TNL_RETURN_IF_ERROR(src.allocate(n));
    TNL_RETURN_IF_ERROR(dst.allocate(n));
    TNL_CUDA_TRY(cudaMemsetAsync(src.get(), 0x5A, size_t(n), stream));
    TNL_ASSIGN_OR_RETURN(const double ms, timer.median_ms(stream, 2, 10, [&](int) {
      return cudaMemcpyAsync(dst.get(), src.get(), size_t(n), cudaMemcpyDeviceToDevice, stream);
    }));
    c.bandwidth_gbs = 2.0 * double(n) / (ms / 1e3) / 1e9;
  }
  {  // Matmul: bf16 operands on random data (zeros run faster), fp32 accumulation.
    const int m = 8192;
    DeviceBuffer<__nv_bfloat16> a, b, y;
    TNL_RETURN_IF_ERROR(a.allocate(int64_t(m) * m));
    TNL_RETURN_IF_ERROR(b.allocate(int64_t(m) * m));
    TNL_RETURN_IF_ERROR(y.allocate(int64_t(m) * m));
    TNL_CUDA_TRY(cuda::fill_uniform(a.get(), a.size(), 1, 1.0f, stream));
    TNL_CUDA_TRY(cuda::fill_uniform(b.get(), b.size(), 2, 1.0f, stream));
    cublasHandle_t handle = nullptr;
    TNL_CUBLAS_TRY(cublasCreate(&handle));
    cublasSetStream(handle, stream);
    const float alpha = 1.0f, beta = 0.0f;
    auto ms = timer.median_ms(stream, 3, 10, [&](int) {
      const cublasStatus_t s = cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &alpha, a.get(), CUDA_R_16BF, m,
                                            b.get(), CUDA_R_16BF, m, &beta, y.get(), CUDA_R_16BF, m, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT);
      return s == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown;
    });
    cublasDestroy(handle);
    if (!ms.has_value()) return ms.status();
    c.matmul_tflops = 2.0 * double(m) * m * m / (*ms / 1e3) / 1e12;
  }
  return c;
}

}  // namespace tnl::bench
