// Host-callable launchers of the CUDA kernels (model-spec §4–5).
//
// Every launcher checks its shapes, enqueues on `stream` and returns the launch
// status (cudaErrorInvalidValue for a bad shape; never aborts). All tensors are
// row-major and contiguous unless a stride is given. `T` is the activation and
// weight type: __nv_bfloat16 or __half (both explicitly instantiated). Matrix
// products of the projections are not here: they go through cuBLAS (engine/cuda).
//
// Layouts shared by the attention kernels:
//   qkvu   [n, 4D]        GEMM output, columns q | k | v | u, head h owns [h·e, (h+1)·e)
//   q, k   [H, n, ek]     head-major after φ and LRPE (ek = 2e on LRPE layers)
//   v      [H, n, e]
//   o      [n, D]         token-major, ready for the post-attention norm
//   state  fp32, slot s of a layer at layer_state + s·slot_stride, head h at +h·ek·e, [ek, e]
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/activation.h"
#include "kernels/sampling_row.h"

namespace tnl::cuda {

enum class ElementType { kF32, kBF16, kF16 };

// dst[i] = T(src[i]) for a host-uploaded tensor of any supported element type.
template <typename T>
cudaError_t convert_elements(ElementType src_type, const void* src, int64_t n, T* dst, cudaStream_t stream);

// dst[i] = uniform(−scale, scale), a counter-based hash of (seed, i): reproducible, never zeros.
template <typename T>
cudaError_t fill_uniform(T* dst, int64_t n, uint64_t seed, float scale, cudaStream_t stream);
cudaError_t fill_uniform_f32(float* dst, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

// x[t, :] = E[tokens[t] − vocab_begin, :] · scale (fp32 residual stream); the table
// holds `vocab` rows (a tensor-parallel shard starts at vocab_begin, else 0).
// Tokens outside [vocab_begin, vocab_begin + vocab) give zeros.
template <typename T>
cudaError_t embed_tokens(const T* table, int64_t vocab, int64_t vocab_begin, int64_t dim, const int32_t* tokens,
                         int64_t n, float scale, float* x, cudaStream_t stream);

// y[r, :] = SRMSNorm(x[i, :]) with i = row_index ? row_index[r] : r (fp32 math, T out).
template <typename T>
cudaError_t srms_norm(const float* x, int64_t width, const int32_t* row_index, int64_t rows, T* y,
                      cudaStream_t stream);

// g[t, :] = SRMSNorm(o[t, :]) ⊙ u[t, :] over all D channels; u has row stride u_stride.
template <typename T>
cudaError_t norm_gate(const T* o, const T* u, int64_t u_stride, int64_t n, int64_t width, T* g,
                      cudaStream_t stream);
// The same norm for a tensor-parallel rank that holds `width` of the D = norm_width
// channels: sum_sq[t] = Σ o[t, :]² over its channels (fp32); once the ranks'
// sums are all-reduced, norm_gate_summed divides by sqrt(sum_sq[t]/D + ε).
template <typename T>
cudaError_t row_sum_squares(const T* o, int64_t n, int64_t width, float* sum_sq, cudaStream_t stream);
template <typename T>
cudaError_t norm_gate_summed(const T* o, const T* u, int64_t u_stride, int64_t n, int64_t width,
                             const float* sum_sq, int64_t norm_width, T* g, cudaStream_t stream);

// Every buffer ← the sum over buffers, in buffer order (fp32, deterministic):
// the single-device communicator's all-reduce, ranks sharing one GPU.
constexpr int kMaxRankBuffers = 16;
struct RankBufferSet {
  float* data[kMaxRankBuffers] = {};
  int32_t count = 0;
};
cudaError_t sum_rank_buffers(const RankBufferSet& buffers, int64_t n, cudaStream_t stream);

// p[t, :] = h12[t, 0:G] ⊙ h12[t, G:2G]  (SGLU, no activation).
template <typename T>
cudaError_t sglu_product(const T* h12, int64_t n, int64_t glu, T* p, cudaStream_t stream);

// p[t, :] = (a[t]·W1ᵀ) ⊙ (a[t]·W2ᵀ) for t < rows in one launch: the [W1; W2] GEMM
// (w12 row-major [2·glu, k]) with the SGLU product in its epilogue, so h12 is never
// stored (sglu_gemm.cu). Each factor is rounded to T before the product, as the
// GEMM + sglu_product path rounds them. Runs where sglu_gemm_available() (sm_90a
// code on a compute capability 9.0 device) for shapes sglu_gemm_fits; elsewhere
// cudaErrorNotSupported / cudaErrorInvalidValue. Pointers 16-byte aligned.
template <typename T>
cudaError_t sglu_gemm(const T* a, int64_t rows, int64_t k, const T* w12, int64_t glu, T* p, cudaStream_t stream);
bool sglu_gemm_available();
bool sglu_gemm_fits(int64_t k, int64_t glu);

// y[r, :] += bias (T rows, or the fp32 residual stream).
template <typename T>
cudaError_t add_bias(T* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream);
template <typename T>
cudaError_t add_bias_f32(float* y, const T* bias, int64_t rows, int64_t cols, cudaStream_t stream);

// Splits qkvu into per-head q, k, v, applying φ to q and k and, when theta ([H, e],
// fp32) is given, LRPE at positions[t]: q ← [φq ⊙ cos θt, φq ⊙ sin θt].
template <typename T>
cudaError_t split_qkv(const T* qkvu, int64_t n, int64_t heads, int64_t e, Activation act,
                      const float* theta, const int32_t* positions, T* q, T* k, T* v, cudaStream_t stream);

// ---- Lightning Attention prefill (blocked, model-spec §5.3) ----
//
// A variable-length batch of sequences in one launch. Long sequences are cut into
// segments so that the chip fills even for one sequence: each segment runs the
// blocked recurrence from its incoming state. That state comes from a states pass
// (the local state, from zero, of every part of every non-last segment) and a scan
// over the parts. The output pass walks a segment's blocks in series, so
// segments are few and long; the states pass only sums, so its parts are cut
// finer where the segments alone leave SMs idle. plan_lightning() makes the plan
// on the host; its int32 arrays go to the device as they are.
struct LightningPlan {
  std::vector<int32_t> segments;    // per segment: tok_begin, len, seq, flags (kFirst | kLast)
  // Per sequence with ≥ 2 segments: seq, first segment, count, first part, parts.
  std::vector<int32_t> multi;
  // The states pass's pieces, as segments (flags 0): every non-last segment cut into
  // one or more parts, in order, so that the pass fills the chip (lightning_plan.cu).
  std::vector<int32_t> parts;
  int32_t num_segments = 0;
  int32_t num_multi = 0;
  int32_t num_parts = 0;
  int32_t max_segment_len = 0;
  int32_t slice_columns = 0;  // for LightningArgs::slice_columns
  static constexpr int32_t kFirst = 1, kLast = 2;
};
// seq_lens: tokens per sequence. target_ctas: CTAs wanted in flight (≈ 2 × SMs).
// max_segment: force segments no longer than this (tests); 0: choose.
// state_parts: cut every non-last segment into this many parts for the states
// pass (tests, tnl-bench); 0: choose.
// When the sequences alone do not give target_ctas CTAs, they are cut into
// segments of at least kLightningMinSegment tokens (a multiple of 64); a short
// last piece is spread over the others where they grow by at most an eighth (every
// piece but the last costs a states-pass read of its K and V). A CTA runs
// its segment's blocks one after another (~4–5 µs a block on an H200), so short
// segments matter for short prompts: on the H200 (385M shape) 128 instead of 256
// took a 512-token prefill from 2.32–2.37 to 2.09 ms; 64 gained nothing more.
// At e = 128 the plan also picks the value-slice width: 32 columns (twice the
// CTAs) when 64-column CTAs would be fewer than the SMs (target_ctas / 2). Several
// sequences of at most 1,024 tokens (lightning_plan.cu) whose 32-column CTAs fill
// the SMs and whose 64-column ones would not are left whole: a cut costs two more
// launches (states, scan), and each of its segments still walks several blocks.
// The states pass's parts: each non-last segment in one part, or in as many as
// let the parts' CTAs (parts · heads) fill the SMs, each of at least
// kLightningMinSegment tokens, at most kLightningMaxStateParts a segment.
inline constexpr int32_t kLightningMaxStateParts = 8;
inline constexpr int64_t kLightningMinSegment = 128;
LightningPlan plan_lightning(const std::vector<int32_t>& seq_lens, int64_t heads, int64_t e,
                             int64_t target_ctas, int32_t max_segment = 0, int32_t state_parts = 0);
// The most segments plan_lightning(…, target_ctas) makes for any step of at most
// max_tokens tokens in at most max_seqs sequences (start-up sizing of the scratch).
int64_t lightning_max_segments(int64_t max_tokens, int64_t max_seqs, int64_t heads, int64_t e, int64_t target_ctas);
// The most states-pass parts such a plan makes (state_parts chosen).
int64_t lightning_max_parts(int64_t max_tokens, int64_t heads, int64_t e, int64_t target_ctas);
// Scratch floats the launch needs: (num_segments + num_parts) · H · ek · e, the
// segments' entering states and then the parts' local states.
int64_t lightning_scratch_floats(const LightningPlan& plan, int64_t heads, int64_t ek, int64_t e);

struct LightningArgs {
  int64_t total_tokens = 0;
  int64_t heads = 0, ek = 0, e = 0;
  const float* rates = nullptr;        // [H] decay rate s per head (device)
  const int32_t* segments = nullptr;   // device copy of plan.segments
  const int32_t* multi = nullptr;      // device copy of plan.multi
  const int32_t* parts = nullptr;      // device copy of plan.parts
  int32_t num_segments = 0, num_multi = 0, num_parts = 0, max_segment_len = 0;
  const int32_t* seq_slot = nullptr;   // [N] slot of each sequence (device)
  const int32_t* seq_fresh = nullptr;  // [N] 1: start from a zero state (device)
  float* layer_state = nullptr;        // slot states of this layer
  int64_t slot_stride = 0;             // floats between slots
  float* scratch = nullptr;            // lightning_scratch_floats()
  // Value columns a CTA owns (LightningPlan::slice_columns): for e = 128, 64 or 32
  // (twice the CTAs, each with about 2/3 of the work: the scores are not split);
  // other head widths take min(e, 64). 0: min(e, 64). The result is the same bit
  // for bit: a column's arithmetic does not depend on its neighbours.
  int32_t slice_columns = 0;
  // The e_k = 128, 64-column tile runs on warpgroup MMA (wgmma) where the device
  // and the build have it (sm_90a); false: mma.sync everywhere (tnl-bench times
  // both). The same bits either way (cuda_lightning_test asserts it).
  bool allow_wgmma = true;

  // Where the parts' local states start in `scratch`: after the segments' entering
  // states (lightning_scratch_floats).
  __host__ __device__ float* part_states() const { return scratch + int64_t(num_segments) * heads * ek * e; }

  // The plan's counts and slice width (its int arrays travel as device copies).
  void set_plan(const LightningPlan& p) {
    num_segments = p.num_segments;
    num_multi = p.num_multi;
    num_parts = p.num_parts;
    max_segment_len = p.max_segment_len;
    slice_columns = p.slice_columns;
  }
};
template <typename T>
cudaError_t lightning_prefill(const T* q, const T* k, const T* v, const LightningArgs& args, T* o,
                              cudaStream_t stream);
// Whether lightning_prefill has its warpgroup-MMA tile here: this build has sm_90a
// code and the current device is compute capability 9.0.
bool lightning_wgmma_available();

// ---- Batched decode (recurrent form, model-spec §5.2) ----
// One token per sequence i: reads its qkvu row, applies φ (and LRPE at
// positions[i]), updates the state of slots[i] in place (S = λS + k vᵀ; a
// position of 0 starts from zero) and writes o_i = qᵀS. Reads and writes each
// state once with 16-byte accesses.
struct DecodeArgs {
  int64_t batch = 0, heads = 0, e = 0;
  bool lrpe = false;
  Activation act = Activation::kSilu;
  const float* theta = nullptr;      // [H, e] when lrpe
  const float* rates = nullptr;      // [H]
  const int32_t* positions = nullptr;  // [batch]
  const int32_t* slots = nullptr;      // [batch]
  float* layer_state = nullptr;
  int64_t slot_stride = 0;
  // The states are read while the launch before finishes (dependent_launch.cuh):
  // false when that launch may write them (the token-by-token prefill fallback).
  bool state_ready_early = true;
  // CTAs a head's state is split into, by columns (e must be a multiple of 4 ×
  // slices); 0: decode_column_slices() chooses.
  int32_t column_slices = 0;
  // State rows each thread has in flight per batch of loads: 8 (0: the default;
  // three CTAs an SM) or 16 (all of an e_k = 128 head at once, two CTAs an SM),
  // kept for measuring one against the other (tnl-bench).
  int32_t rows_in_flight = 0;
};
template <typename T>
cudaError_t recurrent_decode(const T* qkvu, const DecodeArgs& args, T* o, cudaStream_t stream);
// The launcher's slices: doubled while the launch stays within 256 CTAs (two an
// SM on an H200) and a slice keeps ≥ 16 columns — e.g. 8 at batch 1 with 8 heads
// of 128, 1 from batch 32 on.
int64_t decode_column_slices(int64_t batch, int64_t heads, int64_t e);

// ---- Sampling on the device (rules: kernels/sampling_row.h) ----
// Row i of the launch samples logits row rows[i].row; its penalty (and bias)
// entries are entries[penalty_begin, penalty_begin + penalty_count), its
// allowed-token mask masks + mask_begin (⌈V/32⌉ words; mask_begin −1: none).
// `work` holds num_rows × V floats when any row has entries, a mask or a penalty
// row (an adjusted copy of its row), else may be null. A row with a penalty mode
// applies its slot's counts densely (after rewriting them from its entries for
// kRebuild), then its entries' biases, and counts its drawn token.
struct SampleRowArgs {
  RowSampling params;
  int32_t row = 0;
  int32_t penalty_begin = 0, penalty_count = 0;
  int32_t want_logprob = 0;
  int32_t mask_begin = -1;
  int32_t penalty_slot = -1;  // the live slot whose penalty row the row uses (mode ≠ kNone)
  PenaltyRowMode penalty_mode = PenaltyRowMode::kNone;
};
// The per-slot penalty rows (PenaltyRowMode): counts [slots, V] (times each
// token was drawn) and prompt flags [slots, ⌈V/32⌉] (bit set: in the prompt).
// Null when no row of the launch has a mode other than kNone.
struct PenaltyRows {
  int32_t* counts = nullptr;
  uint32_t* prompt_bits = nullptr;
};
// Top-p alone picks its compaction threshold from a sample of the row: ids in
// every kSampleEstimateEvery-th group of kSampleEstimateGroup consecutive ids
// (where the sample misleads, an exact path decides; tests build such rows).
constexpr int64_t kSampleEstimateGroup = 64, kSampleEstimateEvery = 8;
cudaError_t sample_rows(const float* logits, int64_t vocab, const SampleRowArgs* rows, int64_t num_rows,
                        const PenaltyEntry* entries, const uint32_t* masks, PenaltyRows penalty_rows, float* work,
                        SampledToken* out, cudaStream_t stream);

}  // namespace tnl::cuda
