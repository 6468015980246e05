// CUDA and cuBLAS errors as Status values (never aborts: a failed call fails the step).
//
// Sticky errors (an illegal address, a failed launch, an uncorrectable ECC error,
// ...) corrupt the CUDA context: every later call on it fails too. They come back
// as kFatal, so the engine latches dead and /health says so (the orchestrator then
// restarts the process); every other error fails only the step it happened in.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "engine/status.h"

namespace tnl {

// The errors after which the context is unusable (CUDA runtime API documentation:
// "the process must be terminated and relaunched").
inline bool cuda_error_is_sticky(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorContextIsDestroyed:
    case cudaErrorDevicesUnavailable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorAssert:
      return true;
    default:
      return false;
  }
}

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  std::string message = std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (cuda_error_is_sticky(err)) return fatal_error("sticky CUDA error, the GPU context is lost: " + message);
  return internal_error(std::move(message));
}

inline Status cublas_status(cublasStatus_t err, const char* what) {
  if (err == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return internal_error(std::string(what) + ": cuBLAS error " + std::to_string(int(err)));
}

}  // namespace tnl

#define TNL_CUDA_TRY(expr) TNL_RETURN_IF_ERROR(::tnl::cuda_status((expr), #expr))
#define TNL_CUBLAS_TRY(expr) TNL_RETURN_IF_ERROR(::tnl::cublas_status((expr), #expr))
