// The NCCL communicator (cuda_communicator.h). Built when the CUDA toolkit has
// NCCL (TNL_WITH_NCCL); otherwise make_nccl_communicators says so.
#include <cstdlib>

#include "engine/cuda/cuda_communicator.h"
#include "engine/cuda/cuda_status.h"

#if defined(TNL_WITH_NCCL)
#include <nccl.h>

#include <atomic>
#include <mutex>
#endif

namespace tnl {

#if defined(TNL_WITH_NCCL)
namespace {

// The group's NCCL communicators: aborting one rank aborts them all, since a
// peer of a dead rank would otherwise wait in its collective for good.
class NcclGroup {
 public:
  explicit NcclGroup(std::vector<ncclComm_t> comms) : comms_(std::move(comms)) {}
  ~NcclGroup() {
    if (aborted_.load()) return;
    for (ncclComm_t c : comms_) ncclCommDestroy(c);
  }
  ncclComm_t comm(int32_t rank) const { return comms_[size_t(rank)]; }
  bool aborted() const { return aborted_.load(); }
  std::string reason() const {
    std::lock_guard lock(mu_);
    return reason_;
  }
  void abort(const std::string& why) {
    std::lock_guard lock(mu_);
    if (aborted_.exchange(true)) return;
    reason_ = why;
    for (ncclComm_t c : comms_) ncclCommAbort(c);
  }

 private:
  std::vector<ncclComm_t> comms_;
  std::atomic<bool> aborted_{false};
  mutable std::mutex mu_;
  std::string reason_;  // guarded by mu_
};

Status nccl_status(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return Status::ok();
  return fatal_error(std::string(what) + ": " + ncclGetErrorString(r) +
                     " (NCCL_DEBUG=INFO in the environment logs why)");
}

class NcclCommunicator final : public CudaCommunicator {
 public:
  NcclCommunicator(std::shared_ptr<NcclGroup> group, int32_t rank, int32_t size, int device, cudaStream_t stream)
      : group_(std::move(group)), rank_(rank), size_(size), device_(device), stream_(stream) {}
  ~NcclCommunicator() override {
    cudaSetDevice(device_);
    cudaStreamDestroy(stream_);
  }

  int32_t rank() const override { return rank_; }
  int32_t size() const override { return size_; }
  std::string name() const override { return "nccl"; }
  int device() const override { return device_; }
  cudaStream_t stream() const override { return stream_; }
  bool supports_graph_capture() const override { return true; }
  void abort(const std::string& why) override { group_->abort(why); }

  Status all_reduce_sum(float* data, int64_t count) override {
    TNL_RETURN_IF_ERROR(alive());
    return nccl_status(ncclAllReduce(data, data, size_t(count), ncclFloat, ncclSum, group_->comm(rank_), stream_),
                       "ncclAllReduce");
  }
  Status all_gather(const float* send, float* recv, int64_t count) override {
    TNL_RETURN_IF_ERROR(alive());
    return nccl_status(ncclAllGather(send, recv, size_t(count), ncclFloat, group_->comm(rank_), stream_),
                       "ncclAllGather");
  }
  Status broadcast(void* data, int64_t bytes, int32_t root) override {
    TNL_RETURN_IF_ERROR(alive());
    return nccl_status(ncclBroadcast(data, data, size_t(bytes), ncclChar, root, group_->comm(rank_), stream_),
                       "ncclBroadcast");
  }

 private:
  Status alive() const {
    if (!group_->aborted()) return Status::ok();
    return fatal_error("tensor-parallel communicator aborted: " + group_->reason());
  }

  std::shared_ptr<NcclGroup> group_;
  int32_t rank_, size_;
  int device_;
  cudaStream_t stream_;
};

}  // namespace

bool nccl_built() { return true; }

Expected<CudaCommunicators> make_nccl_communicators(int first_device, int32_t size) {
  int visible = 0;
  if (cudaGetDeviceCount(&visible) != cudaSuccess) {
    cudaGetLastError();
    visible = 0;
  }
  if (first_device < 0 || first_device + size > visible) {
    return invalid_argument("--tensor-parallel-size " + std::to_string(size) + " with NCCL needs " +
                            std::to_string(size) + " GPUs from --gpu-device " + std::to_string(first_device) +
                            ", but " + std::to_string(visible) +
                            " are visible: lower --tensor-parallel-size, or use --tensor-parallel-comm "
                            "single-device to test the sharded path on one GPU");
  }
  // NVLink multicast (NVLS) is refused on our machines; the operator may still
  // turn it on by setting the variable (setenv does not overwrite).
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  std::vector<int> devices;
  for (int32_t r = 0; r < size; ++r) devices.push_back(first_device + r);
  std::vector<ncclComm_t> comms(static_cast<size_t>(size), nullptr);
  const ncclResult_t init = ncclCommInitAll(comms.data(), size, devices.data());
  if (init != ncclSuccess) {
    return unavailable("NCCL initialisation failed over GPUs " + std::to_string(first_device) + ".." +
                       std::to_string(first_device + size - 1) + ": " + ncclGetErrorString(init) +
                       " (set NCCL_DEBUG=INFO to see why; NCCL_SOCKET_IFNAME and NCCL_P2P_DISABLE are the "
                       "usual knobs, docs/operations.md)");
  }
  auto group = std::make_shared<NcclGroup>(comms);
  CudaCommunicators out;
  for (int32_t r = 0; r < size; ++r) {
    cudaStream_t stream = nullptr;
    TNL_CUDA_TRY(cudaSetDevice(devices[size_t(r)]));
    TNL_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    out.push_back(std::make_unique<NcclCommunicator>(group, r, size, devices[size_t(r)], stream));
  }
  return out;
}

#else

bool nccl_built() { return false; }

Expected<CudaCommunicators> make_nccl_communicators(int, int32_t) {
  return unavailable("this build has no NCCL (nccl.h and libnccl were not found with the CUDA toolkit at "
                     "configure time); --tensor-parallel-comm single-device runs every rank on one GPU");
}

#endif

}  // namespace tnl
