// The CUDA backend: model-spec §4 on the GPU with the kernels of kernels/cuda/.
//
// A step's tokens are laid out decode chunks first (one row each, handled by the
// fused recurrent-decode kernel), then prefill chunks (split into head-major q, k, v
// and run by Lightning Attention as one variable-length launch). Projections are
// cuBLASLt GEMMs over all tokens of the step, padded to a row bucket whose kernel
// was chosen by timing at start-up (gemm_rows.h, gemm.h);
// the fp32 residual stream takes the out_proj and l3 products with beta = 1.
// Decode-state slots are one fp32 pool.
//
// Tensor parallelism (model-spec §7): a rank holds its shard (shard_layout.h)
// and computes with the shard's shapes (config_ is the shard's, global_ the
// model's); a CudaCommunicator joins the ranks at four places per step: the
// embedding (vocabulary shards), the post-attention norm (its sum of squares
// spans all D channels), after out_proj and after l3 (partial products; rank 0
// alone adds the residual and the bias). Logits are gathered and un-padded on
// every rank; rank 0 samples and returns them.
//
// Threads: driven by one thread at a time (Backend contract); all work is on the
// backend's stream (its own, or its communicator's), synchronised once per step
// when logits are copied back.
#include "engine/cuda/cuda_backend.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <map>
#include <vector>

#include "engine/cuda/cuda_communicator.h"
#include "engine/cuda/cuda_weights.h"
#include "engine/cuda/device_buffer.h"
#include "engine/cuda/device_sampler.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/gemm_rows.h"
#include "engine/cuda/pinned_buffer.h"
#include "engine/cuda/state_store.h"
#include "engine/cuda/step_layout.h"
#include "engine/cuda/step_timer.h"
#include "engine/parallel/shard_layout.h"
#include "engine/parallel/tensor_parallel_backend.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/small_batch_linear.h"

namespace tnl {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

namespace {

// Lightning Attention has tiles for these (e, e_k); other head widths prefill by
// the recurrence, token by token (correct, slower: small test models only).
bool lightning_supports(int64_t e, int64_t ek) {
  return (e == 128 || e == 64 || e == 32) && (ek == e || ek == 2 * e);
}

// Activations of one step, grown on demand (capacity in tokens / logits rows).
template <typename T>
struct Activations {
  DeviceBuffer<float> x;        // [N, d] residual stream
  DeviceBuffer<T> a;            // [N, max(d, G)] GEMM input
  DeviceBuffer<T> qkvu;         // [N, 4D]
  DeviceBuffer<T> q, k, v;      // head-major prefill q, k [H, n, e_k], v [H, n, e]
  DeviceBuffer<T> o;            // [N, D] attention output, then the gated norm
  DeviceBuffer<T> h12;          // [N, 2G]
  DeviceBuffer<float> scratch;  // Lightning segment states
  DeviceBuffer<float> logits;   // [R, V] (the whole vocabulary)
  DeviceBuffer<int32_t> ints;   // StepLayout::ints
  // Tensor parallelism only:
  DeviceBuffer<float> sum_sq;          // [N] the post-attention norm's sums of squares
  DeviceBuffer<float> logits_shard;    // [R, V'] this rank's vocabulary rows
  DeviceBuffer<float> logits_gathered; // [T, R, V'] every rank's
};

// Where a rank sits: its shard, its communicator (null: the whole model on its
// own stream), and the device bytes its slots may budget from (0: what the
// device has free; ranks sharing one GPU split it beforehand).
struct RankPlacement {
  ShardLayout shard;
  CudaCommunicator* comm = nullptr;
  int64_t free_bytes = 0;
};

template <typename T>
class CudaBackend final : public Backend {
 public:
  ~CudaBackend() override {
    cudaSetDevice(device_);
    clear_graphs();
    gemm_.reset();
    if (stream_ && !comm_) cudaStreamDestroy(stream_);  // else the communicator's
  }

  // `weights(stream)` produces the device weights once the stream exists.
  template <typename LoadWeights>
  static Expected<std::unique_ptr<Backend>> create(const RankPlacement& placement, const BackendOptions& options,
                                                   LoadWeights weights) {
    std::unique_ptr<CudaBackend> b(new CudaBackend(placement, options));
    TNL_RETURN_IF_ERROR(b->init(options, weights));
    return std::unique_ptr<Backend>(std::move(b));
  }

  const ModelConfig& config() const override { return global_; }
  std::string name() const override { return "cuda"; }
  int32_t num_slots() const override { return num_slots_; }
  int64_t state_bytes_per_slot() const override { return state_floats_per_slot_ * int64_t(sizeof(float)); }
  int32_t num_state_slots(StateTier tier) const override { return store_.slots(tier); }
  Status read_state(StateRef slot, std::span<std::byte> out) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    TNL_CUDA_TRY(cudaSetDevice(device_));
    return store_.read(slot, out);
  }
  Status write_state(StateRef slot, std::span<const std::byte> in) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    TNL_CUDA_TRY(cudaSetDevice(device_));
    return store_.write(slot, in);
  }
  bool samples_on_device() const override { return true; }
  Counters counters() const override {
    Counters c = counters_;
    c.buffer_growths += sampler_.growths();
    return c;
  }
  void set_step_timing(bool on) override {
    cudaSetDevice(device_);
    const Status s = timer_.enable(on);
    if (!s.is_ok()) spdlog::warn("cuda backend{}: no step timing: {}", rank_label(), s.to_string());
  }
  StepTiming last_step_timing() const override { return timer_.last(); }

  Status run_step(const StepPlan& plan, StepOutput* out) override {
    TNL_RETURN_IF_ERROR(validate_step_plan(plan, global_, num_slots_, /*device_sampling=*/true));
    TNL_RETURN_IF_ERROR(validate_state_copies(plan, *this));
    TNL_CUDA_TRY(cudaSetDevice(device_));  // a tensor-parallel rank's thread may not have it current
    TNL_RETURN_IF_ERROR(timer_.begin(stream_));
    TNL_RETURN_IF_ERROR(store_.run_copies(plan.copies_before));
    if (plan.chunks.empty()) {
      *out = StepOutput{global_.vocab_size, {}, {}, {}};
      TNL_RETURN_IF_ERROR(store_.run_copies(plan.copies_after));
      TNL_RETURN_IF_ERROR(timer_.enqueued(stream_));
      TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
      return timer_.finish();
    }
    if (use_graphs_ && is_decode_only(plan)) return run_decode_graph(plan, out);
    const StepLayout s = make_step_layout(plan, config_.num_heads, config_.head_dim(), lightning_target_ctas());
    TNL_RETURN_IF_ERROR(reserve(s));
    TNL_RETURN_IF_ERROR(upload_ints(s));
    TNL_RETURN_IF_ERROR(forward(s));
    return finish_step(plan, s, out);
  }

