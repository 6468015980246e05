#include "engine/parallel/tensor_parallel_backend.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

namespace tnl {
namespace {

// Runs one job on every rank at once: rank 0 on the calling thread, the others
// on their own threads. Threads: run() is called by one thread at a time.
class RankThreads {
 public:
  explicit RankThreads(int32_t size) : statuses_(size_t(size)) {
    for (int32_t r = 1; r < size; ++r) threads_.emplace_back([this, r] { loop(r); });
  }
  ~RankThreads() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    start_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Statuses by rank.
  const std::vector<Status>& run(const std::function<Status(int32_t)>& job) {
    {
      std::lock_guard lock(mu_);
      job_ = &job;
      pending_ = int32_t(threads_.size());
      ++generation_;
    }
    start_.notify_all();
    statuses_[0] = job(0);
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
    return statuses_;
  }

 private:
  void loop(int32_t rank) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<Status(int32_t)>* job = nullptr;
      {
        std::unique_lock lock(mu_);
        start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        job = job_;
      }
      Status status = (*job)(rank);
      std::lock_guard lock(mu_);
      statuses_[size_t(rank)] = std::move(status);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable start_, done_;
  const std::function<Status(int32_t)>* job_ = nullptr;  // guarded by mu_
  uint64_t generation_ = 0;                               // guarded by mu_
  int32_t pending_ = 0;                                   // guarded by mu_
  bool stopping_ = false;                                 // guarded by mu_
  std::vector<Status> statuses_;  // [0] written by run()'s thread, the rest under mu_
  std::vector<std::thread> threads_;
};

class TensorParallelBackend final : public Backend {
 public:
  TensorParallelBackend(std::vector<std::unique_ptr<Communicator>> comms, std::vector<std::unique_ptr<Backend>> ranks)
      : comms_(std::move(comms)), ranks_(std::move(ranks)), threads_(int32_t(ranks_.size())) {
    const ModelConfig& c = config();
    const int64_t heads_per_rank = c.num_heads / size();
    for (int64_t l = 0; l < c.num_layers; ++l) {
      rank_layer_bytes_.push_back(heads_per_rank * c.key_dim(l) * c.head_dim() * int64_t(sizeof(float)));
    }
  }
  ~TensorParallelBackend() override { ranks_.clear(); }  // before the communicators they point to

  const ModelConfig& config() const override { return ranks_[0]->config(); }
  std::string name() const override { return ranks_[0]->name() + " x" + std::to_string(size()); }
  int32_t num_slots() const override { return num_state_slots(StateTier::kLive); }
  int64_t state_bytes_per_slot() const override { return config().state_bytes_per_sequence(); }
  bool samples_on_device() const override { return ranks_[0]->samples_on_device(); }
  int32_t num_state_slots(StateTier tier) const override {
    int32_t n = ranks_[0]->num_state_slots(tier);
    for (const auto& r : ranks_) n = std::min(n, r->num_state_slots(tier));
    return n;
  }
  Counters counters() const override {
    Counters sum;
    for (const auto& r : ranks_) {
      sum.graph_captures += r->counters().graph_captures;
      sum.buffer_growths += r->counters().buffer_growths;
    }
    return sum;
  }
  void set_step_timing(bool on) override {
    for (const auto& r : ranks_) r->set_step_timing(on);
  }
  StepTiming last_step_timing() const override { return ranks_[0]->last_step_timing(); }  // the leader's

  Status run_step(const StepPlan& plan, StepOutput* out) override {
    if (!dead_.is_ok()) return dead_;
    // Checked once here, so that a bad plan fails alike on every rank before any
    // of them reaches a collective.
    TNL_RETURN_IF_ERROR(validate_step_plan(plan, config(), num_slots(), samples_on_device()));
    TNL_RETURN_IF_ERROR(validate_state_copies(plan, *this));
    std::vector<StepOutput> outs(ranks_.size());
    const std::vector<Status>& statuses = threads_.run([&](int32_t r) {
      Status s = ranks_[size_t(r)]->run_step(plan, &outs[size_t(r)]);
      if (!s.is_ok()) comms_[size_t(r)]->abort("rank " + std::to_string(r) + "'s step failed: " + s.message());
      return s;
    });
    TNL_RETURN_IF_ERROR(latch_failure(statuses));
    *out = std::move(outs[0]);
    return Status::ok();
  }

