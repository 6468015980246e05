// Measures the two ceilings every floor is computed from, on the device at hand:
// a large device-to-device copy (bytes read + written per second) and a bf16
// 8192³ matrix product through cuBLAS (fp32 accumulation), on random data.
#pragma once

#include <cuda_runtime.h>

#include "engine/status.h"
#include "tools/bench/gpu_timer.h"
#include "tools/bench/report.h"

namespace tnl::bench {

Expected<Ceilings> measure_ceilings(GpuTimer& timer, cudaStream_t stream);

}  // namespace tnl::bench