 private:
  // Every chunk decodes one token and yields a row (to sample or to return).
  static bool is_decode_only(const StepPlan& plan) {
    for (const SequenceChunk& c : plan.chunks) {
      if (c.tokens.size() != 1 || (c.logits == LogitsMode::kNone && !c.sample)) return false;
    }
    return !plan.chunks.empty();
  }

  // Decode steps replay a CUDA graph captured once per batch-size bucket (powers
  // of two): a decode step is ~10 launches per layer, too short to hide launch
  // gaps. The plan is padded to the bucket with rows that decode into the scratch
  // slot; only the real rows' logits are copied back.
  Status run_decode_graph(const StepPlan& plan, StepOutput* out) {
    const int64_t real = int64_t(plan.chunks.size());
    int64_t bucket = 1;
    while (bucket < real) bucket *= 2;
    const StepLayout s = make_step_layout(plan, config_.num_heads, config_.head_dim(), lightning_target_ctas(),
                                          {bucket - real, store_.scratch_slot()});
    TNL_RETURN_IF_ERROR(reserve(s));
    TNL_RETURN_IF_ERROR(upload_ints(s));
    if (decode_graphs_.find(bucket) == decode_graphs_.end()) TNL_RETURN_IF_ERROR(capture_decode_graph(bucket, s));
    TNL_CUDA_TRY(cudaGraphLaunch(decode_graphs_.at(bucket), stream_));
    return finish_step(plan, s, out);  // the padding rows come after every real row
  }

  Status capture_decode_graph(int64_t bucket, const StepLayout& s) {
    TNL_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    const Status captured = forward(s);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    if (!captured.is_ok()) {
      if (graph) cudaGraphDestroy(graph);
      return captured;
    }
    TNL_CUDA_TRY(ended);
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    TNL_CUDA_TRY(made);
    decode_graphs_[bucket] = exec;
    ++counters_.graph_captures;
    return Status::ok();
  }

  // The step's int arrays go up from pinned memory: an asynchronous copy. The
  // previous step's copy out of ints_host_ has finished (every step ends in a sync).
  Status upload_ints(const StepLayout& s) {
    TNL_RETURN_IF_ERROR(ints_host_.assign(s.ints.data(), int64_t(s.ints.size())));
    TNL_CUDA_TRY(cudaMemcpyAsync(act_.ints.get(), ints_host_.get(), s.ints.size() * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, stream_));
    return Status::ok();
  }

