// Helpers for the CUDA kernel tests: device vectors filled from host vectors,
// read back as fp32, poisoned with NaN before a kernel writes them, and the
// skip that keeps these tests green on machines without a GPU.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>
#include <vector>

namespace tnl::test {

inline bool have_cuda_device() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

#define TNL_SKIP_WITHOUT_CUDA()                                   \
  do {                                                            \
    if (!::tnl::test::have_cuda_device()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

#define TNL_EXPECT_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << cudaGetErrorString(cudaGetLastError())

inline float to_float(float x) { return x; }
inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
inline float to_float(__half x) { return __half2float(x); }
inline int32_t to_float(int32_t x) { return x; }

template <typename T>
T from_float(float x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16(x);
  else if constexpr (std::is_same_v<T, __half>) return __float2half(x);
  else return T(x);
}

// Rounds every value to T and back: the inputs a T kernel sees, as the reference must see them.
template <typename T>
std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = to_float(from_float<T>(x));
  return v;
}

// An owned device array of T.
template <typename T>
class DeviceVector {
 public:
  DeviceVector() = default;
  explicit DeviceVector(size_t n) : n_(n) {
    if (n_ && cudaMalloc(&p_, n_ * sizeof(T)) != cudaSuccess) p_ = nullptr;
  }
  // Uploads host values converted to T.
  template <typename U>
  explicit DeviceVector(const std::vector<U>& host) : DeviceVector(host.size()) {
    std::vector<T> t(host.size());
    for (size_t i = 0; i < host.size(); ++i) {
      if constexpr (std::is_same_v<T, int32_t>) t[i] = int32_t(host[i]);
      else t[i] = from_float<T>(float(host[i]));
    }
    if (n_) cudaMemcpy(p_, t.data(), n_ * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~DeviceVector() {
    if (p_) cudaFree(p_);
  }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  // All bits set: NaN in fp32, bf16 and fp16, so an element a kernel skipped shows.
  void poison() { cudaMemset(p_, 0xFF, n_ * sizeof(T)); }
  std::vector<float> to_host() const {
    std::vector<T> t(n_);
    cudaDeviceSynchronize();
    cudaMemcpy(t.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    std::vector<float> out(n_);
    for (size_t i = 0; i < n_; ++i) out[i] = float(to_float(t[i]));
    return out;
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace tnl::test