  Status read_state(StateRef slot, std::span<std::byte> out) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    if (int64_t(out.size()) != state_bytes_per_slot()) return invalid_argument("read_state: wrong buffer size");
    std::vector<std::byte> part;
    for (int32_t r = 0; r < size(); ++r) {
      part.resize(size_t(rank_state_bytes()));
      TNL_RETURN_IF_ERROR(ranks_[size_t(r)]->read_state(slot, part));
      for_each_layer_part(r, [&](int64_t global_at, int64_t rank_at, int64_t n) {
        std::memcpy(out.data() + global_at, part.data() + rank_at, size_t(n));
      });
    }
    return Status::ok();
  }

  Status write_state(StateRef slot, std::span<const std::byte> in) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    if (int64_t(in.size()) != state_bytes_per_slot()) return invalid_argument("write_state: wrong buffer size");
    std::vector<std::byte> part(static_cast<size_t>(rank_state_bytes()));
    for (int32_t r = 0; r < size(); ++r) {
      for_each_layer_part(r, [&](int64_t global_at, int64_t rank_at, int64_t n) {
        std::memcpy(part.data() + rank_at, in.data() + global_at, size_t(n));
      });
      TNL_RETURN_IF_ERROR(ranks_[size_t(r)]->write_state(slot, part));
    }
    return Status::ok();
  }

 private:
  int32_t size() const { return int32_t(ranks_.size()); }
  int64_t rank_state_bytes() const { return state_bytes_per_slot() / size(); }

  // The whole state is, per layer, every head in order; rank r's is, per layer,
  // its heads. fn(offset in the whole state, offset in rank r's, bytes).
  template <typename Fn>
  void for_each_layer_part(int32_t r, Fn fn) const {
    int64_t global_at = 0, rank_at = 0;
    for (int64_t layer_bytes : rank_layer_bytes_) {
      fn(global_at + r * layer_bytes, rank_at, layer_bytes);
      global_at += layer_bytes * size();
      rank_at += layer_bytes;
    }
  }

  // The first rank error that is not just "a peer aborted", as kFatal.
  Status latch_failure(const std::vector<Status>& statuses) {
    const Status* first = nullptr;
    for (const Status& s : statuses) {
      if (s.is_ok()) continue;
      const bool echo = s.message().rfind("tensor-parallel communicator aborted", 0) == 0;
      if (first == nullptr || (!echo && first->message().rfind("tensor-parallel communicator aborted", 0) == 0)) {
        first = &s;
      }
    }
    if (first == nullptr) return Status::ok();
    dead_ = fatal_error("tensor-parallel step failed (" + std::string(status_code_name(first->code())) +
                        "): " + first->message());
    return dead_;
  }

  std::vector<std::unique_ptr<Communicator>> comms_;
  std::vector<std::unique_ptr<Backend>> ranks_;
  RankThreads threads_;
  std::vector<int64_t> rank_layer_bytes_;  // per layer: one rank's state bytes
  Status dead_;                            // set once a step failed: the group is aborted
};

}  // namespace

std::unique_ptr<Backend> make_tensor_parallel_backend(std::vector<std::unique_ptr<Communicator>> comms,
                                                      std::vector<std::unique_ptr<Backend>> ranks) {
  if (ranks.size() == 1) return std::move(ranks[0]);
  return std::make_unique<TensorParallelBackend>(std::move(comms), std::move(ranks));
}

}  // namespace tnl