  // Enqueues the whole forward pass of a step; logits rows land in act_.logits.
  Status forward(const StepLayout& s) {
    const int32_t* ints = act_.ints.get();
    const int64_t N = s.num_tokens, d = config_.dim;
    const float scale = config_.scale_embedding ? float(std::sqrt(double(d))) : 1.0f;
    TNL_CUDA_TRY(cuda::embed_tokens<T>(weights_.embed.get(), config_.vocab_size, shard_.vocab_begin(), d,
                                       ints + s.tokens, N, scale, act_.x.get(), stream_));
    if (comm_) TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(act_.x.get(), N * d));
    for (int64_t l = 0; l < config_.num_layers; ++l) TNL_RETURN_IF_ERROR(layer(l, s));
    // logits = SRMSNorm(x[rows]) · Wlmᵀ, fp32
    const int64_t R = s.num_logit_rows;
    if (R > 0) {
      TNL_CUDA_TRY(cuda::srms_norm<T>(act_.x.get(), d, ints + s.logit_rows, R, act_.a.get(), stream_));
      TNL_RETURN_IF_ERROR(logits_gemm(gemm_row_bucket(R)));
      if (comm_) TNL_RETURN_IF_ERROR(gather_logits(R));
    }
    return Status::ok();
  }

  // logits[rows] = a[rows] · Wlmᵀ (fp32; this rank's vocabulary shard under tensor parallelism).
  Status logits_gemm(int64_t rows) {
    const ProjectionOperands o = logits_operands(rows);
    return gemm_->run(o.shape, o.x, weights_.output_matrix(), o.y, o.beta);
  }

  // Every rank's [R, V'] logits into act_.logits [R, V]: rank r's columns are
  // vocabulary [r·V', r·V' + its real rows), the padding rows dropped.
  Status gather_logits(int64_t R) {
    const int64_t Vs = config_.vocab_size, V = global_.vocab_size;
    TNL_RETURN_IF_ERROR(comm_->all_gather(act_.logits_shard.get(), act_.logits_gathered.get(), R * Vs));
    for (int32_t r = 0; r < shard_.size; ++r) {
      const int64_t cols = std::min(Vs, V - r * Vs);
      if (cols <= 0) continue;
      TNL_CUDA_TRY(cudaMemcpy2DAsync(act_.logits.get() + r * Vs, size_t(V) * sizeof(float),
                                     act_.logits_gathered.get() + r * R * Vs, size_t(Vs) * sizeof(float),
                                     size_t(cols) * sizeof(float), size_t(R), cudaMemcpyDeviceToDevice, stream_));
    }
    return Status::ok();
  }

  // Samples the chunks that ask for it on the GPU, runs the plan's copies_after,
  // copies the logits rows the host wants (the layout puts them first) and waits
  // for the step. Only those rows travel: until December 2026 every logits row of
  // the step did as soon as one chunk wanted its row — at 256 streams, each step
  // that ended a new prompt (whose row the prefix cache keeps) copied 256 rows.
  // A tensor-parallel rank other than 0 neither samples nor copies rows: rank
  // 0's output is the step's.
  Status finish_step(const StepPlan& plan, const StepLayout& s, StepOutput* out) {
    const int64_t V = global_.vocab_size;
    const bool leader = shard_.rank == 0;
    TNL_RETURN_IF_ERROR(store_.run_copies(plan.copies_after));
    if (leader && plan.prepare_sampling) TNL_RETURN_IF_ERROR(plan.prepare_sampling());  // overlaps the forward pass
    if (leader) TNL_RETURN_IF_ERROR(sampler_.enqueue(plan, s.sample_row, act_.logits.get(), V, stream_));
    TNL_RETURN_IF_ERROR(timer_.enqueued(stream_));  // the rows' copy below ends with the step
    // The host's share, while the device runs: before the rows' copy, which goes
    // to pageable memory and so returns only once the step is done.
    if (leader && plan.while_running) plan.while_running();
    const int64_t rows = leader ? s.num_host_rows : 0;
    out->vocab_size = V;
    out->row_begin = s.row_begin;
    out->logits.resize(size_t(rows * V));
    if (rows > 0) {
      TNL_CUDA_TRY(cudaMemcpyAsync(out->logits.data(), act_.logits.get(), size_t(rows * V) * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_));
    }
    TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
    if (leader) sampler_.collect(plan.chunks.size(), &out->sampled);
    return timer_.finish();
  }

  CudaBackend(const RankPlacement& placement, const BackendOptions& options)
      : shard_(placement.shard),
        config_(shard_.local),
        global_(shard_.global),
        options_(options),
        comm_(placement.comm),
        free_bytes_share_(placement.free_bytes),
        device_(comm_ ? comm_->device() : options.gpu_device),
        use_graphs_(!comm_ || comm_->supports_graph_capture()) {}

  template <typename LoadWeights>
  Status init(const BackendOptions& options, LoadWeights load_weights) {
    if (config_.head_dim() % 4 != 0 || config_.head_dim() / 4 > 256) {
      return unavailable("the CUDA backend needs a head width that is a multiple of 4 and at most 1024, got " +
                         std::to_string(config_.head_dim()));
    }
    TNL_CUDA_TRY(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    TNL_CUDA_TRY(cudaGetDeviceProperties(&prop, device_));
    sm_count_ = prop.multiProcessorCount;
    if (comm_) {
      stream_ = comm_->stream();
    } else {
      TNL_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }
    TNL_ASSIGN_OR_RETURN(weights_, load_weights(stream_));

    state_floats_per_slot_ = config_.state_bytes_per_sequence() / int64_t(sizeof(float));

    // Slots: what the memory fraction leaves after the weights and a reserve for
    // the activations of the largest step; the prefix cache's snapshot slots come
    // out of the same budget (by default half of what the live slots leave).
    size_t free_bytes = 0, total_bytes = 0;
    TNL_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (free_bytes_share_ > 0) free_bytes = size_t(std::max<int64_t>(0, free_bytes_share_ - weights_.bytes));
    const int64_t step_tokens = std::max<int64_t>(4096, options.max_step_tokens);
    const double budget = double(free_bytes) * options.gpu_memory_fraction -
                          double(activation_bytes(step_tokens, step_tokens)) -
                          double(DeviceSampler::device_bytes(options.max_slots, global_.vocab_size,
                                                             sampler_entries(options.max_slots)));
    const double slot_bytes = double(state_bytes_per_slot());
    const int64_t fit = budget > 0 ? int64_t(budget / slot_bytes) : 0;
    num_slots_ = int32_t(std::min<int64_t>(options.max_slots, fit - 1));  // one more is the scratch slot
    if (num_slots_ < 1) {
      return resource_exhausted("the GPU has no room for a single decode-state slot (" +
                                std::to_string(state_bytes_per_slot()) + " bytes) after the weights");
    }
    const int64_t left = std::max<int64_t>(0, fit - (num_slots_ + 1) - 4);  // 4: demotion staging slots
    const int64_t cache_slots = options.prefix_cache_bytes < 0
                                    ? std::min<int64_t>(left / 2, 1 << 16)
                                    : std::min<int64_t>(left, options.prefix_cache_bytes / state_bytes_per_slot());
    const int64_t host_slots = cache_slots > 0 ? options.prefix_cache_host_bytes / state_bytes_per_slot() : 0;
    TNL_RETURN_IF_ERROR(store_.init(config_, num_slots_, int32_t(cache_slots), int32_t(host_slots), stream_));
    // A fixed GEMM workspace: GEMMs inside captured graphs must not allocate.
    TNL_RETURN_IF_ERROR(gemm_workspace_.allocate(32 << 20));
    TNL_ASSIGN_OR_RETURN(gemm_, GemmRunner::create(std::is_same_v<T, __nv_bfloat16> ? CUDA_R_16BF : CUDA_R_16F, stream_,
                                                   gemm_workspace_.get(), size_t(gemm_workspace_.bytes())));
    // The most rows the fused small-batch layer takes at this model's widths: 16,
    // or 8 where 16 rows of the widest input do not fit its shared memory (the 7B
    // shape's glu_dim), or none; at most BackendOptions::small_batch_max_rows.
    const int64_t widest = std::max({config_.dim, config_.hidden_dim, config_.glu_dim});
    for (int64_t rows : {cuda::kSmallBatchMaxRows, cuda::kSmallBatchMaxRows / 2}) {
      if (cuda::small_batch_linear_fits(rows, widest, int64_t(sizeof(T)))) {
        small_batch_rows_ = rows;
        break;
      }
    }
    if (options.small_batch_max_rows >= 0) {
      small_batch_rows_ = std::min<int64_t>(small_batch_rows_, options.small_batch_max_rows);
    }
    fused_sglu_ready_ = cuda::sglu_gemm_available() && cuda::sglu_gemm_fits(config_.dim, config_.glu_dim);
    TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
    if (shard_.rank == 0) {  // the leader samples (a TP group's other ranks never do)
      TNL_RETURN_IF_ERROR(sampler_.prepare(num_slots_, global_.vocab_size, sampler_entries(num_slots_)));
    }
    TNL_RETURN_IF_ERROR(prepare_for_serving(step_tokens));
    spdlog::info("cuda backend{}: {} {} ({} SMs), weights {:.1f} MB {}, {} state slots x {:.2f} MB, {} prefix-cache "
                 "slots in GPU memory, {} in pinned host memory; states {:.1f} MB on the GPU, {:.1f} MB on the host",
                 rank_label(), device_, prop.name, sm_count_, double(weights_.bytes) / 1e6, options.gpu_dtype, num_slots_,
                 double(state_bytes_per_slot()) / 1e6, cache_slots, host_slots, double(store_.device_bytes()) / 1e6,
                 double(store_.host_bytes()) / 1e6);
    return Status::ok();
  }

  std::string rank_label() const {
    if (!comm_) return "";
    return " rank " + std::to_string(shard_.rank) + "/" + std::to_string(shard_.size) + " (" + comm_->name() + ")";
  }

  // Penalty and bias entries the device sampler has room for from the start: a
  // request's whole list travels once per slot it samples in (PenaltyRowMode), so
  // 1,024 a slot covers a step where every slot starts with a long prompt's set
  // only partly; a step that sends more grows the buffer (counted).
  static int64_t sampler_entries(int64_t slots) { return std::max<int64_t>(slots, 1) * 1024; }

  int64_t activation_bytes(int64_t tokens, int64_t rows) const {
    const int64_t d = config_.dim, D = config_.hidden_dim, G = config_.glu_dim;
    const int64_t sharded_logits = comm_ ? rows * config_.vocab_size * 4 * (1 + shard_.size) : 0;
    return gemm_row_bucket(tokens) * (d * 4 + std::max(d, G) * 2 + 4 * D * 2 + 3 * 2 * D * 2 + D * 2 + 2 * G * 2) +
           gemm_row_bucket(rows) * global_.vocab_size * 4 + sharded_logits;
  }

  // Grows the activation buffers; captured graphs hold their old addresses, so
  // any growth drops them (they are captured again on the next decode step).
  Status reserve(const StepLayout& s) {
    const std::vector<const void*> before = buffer_addresses();
    TNL_RETURN_IF_ERROR(grow(s));
    if (buffer_addresses() != before) {
      ++counters_.buffer_growths;
      clear_graphs();
    }
    return Status::ok();
  }

  // Start-up: every activation buffer sized for the largest step the engine plans
  // (`max_tokens` tokens, a logits row per live slot), and a decode graph captured
  // for every batch bucket, so that serving allocates and captures nothing (a step
  // that asks for more rows, e.g. prompt logprobs of a long prompt, still grows).
  Status prepare_for_serving(int64_t max_tokens) {
    const int64_t H = config_.num_heads, e = config_.head_dim();
    const int64_t rows = std::max<int64_t>(num_slots_, 64);
    const int64_t segments = cuda::lightning_max_segments(max_tokens, num_slots_ + 1, H, e, lightning_target_ctas());
    const int64_t parts = cuda::lightning_max_parts(max_tokens, H, e, lightning_target_ctas());
    TNL_RETURN_IF_ERROR(reserve_activations(max_tokens, max_tokens, rows,
                                            4 * max_tokens + rows + 9 * segments + 4 * parts + 2 * num_slots_ + 1024,
                                            segments + parts));
    const auto warm_start = std::chrono::steady_clock::now();
    TNL_RETURN_IF_ERROR(warm_gemm_buckets(max_tokens, rows));
    TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
    const double warm_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - warm_start).count();
    TNL_RETURN_IF_ERROR(warm_prefill_kernels(max_tokens));
    TNL_RETURN_IF_ERROR(choose_graph_gemms());
    int64_t buckets = 0;
    for (int64_t bucket = 1; use_graphs_ && bucket <= num_slots_; bucket *= 2) {
      StepPlan plan;
      for (int64_t i = 0; i < bucket; ++i) plan.chunks.push_back({store_.scratch_slot(), 1, {0}, LogitsMode::kLast});
      // Only recorded, not run: a replay reads the ints each step uploads (a
      // bucket's layout, hence every offset into them, is always the same).
      const StepLayout s = make_step_layout(plan, H, e, lightning_target_ctas());
      TNL_RETURN_IF_ERROR(capture_decode_graph(bucket, s));
      ++buckets;
    }
    TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
    spdlog::info("cuda backend{}: activations for {} tokens per step, GEMM kernels of the row buckets chosen in {:.0f} "
                 "ms, {} decode graphs captured{}",
                 rank_label(), max_tokens, warm_ms, buckets, use_graphs_ ? "" : " (the communicator cannot be captured)");
    return Status::ok();
  }

  // Start-up: which GEMM shapes of the decode graphs (every power-of-two bucket
  // past the fused small-batch layers) enter behind programmatic edges, as
  // dependent launches: those whose cuBLASLt kernel the probe sees wait for its
  // predecessor (gemm.h). Where the heuristic's first pick does not, and kernels
  // are chosen by timing at all (gemm_autotune), the fastest candidate that waits
  // replaces it if it is at most kGraphGemmCreditUs slower alone, less than a
  // dependent launch saves (H100, 385M shape: 5 of 16 shapes' first picks
  // waited, and entering them so took batch 256 from 3.56 to 3.44-3.46 ms a
  // step). The logits GEMM keeps its ordinary edge.
  static constexpr double kGraphGemmCreditUs = 1.0;
  Status choose_graph_gemms() {
    if (!options_.programmatic_gemms || !use_graphs_) return Status::ok();
    int shapes = 0, first_picks = 0, replaced = 0;
    double replaced_first_us = 0, replaced_chosen_us = 0;  // alone, one call of each replaced shape
    for (int64_t bucket = 1; bucket <= num_slots_; bucket *= 2) {
      if (bucket <= small_batch_rows_) continue;
      for (Projection p : kProjections) {
        const ProjectionOperands o = operands(p, gemm_row_bucket(bucket));
        const double credit = options_.gemm_autotune ? kGraphGemmCreditUs : -1.0;
        TNL_ASSIGN_OR_RETURN(const GraphGemmChoice c,
                             gemm_->choose_for_graphs(o.shape, o.x, projection_weights(p), o.y, o.beta, credit));
        ++shapes;
        first_picks += c.first_pick_waits;
        if (c.programmatic && !c.first_pick_waits) {
          ++replaced;
          replaced_first_us += c.first_pick_us;
          replaced_chosen_us += c.chosen_us;
        }
      }
    }
    spdlog::info("cuda backend{}: of {} decode-graph GEMM shapes, {} enter as dependent launches with cuBLASLt's first "
                 "pick and {} with another kernel that waits for its predecessor (alone {:.1f} -> {:.1f} us in all)",
                 rank_label(), shapes, first_picks, replaced, replaced_first_us, replaced_chosen_us);
    return Status::ok();
  }

  // Start-up: a step of each kind of prefill a request can bring, into the scratch
  // slot — a long prompt cut into segments (the wide Lightning tile's states pass,
  // scan and output pass) and a short one (the narrow tile), sampled on the device
  // with top-p and greedily — and a state copy, so that their kernels are loaded
  // before the first request: CUDA loads a kernel on its first launch (lazy module
  // loading, the default), and the server's first prefill paid for it on the host
  // (H100, 385M shape: a 511-token step enqueued in 4.0–5.6 ms, the device's own
  // work 2.1 ms). Not under tensor parallelism: a step's collectives need every
  // rank at once, and ranks prepare one by one.
  Status warm_prefill_kernels(int64_t max_tokens) {
    if (comm_) return Status::ok();
    const int32_t scratch = store_.scratch_slot();
    const int64_t H = config_.num_heads, e = config_.head_dim();
    for (int64_t n : {std::min<int64_t>(max_tokens, 2048), std::min<int64_t>(max_tokens, 256)}) {
      SequenceChunk chunk{scratch, 0, std::vector<int32_t>(size_t(n)), LogitsMode::kNone};
      for (int64_t i = 0; i < n; ++i) chunk.tokens[size_t(i)] = int32_t((i * 7919) % global_.vocab_size);
      chunk.sample = DeviceSampling{};
      if (n > 256) {
        chunk.sample->params.temperature = 0.8f;
        chunk.sample->params.inv_temperature = 1.0f / 0.8f;
        chunk.sample->params.top_p = 0.9f;
        chunk.sample->params.uniform = 0.5;
      }
      StepPlan plan;
      plan.chunks.push_back(std::move(chunk));
      const StepLayout s = make_step_layout(plan, H, e, lightning_target_ctas());
      TNL_RETURN_IF_ERROR(reserve(s));
      TNL_RETURN_IF_ERROR(upload_ints(s));
      TNL_RETURN_IF_ERROR(forward(s));
      StepOutput out;
      TNL_RETURN_IF_ERROR(finish_step(plan, s, &out));
    }
    const StateRef slot{StateTier::kLive, scratch};
    TNL_RETURN_IF_ERROR(store_.run_copies({{slot, slot}}));
    TNL_CUDA_TRY(cudaStreamSynchronize(stream_));
    return Status::ok();
  }

  // Logits rows (whole vocabulary) and, under tensor parallelism, the shard's
  // and the gathered rows, and the norm's sums for `tokens` tokens.
  Status reserve_logits(int64_t rows, int64_t tokens) {
    TNL_RETURN_IF_ERROR(act_.logits.reserve(gemm_row_bucket(rows) * global_.vocab_size));
    if (!comm_) return Status::ok();
    TNL_RETURN_IF_ERROR(act_.logits_shard.reserve(gemm_row_bucket(rows) * config_.vocab_size));
    TNL_RETURN_IF_ERROR(act_.logits_gathered.reserve(shard_.size * rows * config_.vocab_size));
    return act_.sum_sq.reserve(tokens);
  }

  std::vector<const void*> buffer_addresses() const {
    return {act_.x.get(),      act_.a.get(),       act_.qkvu.get(),         act_.q.get(),
            act_.k.get(),      act_.v.get(),       act_.o.get(),            act_.h12.get(),
            act_.logits.get(), act_.ints.get(),    act_.scratch.get(),      act_.sum_sq.get(),
            act_.logits_shard.get(), act_.logits_gathered.get()};
  }

  void clear_graphs() {
    for (auto& [bucket, exec] : decode_graphs_) cudaGraphExecDestroy(exec);
    decode_graphs_.clear();
  }

  Status grow(const StepLayout& s) {
    return reserve_activations(s.num_tokens, s.num_prefill_tokens, s.num_logit_rows, int64_t(s.ints.size()),
                               s.plan.num_segments + s.plan.num_parts);
  }

  // Every activation buffer at least as large as a step of `tokens` tokens
  // (`prefill` of them prefill tokens), `rows` logits rows, `ints` packed ints
  // and `segment_states` Lightning segments and parts need (start-up sizing and
  // growth alike).
  Status reserve_activations(int64_t tokens, int64_t prefill, int64_t rows, int64_t ints, int64_t segment_states) {
    const int64_t H = config_.num_heads, e = config_.head_dim();
    const int64_t d = config_.dim, D = config_.hidden_dim, G = config_.glu_dim;
    const int64_t rows_b = std::max(gemm_row_bucket(tokens), gemm_row_bucket(rows));  // GEMM operands
    TNL_RETURN_IF_ERROR(act_.x.reserve(rows_b * d));
    TNL_RETURN_IF_ERROR(act_.a.reserve(rows_b * std::max(d, G)));
    TNL_RETURN_IF_ERROR(act_.qkvu.reserve(rows_b * 4 * D));
    TNL_RETURN_IF_ERROR(act_.q.reserve(prefill * 2 * D));
    TNL_RETURN_IF_ERROR(act_.k.reserve(prefill * 2 * D));
    TNL_RETURN_IF_ERROR(act_.v.reserve(prefill * D));
    TNL_RETURN_IF_ERROR(act_.o.reserve(rows_b * D));
    TNL_RETURN_IF_ERROR(act_.h12.reserve(rows_b * 2 * G));
    TNL_RETURN_IF_ERROR(reserve_logits(rows, tokens));
    TNL_RETURN_IF_ERROR(act_.ints.reserve(ints));
    TNL_RETURN_IF_ERROR(act_.scratch.reserve(segment_states * H * 2 * e * e));
    return Status::ok();
  }

  Status layer(int64_t l, const StepLayout& s) {
    const CudaLayerWeights<T>& w = weights_.layers[l];
    const int64_t N = s.num_tokens, d = config_.dim, D = config_.hidden_dim, G = config_.glu_dim;
    if (N <= small_batch_rows_) return small_batch_layer(l, s);

    // The GEMMs run on Nb ≥ N rows (gemm_rows.h); everything else on the N real ones.
    const int64_t Nb = gemm_row_bucket(N);

    // Token mixer: qkvu = SRMSNorm(x) · Wqkvuᵀ
    TNL_CUDA_TRY(cuda::srms_norm<T>(act_.x.get(), d, nullptr, N, act_.a.get(), stream_));
    TNL_RETURN_IF_ERROR(projection(Projection::kQkvu, w, Nb));
    if (w.qkvu_bias.get()) TNL_CUDA_TRY(cuda::add_bias<T>(act_.qkvu.get(), w.qkvu_bias.get(), N, 4 * D, stream_));
    TNL_RETURN_IF_ERROR(attention(l, s));
    TNL_RETURN_IF_ERROR(norm_gate(N));
    TNL_RETURN_IF_ERROR(projection(Projection::kOut, w, Nb));
    if (w.out_bias.get()) TNL_CUDA_TRY(cuda::add_bias_f32<T>(act_.x.get(), w.out_bias.get(), N, d, stream_));
    if (comm_) TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(act_.x.get(), N * d));

    // Channel mixer: x += ((a·W1ᵀ) ⊙ (a·W2ᵀ)) · W3ᵀ
    TNL_CUDA_TRY(cuda::srms_norm<T>(act_.x.get(), d, nullptr, N, act_.a.get(), stream_));
    if (fused_sglu(N) && !w.b12.get()) {
      // The product lands in h12's memory (a is the GEMM's input); l3 reads it there.
      TNL_CUDA_TRY(cuda::sglu_gemm<T>(act_.a.get(), N, d, w.w12.get(), G, act_.h12.get(), stream_));
      TNL_RETURN_IF_ERROR(projection(Projection::kL3, w, Nb, act_.h12.get()));
    } else {
      TNL_RETURN_IF_ERROR(projection(Projection::kW12, w, Nb));
      if (w.b12.get()) TNL_CUDA_TRY(cuda::add_bias<T>(act_.h12.get(), w.b12.get(), N, 2 * G, stream_));
      TNL_CUDA_TRY(cuda::sglu_product<T>(act_.h12.get(), N, G, act_.a.get(), stream_));
      TNL_RETURN_IF_ERROR(projection(Projection::kL3, w, Nb));
    }
    if (w.l3_bias.get()) TNL_CUDA_TRY(cuda::add_bias_f32<T>(act_.x.get(), w.l3_bias.get(), N, d, stream_));
    if (comm_) TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(act_.x.get(), N * d));
    return Status::ok();
  }

  // A layer's four projections, on `rows` rows of their fixed operands:
  //   kQkvu: qkvu = a · Wqkvuᵀ          kOut: x (fp32) += o · Woutᵀ
  //   kW12:  h12 = a · [W1; W2]ᵀ        kL3:  x (fp32) += a · W3ᵀ
  // layer() and the start-up warm-up both call them, so the warmed shapes are the
  // served ones.
  enum class Projection { kQkvu, kOut, kW12, kL3 };
  struct ProjectionOperands {
    GemmShape shape;
    const T* x;
    void* y;
    float beta;
  };
  ProjectionOperands operands(Projection p, int64_t rows) const {
    const int64_t d = config_.dim, D = config_.hidden_dim, G = config_.glu_dim;
    switch (p) {
      case Projection::kQkvu: return {{rows, d, 4 * D, false, false}, act_.a.get(), act_.qkvu.get(), 0.0f};
      case Projection::kOut: return {{rows, D, d, true, true}, act_.o.get(), act_.x.get(), residual_beta()};
      case Projection::kW12: return {{rows, d, 2 * G, false, false}, act_.a.get(), act_.h12.get(), 0.0f};
      case Projection::kL3: return {{rows, G, d, true, true}, act_.a.get(), act_.x.get(), residual_beta()};
    }
    return {};
  }
  ProjectionOperands logits_operands(int64_t rows) const {
    float* logits = comm_ ? act_.logits_shard.get() : act_.logits.get();
    return {{rows, config_.dim, config_.vocab_size, true, false}, act_.a.get(), logits, 0.0f};
  }
  static const T* weight(Projection p, const CudaLayerWeights<T>& w) {
    switch (p) {
      case Projection::kQkvu: return w.qkvu.get();
      case Projection::kOut: return w.out.get();
      case Projection::kW12: return w.w12.get();
      case Projection::kL3: return w.l3.get();
    }
    return nullptr;
  }
  static constexpr Projection kProjections[] = {Projection::kQkvu, Projection::kOut, Projection::kW12, Projection::kL3};
  // Every layer's matrix of `p`, in layer order: timing a shape calls it on the
  // next layer's matrix each time, so that the weights come from memory as in a step.
  std::vector<const void*> projection_weights(Projection p) const {
    std::vector<const void*> out;
    for (const CudaLayerWeights<T>& w : weights_.layers) out.push_back(weight(p, w));
    return out;
  }
  // `input`, when given, replaces the projection's usual input buffer (same shape).
  Status projection(Projection p, const CudaLayerWeights<T>& w, int64_t rows, const T* input = nullptr) {
    const ProjectionOperands o = operands(p, rows);
    return gemm_->run(o.shape, input ? input : o.x, weight(p, w), o.y, o.beta);
  }
  // Whether a step of N token rows takes the fused [W1; W2] GEMM + SGLU product
  // (BackendOptions::fused_sglu_min_rows; sm_90a device; glu a multiple of its tile).
  bool fused_sglu(int64_t N) const {
    return fused_sglu_ready_ && options_.fused_sglu_min_rows > 0 && N >= options_.fused_sglu_min_rows;
  }

  // Chooses the GEMM kernel of every shape of a step for each row bucket up to
  // `max_tokens` tokens and `max_rows` logits rows, so that serving meets no
  // shape it has not chosen for (gemm_rows.h): from kTunedMinRows rows on by
  // timing cuBLASLt's candidates (gemm.h; each timed call takes the next layer's
  // weights, so that they come from memory as in a step), below it, or with
  // BackendOptions::gemm_autotune off, the heuristic's first pick. The buffers'
  // contents are overwritten by the next step.
  //
  // Why the threshold (H200, 385M shape, tuned vs not, runs alternating): prefill
  // n = 4,096 7.21-7.31 -> 6.74-6.86 ms and n = 8,192 12.81-13.23 -> 12.17-12.79
  // ms, but n = 512-2,048 and decode at batch 16-256 (every bucket and the logits
  // tuned) gained nothing measurable. docs/architecture.md, "GEMM kernels".
  static constexpr int64_t kTunedMinRows = 1024;
  Status warm_gemm_buckets(int64_t max_tokens, int64_t max_rows) {
    std::vector<const void*> layer_weights[std::size(kProjections)];
    for (size_t i = 0; i < std::size(kProjections); ++i) layer_weights[i] = projection_weights(kProjections[i]);
    const std::vector<const void*> output_weights = {weights_.output_matrix()};
    GemmTuningTotals totals;
    auto choose = [&](const ProjectionOperands& o, const std::vector<const void*>& weights) -> Status {
      if (!options_.gemm_autotune || o.shape.n < kTunedMinRows) return gemm_->run(o.shape, o.x, weights[0], o.y, o.beta);
      TNL_ASSIGN_OR_RETURN(const GemmTuning t, gemm_->tune(o.shape, o.x, weights, o.y, o.beta));
      totals.add(t);
      return Status::ok();
    };
    for (int64_t n = 1; n <= gemm_row_bucket(max_tokens); n = next_gemm_row_bucket(n)) {
      if (n <= small_batch_rows_) continue;  // those layers never call cuBLASLt
      for (size_t i = 0; i < std::size(kProjections); ++i) {
        TNL_RETURN_IF_ERROR(choose(operands(kProjections[i], n), layer_weights[i]));
      }
    }
    for (int64_t r = 1; r <= gemm_row_bucket(max_rows); r = next_gemm_row_bucket(r)) {
      TNL_RETURN_IF_ERROR(choose(logits_operands(r), output_weights));
    }
    if (options_.gemm_autotune) {
      spdlog::info("cuda backend{}: GEMM kernels chosen by timing for {} shapes ({} candidates timed); {} differ from "
                   "cuBLASLt's first pick; one call of each shape {:.0f} -> {:.0f} us in all",
                   rank_label(), totals.shapes, totals.candidates, totals.changed, totals.first_pick_us,
                   totals.chosen_us);
    }
    return Status::ok();
  }

  // The projections after attention and after the SGLU add into the residual
  // stream; under tensor parallelism only rank 0 keeps the residual (and holds
  // the biases), the others contribute their partial product alone.
  float residual_beta() const { return shard_.rank == 0 ? 1.0f : 0.0f; }

  // o ← SRMSNorm(o) ⊙ u over all D channels: on one rank in one kernel; on
  // T ranks each holds D/T channels, so the sums of squares are all-reduced first.
  Status norm_gate(int64_t N) {
    const int64_t D = config_.hidden_dim;
    const T* u = act_.qkvu.get() + 3 * D;
    if (!comm_) {
      TNL_CUDA_TRY(cuda::norm_gate<T>(act_.o.get(), u, 4 * D, N, D, act_.o.get(), stream_));
      return Status::ok();
    }
    TNL_CUDA_TRY(cuda::row_sum_squares<T>(act_.o.get(), N, D, act_.sum_sq.get(), stream_));
    TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(act_.sum_sq.get(), N));
    TNL_CUDA_TRY(cuda::norm_gate_summed<T>(act_.o.get(), u, 4 * D, N, D, act_.sum_sq.get(), global_.hidden_dim,
                                           act_.o.get(), stream_));
    return Status::ok();
  }

  // Ranks other than 0 start their partial sums from zero (the fused kernel adds).
  Status clear_residual_if_partial(int64_t N) {
    if (shard_.rank != 0) TNL_CUDA_TRY(cudaMemsetAsync(act_.x.get(), 0, size_t(N * config_.dim) * sizeof(float), stream_));
    return Status::ok();
  }

  // A step of a few rows (decode at small batch): four fused launches per layer
  // (kernels/cuda/small_batch_linear.h) in place of nine. Their products are
  // bound by the weight bytes, and at this size every launch costs microseconds.
  Status small_batch_layer(int64_t l, const StepLayout& s) {
    using cuda::LinearInput;
    using cuda::LinearOutput;
    const CudaLayerWeights<T>& w = weights_.layers[l];
    const int64_t N = s.num_tokens, d = config_.dim, D = config_.hidden_dim, G = config_.glu_dim;
    auto linear = [&](int64_t in, int64_t out, LinearInput input, LinearOutput output, const T* weight,
                      const T* bias) {
      cuda::SmallBatchLinearArgs<T> a;
      a.n = N;
      a.in = in;
      a.out = out;
      a.input = input;
      a.output = output;
      a.weight = weight;
      a.bias = bias;
      return a;
    };
    // qkvu = SRMSNorm(x) · Wqkvuᵀ
    auto qkvu = linear(d, 4 * D, LinearInput::kNormF32, LinearOutput::kStoreT, w.qkvu.get(), w.qkvu_bias.get());
    qkvu.x_f32 = act_.x.get();
    qkvu.y = act_.qkvu.get();
    TNL_CUDA_TRY(cuda::small_batch_linear(qkvu, stream_));
    TNL_RETURN_IF_ERROR(attention(l, s));
    // x += (SRMSNorm(o) ⊙ u) · Woutᵀ (sharded: the norm first, its sums all-reduced)
    auto out = linear(D, d, comm_ ? LinearInput::kPlainT : LinearInput::kNormGateT, LinearOutput::kAddF32, w.out.get(),
                      w.out_bias.get());
    if (comm_) TNL_RETURN_IF_ERROR(norm_gate(N));
    out.x = act_.o.get();
    out.gate = act_.qkvu.get() + 3 * D;
    out.gate_stride = 4 * D;
    out.residual = act_.x.get();
    TNL_RETURN_IF_ERROR(clear_residual_if_partial(N));
    TNL_CUDA_TRY(cuda::small_batch_linear(out, stream_));
    if (comm_) TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(act_.x.get(), N * d));
    // p = (SRMSNorm(x)·W1ᵀ) ⊙ (SRMSNorm(x)·W2ᵀ); x += p · W3ᵀ
    auto w12 = linear(d, G, LinearInput::kNormF32, LinearOutput::kGluProductT, w.w12.get(), w.b12.get());
    w12.x_f32 = act_.x.get();
    w12.y = act_.a.get();
    TNL_CUDA_TRY(cuda::small_batch_linear(w12, stream_));
    auto l3 = linear(G, d, LinearInput::kPlainT, LinearOutput::kAddF32, w.l3.get(), w.l3_bias.get());
    l3.x = act_.a.get();
    l3.residual = act_.x.get();
    TNL_RETURN_IF_ERROR(clear_residual_if_partial(N));
    TNL_CUDA_TRY(cuda::small_batch_linear(l3, stream_));
    if (comm_) TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(act_.x.get(), N * d));
    return Status::ok();
  }

  // o for every token: decode rows by the fused recurrence, prefill rows by Lightning Attention.
  Status attention(int64_t l, const StepLayout& s) {
    const CudaLayerWeights<T>& w = weights_.layers[l];
    const int64_t H = config_.num_heads, e = config_.head_dim(), ek = config_.key_dim(l), D = config_.hidden_dim;
    const bool lrpe = config_.lrpe_layers[l];
    const int32_t* ints = act_.ints.get();
    float* layer_state = store_.layer_state(l);

    cuda::DecodeArgs dec;
    dec.heads = H;
    dec.e = e;
    dec.lrpe = lrpe;
    dec.act = config_.activation;
    dec.theta = w.theta.get();
    dec.rates = w.rates.get();
    dec.layer_state = layer_state;
    dec.slot_stride = store_.slot_stride(l);
    if (s.num_decode > 0) {
      dec.batch = s.num_decode;
      dec.positions = ints + s.positions;
      dec.slots = ints + s.token_slots;
      TNL_CUDA_TRY(cuda::recurrent_decode<T>(act_.qkvu.get(), dec, act_.o.get(), stream_));
    }
    const int64_t P = s.num_prefill_tokens, first = s.num_decode;
    if (P == 0) return Status::ok();
    if (!lightning_supports(e, ek)) {
      // Fallback: the recurrence one token at a time (same kernel as decode, batch 1).
      dec.batch = 1;
      dec.state_ready_early = false;  // each token's launch updates the state the next one reads
      for (int64_t t = first; t < first + P; ++t) {
        dec.positions = ints + s.positions + t;
        dec.slots = ints + s.token_slots + t;
        TNL_CUDA_TRY(cuda::recurrent_decode<T>(act_.qkvu.get() + t * 4 * D, dec, act_.o.get() + t * D, stream_));
      }
      return Status::ok();
    }
    TNL_CUDA_TRY(cuda::split_qkv<T>(act_.qkvu.get() + first * 4 * D, P, H, e, config_.activation,
                                    lrpe ? w.theta.get() : nullptr, ints + s.positions + first, act_.q.get(),
                                    act_.k.get(), act_.v.get(), stream_));
    cuda::LightningArgs la;
    la.total_tokens = P;
    la.heads = H;
    la.ek = ek;
    la.e = e;
    la.rates = w.rates.get();
    la.segments = ints + s.segments;
    la.multi = ints + s.multi;
    la.parts = ints + s.parts;
    la.set_plan(s.plan);
    la.seq_slot = ints + s.seq_slot;
    la.seq_fresh = ints + s.seq_fresh;
    la.layer_state = layer_state;
    la.slot_stride = store_.slot_stride(l);
    la.scratch = act_.scratch.get();
    TNL_CUDA_TRY(cuda::lightning_prefill<T>(act_.q.get(), act_.k.get(), act_.v.get(), la, act_.o.get() + first * D,
                                            stream_));
    return Status::ok();
  }

  const ShardLayout shard_;           // the whole model unless tensor-parallel
  const ModelConfig config_;          // this rank's shapes (shard_.local)
  const ModelConfig global_;          // the model's (shard_.global)
  BackendOptions options_;
  CudaCommunicator* comm_ = nullptr;  // borrowed; null: no peers
  int64_t free_bytes_share_ = 0;      // RankPlacement::free_bytes
  int device_ = 0;
  bool use_graphs_ = true;            // decode steps replay CUDA graphs
  int sm_count_ = 0;
  // The Lightning plan's CTA target (BackendOptions::lightning_ctas_per_sm · SMs).
  int64_t lightning_target_ctas() const { return int64_t(options_.lightning_ctas_per_sm) * sm_count_; }
  cudaStream_t stream_ = nullptr;
  CudaWeights<T> weights_;
  int64_t state_floats_per_slot_ = 0;
  int32_t num_slots_ = 0;
  int64_t small_batch_rows_ = 0;             // steps of ≤ this many tokens take the fused small-batch layers
  bool fused_sglu_ready_ = false;            // the fused [W1; W2] GEMM + SGLU runs here (fused_sglu())
  StateStore store_;                         // live slots, prefix-cache slots (device, host)
  DeviceBuffer<std::byte> gemm_workspace_;
  std::unique_ptr<GemmRunner> gemm_;                  // every projection and the logits (after the workspace)
  Activations<T> act_;
  std::map<int64_t, cudaGraphExec_t> decode_graphs_;  // batch bucket → captured decode step
  Counters counters_;
  PinnedBuffer<int32_t> ints_host_;                   // staging of StepLayout::ints
  DeviceSampler sampler_;                             // after the forward pass, outside the graphs
  StepTimer timer_;                                   // the step trace's host/device split (off by default)
};

}  // namespace

