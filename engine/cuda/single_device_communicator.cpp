// The single-device communicator (cuda_communicator.h).
#include <chrono>

#include "engine/cuda/cuda_communicator.h"
#include "engine/cuda/cuda_status.h"
#include "engine/parallel/rank_rendezvous.h"
#include "kernels/cuda/launchers.h"

namespace tnl {
namespace {

// What the ranks of one GPU share: the meeting point and the stream.
struct SharedDevice {
  SharedDevice(int device, int32_t size) : device(device), rendezvous(size, std::chrono::seconds(120)) {}
  ~SharedDevice() {
    if (stream) {
      cudaSetDevice(device);
      cudaStreamDestroy(stream);
    }
  }
  int device;
  cudaStream_t stream = nullptr;
  RankRendezvous rendezvous;
};

class SingleDeviceCommunicator final : public CudaCommunicator {
 public:
  SingleDeviceCommunicator(std::shared_ptr<SharedDevice> shared, int32_t rank)
      : shared_(std::move(shared)), rank_(rank) {}

  int32_t rank() const override { return rank_; }
  int32_t size() const override { return shared_->rendezvous.size(); }
  std::string name() const override { return "single-device"; }
  int device() const override { return shared_->device; }
  cudaStream_t stream() const override { return shared_->stream; }
  void abort(const std::string& why) override { shared_->rendezvous.abort(why); }

  Status all_reduce_sum(float* data, int64_t count) override {
    return collective({"all_reduce_sum", data, data, count}, [&](const std::vector<RankBuffers>& all) -> Status {
      cuda::RankBufferSet set;
      set.count = int32_t(all.size());
      for (size_t r = 0; r < all.size(); ++r) set.data[r] = static_cast<float*>(all[r].recv);
      TNL_CUDA_TRY(cuda::sum_rank_buffers(set, count, stream()));
      return Status::ok();
    });
  }

  Status all_gather(const float* send, float* recv, int64_t count) override {
    return collective({"all_gather", send, recv, count}, [&](const std::vector<RankBuffers>& all) -> Status {
      for (const RankBuffers& to : all) {
        for (size_t r = 0; r < all.size(); ++r) {
          TNL_CUDA_TRY(cudaMemcpyAsync(static_cast<float*>(to.recv) + int64_t(r) * count, all[r].send,
                                       size_t(count) * sizeof(float), cudaMemcpyDefault, stream()));
        }
      }
      return Status::ok();
    });
  }

  Status broadcast(void* data, int64_t bytes, int32_t root) override {
    if (root < 0 || root >= size()) return invalid_argument("broadcast: no rank " + std::to_string(root));
    return collective({"broadcast", data, data, bytes}, [&](const std::vector<RankBuffers>& all) -> Status {
      for (size_t r = 0; r < all.size(); ++r) {
        if (int32_t(r) == root) continue;
        TNL_CUDA_TRY(cudaMemcpyAsync(all[r].recv, all[size_t(root)].send, size_t(bytes), cudaMemcpyDefault, stream()));
      }
      return Status::ok();
    });
  }

 private:
  // Meet, let rank 0 enqueue the work on the shared stream, meet again: no rank
  // enqueues what follows the collective before the collective itself.
  template <typename Work>
  Status collective(const RankBuffers& mine, Work work) {
    std::vector<RankBuffers> all;
    TNL_RETURN_IF_ERROR(shared_->rendezvous.exchange(rank_, mine, &all));
    Status enqueued = Status::ok();
    if (rank_ == 0) {
      enqueued = work(all);
      if (!enqueued.is_ok()) shared_->rendezvous.abort("single-device collective: " + enqueued.message());
    }
    const Status met = shared_->rendezvous.meet(rank_);
    return enqueued.is_ok() ? met : enqueued;
  }

  std::shared_ptr<SharedDevice> shared_;
  int32_t rank_;
};

}  // namespace

Expected<CudaCommunicators> make_single_device_communicators(int device, int32_t size) {
  if (size < 1 || size > cuda::kMaxRankBuffers) {
    return invalid_argument("the single-device communicator takes 1 to " + std::to_string(cuda::kMaxRankBuffers) +
                            " ranks, got " + std::to_string(size));
  }
  auto shared = std::make_shared<SharedDevice>(device, size);
  TNL_CUDA_TRY(cudaSetDevice(device));
  TNL_CUDA_TRY(cudaStreamCreateWithFlags(&shared->stream, cudaStreamNonBlocking));
  CudaCommunicators comms;
  for (int32_t r = 0; r < size; ++r) comms.push_back(std::make_unique<SingleDeviceCommunicator>(shared, r));
  return comms;
}

}  // namespace tnl
