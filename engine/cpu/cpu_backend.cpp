// The CPU reference backend: model-spec §4 step by step, fp32 throughout.
//
// Determinism: every chunk of a step is computed independently of the others
// (its own row block in each projection, its own state slot), projections run in
// fixed column tiles with single-threaded BLAS calls (tiled_linear.h), and
// attention runs one task per (chunk, head). So a sequence's result is
// bit-identical whatever else shares the step and whatever the thread count.
//
// Tensor parallelism (model-spec §7): a rank holds the part of the model its
// ShardLayout names and meets its peers through a Communicator at the embedding
// (an all-reduce of the rows each vocabulary shard looked up), at the norm after
// attention (an all-reduce of each token's sum of squares over all D channels),
// after out_proj and l3 (all-reduce of the partial products), and at the logits
// (an all-gather of the vocabulary shards). Unsharded, none of that runs.
#include "engine/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/cpu_weights.h"
#include "engine/cpu/tiled_linear.h"
#include "kernels/cpu/reference.h"

namespace tnl {
namespace {

// Activations of one chunk through the layers.
struct ChunkActivations;
using Member = std::vector<float> ChunkActivations::*;

struct ChunkActivations {
  int64_t rows = 0;
  std::vector<float> x;     // [m, d] residual stream
  std::vector<float> a;     // [m, d] normalised input of a block
  std::vector<float> qkvu;  // [m, 4D]
  std::vector<float> o;     // [m, D] attention output
  std::vector<float> y;     // [m, d] block output
  std::vector<float> g1;    // [m, G]
  std::vector<float> g2;    // [m, G]
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(ShardLayout shard, Communicator* comm, CpuWeights weights, const BackendOptions& options)
      : config_(shard.global), local_(shard.local), shard_(std::move(shard)), comm_(comm),
        weights_(std::move(weights)), num_slots_(options.max_slots), block_(options.prefill_block),
        threads_(options.cpu_threads > 0 ? options.cpu_threads : omp_get_num_procs()) {
    int64_t offset = 0;
    for (int64_t l = 0; l < local_.num_layers; ++l) {
      layer_state_offset_.push_back(offset);
      offset += local_.state_floats(l);
    }
    state_floats_per_slot_ = offset;
    states_.assign(size_t(state_floats_per_slot_) * size_t(num_slots_), 0.0f);
    // Default: 512 MiB, at most 4096 snapshots. Left uninitialised: a slot's pages
    // are touched (and count in RSS) only once a snapshot is written into it.
    const int64_t cache_bytes = options.prefix_cache_bytes < 0 ? int64_t(512) << 20 : options.prefix_cache_bytes;
    const int64_t max_slots = options.prefix_cache_bytes < 0 ? 4096 : 1 << 20;
    num_cache_slots_ = int32_t(std::min<int64_t>(cache_bytes / state_bytes_per_slot(), max_slots));
    cache_states_.reset(new float[size_t(state_floats_per_slot_) * size_t(num_cache_slots_)]);
  }

  const ModelConfig& config() const override { return config_; }
  std::string name() const override { return "cpu"; }
  int32_t num_slots() const override { return num_slots_; }
  int64_t state_bytes_per_slot() const override { return state_floats_per_slot_ * int64_t(sizeof(float)); }

  int32_t num_state_slots(StateTier tier) const override {
    switch (tier) {
      case StateTier::kLive: return num_slots_;
      case StateTier::kCache: return num_cache_slots_;
      case StateTier::kHost: return 0;  // the cache already lives in RAM
    }
    return 0;
  }

  Status read_state(StateRef slot, std::span<std::byte> out) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    if (int64_t(out.size()) != state_bytes_per_slot()) return invalid_argument("read_state: wrong buffer size");
    std::memcpy(out.data(), state_of(slot), out.size());
    return Status::ok();
  }

