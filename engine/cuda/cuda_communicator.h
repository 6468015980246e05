// CUDA communicators: the collectives of tensor-parallel CUDA ranks
// (engine/parallel/communicator.h), on device buffers ordered on a stream that
// the communicator owns and its rank's backend computes on.
//
//   single-device  every rank on one GPU, one shared stream: at each collective
//                  the ranks meet on the host (RankRendezvous) once each has
//                  enqueued its part of the step, rank 0 enqueues the reduction
//                  (a kernel adding the ranks' buffers in rank order) or the
//                  copies, and the ranks meet again before enqueueing more. It
//                  exists to check every sharded CUDA path on one GPU: no speed-up,
//                  no CUDA graphs (the host meetings cannot be captured).
//   nccl           one GPU per rank (device first_device + r), one stream each;
//                  NCCL collectives, which CUDA graphs may capture. Sets
//                  NCCL_NVLS_ENABLE=0 unless the operator set it (NVLink
//                  multicast is refused on the machines we run on).
//
// Threads: each communicator is used by its rank's thread; abort() from any.
// Ownership: the communicators own their streams; the rank backends borrow them
// and are destroyed first (tensor_parallel_backend.h).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "engine/parallel/communicator.h"

namespace tnl {

class CudaCommunicator : public Communicator {
 public:
  virtual int device() const = 0;
  virtual cudaStream_t stream() const = 0;
};

using CudaCommunicators = std::vector<std::unique_ptr<CudaCommunicator>>;

Expected<CudaCommunicators> make_single_device_communicators(int device, int32_t size);

// Whether this build has NCCL (found with the CUDA toolkit at configure time).
bool nccl_built();
// Fails, saying what to change, when fewer than first_device + size GPUs are
// visible or NCCL cannot initialise.
Expected<CudaCommunicators> make_nccl_communicators(int first_device, int32_t size);

}  // namespace tnl
