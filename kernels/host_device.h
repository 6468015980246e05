// TNL_HOST_DEVICE: a function that both the host compiler and nvcc compile, so
// that a rule shared by the CPU paths and the kernels is written once.
#pragma once

#if defined(__CUDACC__)
#define TNL_HOST_DEVICE __host__ __device__
#else
#define TNL_HOST_DEVICE
#endif
