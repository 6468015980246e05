// A launcher's view of the current device: one attribute, 0 when it cannot be read
// (the error is cleared so it does not surface at the next launch). The query
// does not touch the device, so launchers may ask on every call.
#pragma once

#include <cuda_runtime.h>

namespace tnl::cuda {

inline int current_device_attribute(cudaDeviceAttr attr) {
  int device = 0, value = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return value;
}

}  // namespace tnl::cuda