namespace {

template <typename T>
Expected<std::unique_ptr<Backend>> create_with(const RankPlacement& placement, const BackendOptions& options,
                                               const Checkpoint* checkpoint, uint64_t seed) {
  return CudaBackend<T>::create(placement, options, [&](cudaStream_t stream) {
    return checkpoint ? upload_weights<T>(*checkpoint, placement.shard, stream)
                      : random_weights<T>(placement.shard, seed, stream);
  });
}

Expected<std::unique_ptr<Backend>> create(const RankPlacement& placement, const BackendOptions& options,
                                          const Checkpoint* checkpoint, uint64_t seed) {
  if (options.max_slots < 1) return invalid_argument("max_slots must be at least 1");
  if (options.lightning_ctas_per_sm < 1) return invalid_argument("lightning_ctas_per_sm must be at least 1");
  if (options.gpu_dtype == "bf16") return create_with<__nv_bfloat16>(placement, options, checkpoint, seed);
  if (options.gpu_dtype == "fp16") return create_with<__half>(placement, options, checkpoint, seed);
  return invalid_argument("gpu dtype must be bf16 or fp16, got \"" + options.gpu_dtype + "\"");
}

// T ranks of one model (a checkpoint, or random weights when it is null), each
// with its communicator; ranks sharing one GPU split its free memory evenly.
Expected<std::unique_ptr<Backend>> create_tensor_parallel(const ModelConfig& config, const BackendOptions& options,
                                                          const Checkpoint* checkpoint, uint64_t seed) {
  const int32_t n = options.tensor_parallel_size;
  TNL_RETURN_IF_ERROR(check_tensor_parallel(config, n));
  std::string comm = options.tensor_parallel_comm;
  if (comm == "auto") comm = "nccl";
  if (comm != "nccl" && comm != "single-device") {
    return invalid_argument("--tensor-parallel-comm must be auto, nccl or single-device for the CUDA backend, got " +
                            comm);
  }
  TNL_ASSIGN_OR_RETURN(CudaCommunicators comms, comm == "nccl"
                                                    ? make_nccl_communicators(options.gpu_device, n)
                                                    : make_single_device_communicators(options.gpu_device, n));
  int64_t share = 0;
  if (comm == "single-device") {
    size_t free_bytes = 0, total_bytes = 0;
    TNL_CUDA_TRY(cudaSetDevice(options.gpu_device));
    TNL_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    share = int64_t(free_bytes) / n;
  }
  std::vector<std::unique_ptr<Backend>> ranks;
  for (int32_t r = 0; r < n; ++r) {
    RankPlacement placement{ShardLayout::make(config, r, n), comms[size_t(r)].get(), share};
    TNL_ASSIGN_OR_RETURN(std::unique_ptr<Backend> rank, create(placement, options, checkpoint, seed + uint64_t(r) * 1000));
    ranks.push_back(std::move(rank));
  }
  std::vector<std::unique_ptr<Communicator>> base;
  for (auto& c : comms) base.push_back(std::move(c));
  std::unique_ptr<Backend> joined = make_tensor_parallel_backend(std::move(base), std::move(ranks));
  spdlog::info("tensor parallelism: {} ranks over {}, {} state slots, {:.2f} MB of state per slot per rank", n,
               comm == "nccl" ? "NCCL" : "one GPU", joined->num_slots(),
               double(joined->state_bytes_per_slot()) / n / 1e6);
  return joined;
}

}  // namespace

Expected<std::unique_ptr<Backend>> make_cuda_backend(const Checkpoint& checkpoint, const BackendOptions& options) {
  return create(RankPlacement{ShardLayout::whole(checkpoint.config())}, options, &checkpoint, 0);
}

Expected<std::unique_ptr<Backend>> make_cuda_tensor_parallel(const Checkpoint& checkpoint,
                                                             const BackendOptions& options) {
  return create_tensor_parallel(checkpoint.config(), options, &checkpoint, 0);
}

Expected<std::unique_ptr<Backend>> make_cuda_backend_random(const ModelConfig& config, const BackendOptions& options,
                                                            uint64_t seed) {
  if (options.tensor_parallel_size > 1) return create_tensor_parallel(config, options, nullptr, seed);
  return create(RankPlacement{ShardLayout::whole(config)}, options, nullptr, seed);
}

}  // namespace tnl