  Status write_state(StateRef slot, std::span<const std::byte> in) override {
    TNL_RETURN_IF_ERROR(validate_state_ref(slot, *this));
    if (int64_t(in.size()) != state_bytes_per_slot()) return invalid_argument("write_state: wrong buffer size");
    std::memcpy(state_of(slot), in.data(), in.size());
    return Status::ok();
  }

  Status run_step(const StepPlan& plan, StepOutput* out) override {
    TNL_RETURN_IF_ERROR(validate_step_plan(plan, config_, num_slots_));
    TNL_RETURN_IF_ERROR(validate_state_copies(plan, *this));
    // Nothing runs asynchronously here: the engine's host work goes first, so that
    // the previous step's tokens reach their streams before this step computes.
    if (shard_.rank == 0 && plan.while_running) plan.while_running();
    copy_states(plan.copies_before);
    if (plan.chunks.empty()) {
      *out = StepOutput{config_.vocab_size, {}, {}, {}};
      copy_states(plan.copies_after);
      return Status::ok();
    }
    std::vector<ChunkActivations> acts(plan.chunks.size());
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      const SequenceChunk& chunk = plan.chunks[i];
      if (chunk.start_pos == 0) {
        std::fill_n(slot_state(chunk.slot), state_floats_per_slot_, 0.0f);
      }
      allocate(chunk, &acts[i]);
      embed(chunk, &acts[i]);
    }
    TNL_RETURN_IF_ERROR(all_reduce(acts, &ChunkActivations::x));
    for (int64_t l = 0; l < config_.num_layers; ++l) {
      TNL_RETURN_IF_ERROR(token_mixer(plan, l, acts));
      TNL_RETURN_IF_ERROR(channel_mixer(l, acts));
    }
    TNL_RETURN_IF_ERROR(logits(plan, acts, out));
    copy_states(plan.copies_after);
    return Status::ok();
  }

 private:
  float* slot_state(int32_t slot) { return states_.data() + int64_t(slot) * state_floats_per_slot_; }
  float* state_of(StateRef ref) {
    float* base = ref.tier == StateTier::kLive ? states_.data() : cache_states_.get();
    return base + int64_t(ref.index) * state_floats_per_slot_;
  }
  void copy_states(const std::vector<StateCopy>& copies) {
    for (const StateCopy& c : copies) {
      std::memcpy(state_of(c.to), state_of(c.from), size_t(state_floats_per_slot_) * sizeof(float));
    }
  }

  void allocate(const SequenceChunk& chunk, ChunkActivations* act) const {
    const int64_t m = int64_t(chunk.tokens.size());
    const int64_t d = local_.dim, D = local_.hidden_dim, G = local_.glu_dim;
    act->rows = m;
    act->x.resize(m * d);
    act->a.resize(m * d);
    act->qkvu.resize(m * 4 * D);
    act->o.resize(m * D);
    act->y.resize(m * d);
    act->g1.resize(m * G);
    act->g2.resize(m * G);
  }

  // x = E[token] · √d (unless no_scale_embedding). A vocabulary shard writes
  // the rows it holds and zeros for the rest; the all-reduce that follows fills them.
  void embed(const SequenceChunk& chunk, ChunkActivations* act) const {
    const int64_t d = config_.dim;
    const float scale = config_.scale_embedding ? float(std::sqrt(double(d))) : 1.0f;
    for (size_t r = 0; r < chunk.tokens.size(); ++r) {
      const int64_t row = int64_t(chunk.tokens[r]) - shard_.vocab_begin();
      if (row < 0 || row >= shard_.vocab_rows()) {
        std::fill_n(act->x.data() + r * d, d, 0.0f);
        continue;
      }
      const float* e = weights_.embed.data() + row * d;
      for (int64_t c = 0; c < d; ++c) act->x[r * d + c] = e[c] * scale;
    }
  }

