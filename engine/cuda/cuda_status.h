// CUDA and cuBLAS errors as Status values (never aborts: a failed call fails the step).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "engine/status.h"

namespace tnl {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return internal_error(std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

inline Status cublas_status(cublasStatus_t err, const char* what) {
  if (err == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return internal_error(std::string(what) + ": cuBLAS error " + std::to_string(int(err)));
}

}  // namespace tnl

#define TNL_CUDA_TRY(expr) TNL_RETURN_IF_ERROR(::tnl::cuda_status((expr), #expr))
#define TNL_CUBLAS_TRY(expr) TNL_RETURN_IF_ERROR(::tnl::cublas_status((expr), #expr))
