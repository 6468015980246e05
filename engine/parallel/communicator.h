// Communicator: the collectives tensor-parallel ranks run inside a step
// (model-spec §7). One object per rank; every rank calls the same collectives in
// the same order with the same counts. Buffers are wherever the rank computes:
// host memory for the CPU backend, device memory (ordered on the rank's stream)
// for the CUDA backend.
//
// Errors: a collective fails (never hangs) once the group is aborted — a rank's
// step failed, a peer vanished, or a rank waited past the group's timeout. An
// aborted group stays aborted: the backend reports kFatal and the engine stops.
#pragma once

#include <cstdint>
#include <string>

#include "engine/status.h"

namespace tnl {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int32_t rank() const = 0;
  virtual int32_t size() const = 0;
  virtual std::string name() const = 0;  // "in-process", "single-device", "nccl"

  // data[i] ← Σ_ranks data[i], in place, fp32.
  virtual Status all_reduce_sum(float* data, int64_t count) = 0;
  // recv[r·count + i] ← rank r's send[i]; recv holds size()·count floats.
  virtual Status all_gather(const float* send, float* recv, int64_t count) = 0;
  // data ← root's data (bytes), on every rank.
  virtual Status broadcast(void* data, int64_t bytes, int32_t root) = 0;

  // Wakes every rank blocked in a collective of this group and fails every later
  // one. Callable from any thread; idempotent.
  virtual void abort(const std::string& why) = 0;
  // Whether collectives may be recorded into a CUDA graph on the rank's stream.
  virtual bool supports_graph_capture() const { return false; }
};

}  // namespace tnl