  // Sums `member` of every chunk over the ranks: one collective for the step
  // (the chunks' rows are packed into one buffer). Nothing when unsharded.
  Status all_reduce(std::vector<ChunkActivations>& acts, Member member) {
    if (!shard_.sharded()) return Status::ok();
    pack_.clear();
    for (ChunkActivations& a : acts) pack_.insert(pack_.end(), (a.*member).begin(), (a.*member).end());
    TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(pack_.data(), int64_t(pack_.size())));
    size_t at = 0;
    for (ChunkActivations& a : acts) {
      std::copy_n(pack_.data() + at, (a.*member).size(), (a.*member).begin());
      at += (a.*member).size();
    }
    return Status::ok();
  }

  // o ← SRMSNorm(o) over all D channels, o holding this rank's D/T of them: each
  // row's sum of squares is summed over the ranks first (normalising each shard
  // alone would be a different model).
  Status norm_attention_output(std::vector<ChunkActivations>& acts) {
    const int64_t D = local_.hidden_dim;
    if (!shard_.sharded()) {
      norm_all(acts, &ChunkActivations::o, &ChunkActivations::o, D);
      return Status::ok();
    }
    pack_.clear();
    for (ChunkActivations& a : acts) {
      for (int64_t r = 0; r < a.rows; ++r) {
        double sum_sq = 0.0;
        for (int64_t c = 0; c < D; ++c) sum_sq += double(a.o[r * D + c]) * double(a.o[r * D + c]);
        pack_.push_back(float(sum_sq));
      }
    }
    TNL_RETURN_IF_ERROR(comm_->all_reduce_sum(pack_.data(), int64_t(pack_.size())));
    size_t at = 0;
    for (ChunkActivations& a : acts) {
      for (int64_t r = 0; r < a.rows; ++r) {
        const float inv = float(1.0 / std::sqrt(double(pack_[at++]) / double(config_.hidden_dim) + double(ref::kNormEps)));
        for (int64_t c = 0; c < D; ++c) a.o[r * D + c] *= inv;
      }
    }
    return Status::ok();
  }

  void linear(std::vector<ChunkActivations>& acts, Member in, Member out, const std::vector<float>& w,
              const std::vector<float>& bias, int64_t in_features, int64_t out_features) const {
    std::vector<RowBlock> blocks;
    for (ChunkActivations& a : acts) blocks.push_back({(a.*in).data(), (a.*out).data(), a.rows});
    tiled_linear(blocks, w.data(), bias.empty() ? nullptr : bias.data(), in_features, out_features, threads_);
  }

  void norm_all(std::vector<ChunkActivations>& acts, Member in, Member out, int64_t width) const {
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (size_t i = 0; i < acts.size(); ++i) ref::srms_norm((acts[i].*in).data(), (acts[i].*out).data(), acts[i].rows, width);
  }

  Status token_mixer(const StepPlan& plan, int64_t l, std::vector<ChunkActivations>& acts) {
    const CpuLayerWeights& w = weights_.layers[l];
    const int64_t d = local_.dim, D = local_.hidden_dim;
    norm_all(acts, &ChunkActivations::x, &ChunkActivations::a, d);
    linear(acts, &ChunkActivations::a, &ChunkActivations::qkvu, w.qkvu, w.qkvu_bias, d, 4 * D);

    const int64_t heads = local_.num_heads;
    const int64_t tasks = int64_t(acts.size()) * heads;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
    for (int64_t task = 0; task < tasks; ++task) {
      const size_t i = size_t(task / heads);
      attention_head(plan.chunks[i], l, task % heads, &acts[i]);
    }

    // o = SRMSNorm(concat_h o) ⊙ u, then x += o · Woutᵀ
    TNL_RETURN_IF_ERROR(norm_attention_output(acts));
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (size_t i = 0; i < acts.size(); ++i) {
      ChunkActivations& a = acts[i];
      for (int64_t r = 0; r < a.rows; ++r) {
        const float* u = a.qkvu.data() + r * 4 * D + 3 * D;
        for (int64_t c = 0; c < D; ++c) a.o[r * D + c] *= u[c];
      }
    }
    linear(acts, &ChunkActivations::o, &ChunkActivations::y, w.out, w.out_bias, D, d);
    TNL_RETURN_IF_ERROR(all_reduce(acts, &ChunkActivations::y));
    add_residual(acts);
    return Status::ok();
  }

  // One head of one chunk: φ, LRPE, then the recurrence (decode) or Lightning
  // Attention blocks (prefill), continuing the slot's state.
  void attention_head(const SequenceChunk& chunk, int64_t l, int64_t h, ChunkActivations* act) {
    const CpuLayerWeights& w = weights_.layers[l];
    const int64_t m = act->rows, D = local_.hidden_dim, e = local_.head_dim();
    const int64_t ek = local_.key_dim(l);
    const float* qkvu = act->qkvu.data();
    std::vector<float> q(m * ek), k(m * ek), v(m * e), o(m * e);
    std::vector<float> qe(m * e), ke(m * e);
    for (int64_t r = 0; r < m; ++r) {
      const float* row = qkvu + r * 4 * D;
      for (int64_t c = 0; c < e; ++c) {
        qe[r * e + c] = apply_activation(config_.activation, row[h * e + c]);
        ke[r * e + c] = apply_activation(config_.activation, row[D + h * e + c]);
        v[r * e + c] = row[2 * D + h * e + c];
      }
    }
    if (config_.lrpe_layers[l]) {
      const float* theta = w.theta.data() + h * e;
      ref::lrpe(qe.data(), e, theta, m, e, chunk.start_pos, q.data());
      ref::lrpe(ke.data(), e, theta, m, e, chunk.start_pos, k.data());
    } else {
      q.swap(qe);
      k.swap(ke);
    }
    float* state = slot_state(chunk.slot) + layer_state_offset_[l] + h * ek * e;
    const float rate = w.decay_rate[h];
    if (m == 1) {
      ref::attention_recurrent(q.data(), k.data(), v.data(), m, ek, e, rate, state, o.data());
    } else {
      const int64_t block = std::min<int64_t>(block_, m);
      std::vector<float> scratch(ref::blocked_attention_scratch_floats(block, ek, e));
      ref::attention_blocked(q.data(), k.data(), v.data(), m, ek, e, rate, block, state, o.data(), scratch.data());
    }
    for (int64_t r = 0; r < m; ++r) std::memcpy(act->o.data() + r * D + h * e, o.data() + r * e, e * sizeof(float));
  }

  // x += ((a·W1ᵀ) ⊙ (a·W2ᵀ)) · W3ᵀ, a = SRMSNorm(x): SGLU without activation.
  Status channel_mixer(int64_t l, std::vector<ChunkActivations>& acts) {
    const CpuLayerWeights& w = weights_.layers[l];
    const int64_t d = local_.dim, G = local_.glu_dim;
    norm_all(acts, &ChunkActivations::x, &ChunkActivations::a, d);
    linear(acts, &ChunkActivations::a, &ChunkActivations::g1, w.l1, w.l1_bias, d, G);
    linear(acts, &ChunkActivations::a, &ChunkActivations::g2, w.l2, w.l2_bias, d, G);
    for (ChunkActivations& a : acts) {
      for (size_t i = 0; i < a.g1.size(); ++i) a.g1[i] *= a.g2[i];
    }
    linear(acts, &ChunkActivations::g1, &ChunkActivations::y, w.l3, w.l3_bias, G, d);
    TNL_RETURN_IF_ERROR(all_reduce(acts, &ChunkActivations::y));
    add_residual(acts);
    return Status::ok();
  }

  static void add_residual(std::vector<ChunkActivations>& acts) {
    for (ChunkActivations& a : acts) {
      for (size_t i = 0; i < a.x.size(); ++i) a.x[i] += a.y[i];
    }
  }

  // logits = SRMSNorm(x) · Wlmᵀ for the rows each chunk asks for. Sharded, each
  // rank multiplies by its vocabulary rows and the shards are gathered.
  Status logits(const StepPlan& plan, std::vector<ChunkActivations>& acts, StepOutput* out) {
    const int64_t d = config_.dim, V = config_.vocab_size, Vl = local_.vocab_size;
    std::vector<std::vector<float>> normed(acts.size());
    std::vector<RowBlock> blocks;
    out->vocab_size = V;
    out->row_begin.assign(plan.chunks.size(), -1);
    int64_t rows = 0;
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      const LogitsMode mode = plan.chunks[i].logits;
      if (mode == LogitsMode::kNone) continue;
      const int64_t m = acts[i].rows;
      const int64_t first = mode == LogitsMode::kAll ? 0 : m - 1;
      const int64_t count = m - first;
      normed[i].resize(count * d);
      ref::srms_norm(acts[i].x.data() + first * d, normed[i].data(), count, d);
      out->row_begin[i] = int32_t(rows);
      rows += count;
    }
    std::vector<float> local(size_t(rows * Vl));
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      if (out->row_begin[i] < 0) continue;
      blocks.push_back({normed[i].data(), local.data() + int64_t(out->row_begin[i]) * Vl,
                        int64_t(normed[i].size()) / d});
    }
    tiled_linear(blocks, weights_.output_matrix().data(), nullptr, d, Vl, threads_);
    if (!shard_.sharded()) {
      out->logits = std::move(local);
      return Status::ok();
    }
    // gathered [T, rows, V'] → logits [rows, V], the padding rows dropped
    std::vector<float> gathered(size_t(shard_.size) * local.size());
    TNL_RETURN_IF_ERROR(comm_->all_gather(local.data(), gathered.data(), int64_t(local.size())));
    out->logits.assign(size_t(rows * V), 0.0f);
    for (int64_t t = 0; t < shard_.size; ++t) {
      const int64_t first = t * Vl, count = std::min(Vl, V - first);
      for (int64_t r = 0; r < rows && count > 0; ++r) {
        std::copy_n(gathered.data() + (t * rows + r) * Vl, count, out->logits.data() + r * V + first);
      }
    }
    return Status::ok();
  }

  ModelConfig config_;          // the whole model (validation, the API's shapes)
  ModelConfig local_;           // this rank's part of it (every shape computed with)
  ShardLayout shard_;
  Communicator* comm_;          // not owned; null when unsharded
  CpuWeights weights_;
  int32_t num_slots_;
  int64_t block_;
  int threads_;
  std::vector<int64_t> layer_state_offset_;  // floats from a slot's start to layer ℓ's state
  int64_t state_floats_per_slot_ = 0;
  std::vector<float> states_;                // [slots][Σ_ℓ H·e_k·e] fp32
  int32_t num_cache_slots_ = 0;
  std::unique_ptr<float[]> cache_states_;    // [cache slots][Σ_ℓ H·e_k·e]: prefix-cache snapshots
  std::vector<float> pack_;                  // the chunks' rows packed for one collective
};

}  // namespace

Expected<std::unique_ptr<Backend>> make_cpu_backend(const Checkpoint& checkpoint, const BackendOptions& options) {
  return make_cpu_backend_rank(checkpoint, options, ShardLayout::whole(checkpoint.config()), nullptr);
}

Expected<std::unique_ptr<Backend>> make_cpu_backend_rank(const Checkpoint& checkpoint, const BackendOptions& options,
                                                         const ShardLayout& shard, Communicator* comm) {
  if (options.max_slots < 1) return invalid_argument("max_slots must be at least 1");
  if (options.prefill_block < 1) return invalid_argument("prefill_block must be at least 1");
  if (shard.sharded() && comm == nullptr) return invalid_argument("a sharded CPU backend needs a communicator");
  // All parallelism is ours (OpenMP tasks over fixed tiles); BLAS stays
  // single-threaded so results do not depend on the thread count.
  openblas_set_num_threads(1);
  return std::unique_ptr<Backend>(new CpuBackend(shard, comm, load_cpu_weights(checkpoint, shard), options));
}

}  // namespace tnl
