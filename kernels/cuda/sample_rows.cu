// Device-side sampling of logits rows (rules: kernels/sampling_row.h; reference:
// kernels/cpu/sampling_reference.cpp). One CTA of 512 threads per row; the row
// (V fp32, ≤ 512 KB) is re-read from L2 by each pass, never sorted:
//   1. the allowed-token mask, penalties and biases into a private copy of the row
//      (only rows that have any);
//   2. argmax (ties to the lower id) and, for the logprob, log Σ exp of the raw row;
//   3. top-k: radix select of the k-th best key, 8 bits a level, counting;
//   4. top-p: radix select again, weighing each candidate by its fixed-point weight;
//   5. the draw: a block scan in id order over per-thread id ranges.
// Top-p without top-k (top_p_estimated) reads the row twice: its maximum, then
// one pass that sums every exact weight and copies the candidates at or above a
// threshold, in id order, into shared memory; steps 4–5 run there. The threshold
// comes from a 1/8 sample of the row read in between: the most candidates that
// should fit, and a few log-weight bins past where the sample reaches top_p.
// Where the sample was wrong (the set does not fit, or what was kept weighs less
// than top_p of the row) the exact compacted path (top_p_compacted: a pass of
// 256 log-weight bins, then a copy of the bins up to the crossing) decides, and
// rows whose top-p set is too large for either take the passes above. A top-k
// row (k ≤ capacity / 4) takes the same sample for a threshold that should
// keep 3k + 256 candidates, copies them in one pass, and steps 3–5 run over the
// copy (over the row where fewer than k were kept).
// Ties at a selected key are resolved by id (the lowest ids stay), found by the
// same id-order scan. Fixed-point integer sums make every result independent of
// the order of the additions (deterministic runs, exact agreement with the CPU
// reference but for expf's last bit).
// Shared memory: ≈ 8.5 KB static (one 256-bin histogram in two u32 halves, the
// sample's bins, bin b*'s candidates, scan space) and a block's share of the SM dynamic: the
// compacted candidates (up to kCompactCapacity × 8 bytes), or, for the passes
// over the whole row, one histogram a warp (32 KB). Two CTAs share an
// SM (registers capped at 64 a thread, and each takes at most half the SM's
// shared memory): a batch of 256 rows then runs in one wave on an H200's 132 SMs
// with 32 warps an SM, where one CTA an SM (124 registers) left the SM at 16
// warps stalled on shared-memory atomics and barriers (IPC 1.85).
#include <algorithm>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernel_attribute.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

constexpr int kThreads = 512, kWarps = kThreads / 32, kBins = 256;
constexpr unsigned kFull = 0xffffffffu;
constexpr float kFixedOne = 68719476736.0f;  // kSamplingFixedOne
using u64 = unsigned long long;

// Histogram weights are split w = hi·2¹⁸ + lo into two 32-bit counters: a warp
// sees at most 2¹⁷ / 16 = 2¹³ ids and w ≤ 2³⁶, so each half of a warp's bin stays
// below 2³¹ (exact), and 32-bit shared atomics are native where 64-bit ones are not.
constexpr int kLowBits = 18;
constexpr u64 kLowMask = (u64(1) << kLowBits) - 1;

// Candidates a compacted top-p row may keep in shared memory (value + id each).
// Its histograms are single copies (one per block, not per warp): a bin's two
// 32-bit halves stay exact while the capacity times the largest weight's high
// half (2³⁶ >> 18 = 2¹⁸) stays below 2³², i.e. under 2¹⁴ candidates (and a
// multiple of 4: float4-aligned ids after the values).
constexpr int kCompactCapacity = (1 << 14) - 4;
static_assert(u64(kCompactCapacity) * (u64(kFixedOne) >> kLowBits) < (u64(1) << 32) && kCompactCapacity % 4 == 0,
              "a compacted row's single-copy histogram could wrap");
constexpr int kBlocksPerSm = 2;
constexpr int kMinCompactCapacity = 1024;  // below this the compacted path is not worth a launch option
constexpr size_t kCompactEntryBytes = sizeof(float) + sizeof(int32_t);
constexpr int kMaxSlices = 8;  // slices of one compaction batch (kCompactSlices or kLoadBatch)

// The estimated top-p path (top_p_estimated) picks its compaction threshold from
// every kEstimateEvery-th group of kEstimateGroup consecutive ids (1/8 of the
// row, spread over all of it), aiming at kEstimateFill of the capacity and at
// most kEstimateMarginBins log-weight bins (0.1 of a scaled logit each) past
// where the sample says top_p is reached.
constexpr int64_t kEstimateGroup = kSampleEstimateGroup, kEstimateEvery = kSampleEstimateEvery;
constexpr int kEstimateMarginBins = 6;
constexpr float kEstimateFill = 0.7f;
// Bin b*'s candidates of a compacted row, gathered so that the top-p select
// reads them alone (more than this: it reads the compacted row).
constexpr int kLastBinCapacity = 512;

// 256-bin histograms of exact fixed-point weights, `copies` of them (one a warp
// where the whole row is counted, so that a warp's atomics touch only its own
// copy; one for a compacted row, whose storage the per-warp copies share).
struct Histograms {
  uint32_t* hi;
  uint32_t* lo;
  int copies;  // 1 or kWarps
};
constexpr size_t kWarpHistogramBytes = size_t(kWarps) * kBins * 2 * sizeof(uint32_t);

struct SampleShared {
  uint32_t hist1_hi[kBins], hist1_lo[kBins];  // the single-copy histograms
  uint32_t slice_totals[2][kMaxSlices][kWarps];  // compaction: kept per warp and slice, double-buffered
  u64 bins[kBins];
  uint32_t est_count[kBins];  // top_p_estimated: the sample's candidates per log-weight bin
  u64 warp_u64[kWarps];
  float warp_f[kWarps], warp_f2[kWarps];
  int32_t warp_i[kWarps];
  float last_bin[kLastBinCapacity];  // a compacted row's candidates in bin b* (any order)
  int32_t last_count;
  float last_lo, last_hi;  // bin b*'s values: [last_lo, last_hi)
  uint32_t sel_bin;
  u64 sel_above;
  int32_t sel_found;
  int32_t found_id;
  int32_t est_keep_bin;  // top_p_estimated: the bins kept, −1 when the sample says the set does not fit
  int32_t est_samples;
  float keep_from;  // the compacted top-p row: the lowest value kept
};

__device__ __forceinline__ Histograms single_histogram(SampleShared& s) { return {s.hist1_hi, s.hist1_lo, 1}; }
// Per-warp copies in the dynamic shared memory (not while it holds compacted candidates).
__device__ __forceinline__ Histograms warp_histograms(unsigned char* dynamic) {
  uint32_t* hi = reinterpret_cast<uint32_t*>(dynamic);
  return {hi, hi + kWarps * kBins, kWarps};
}

// Histograms are cleared, added to, and summed into s.bins.
__device__ void clear_histograms(const Histograms& h) {
  for (int b = threadIdx.x; b < h.copies * kBins; b += kThreads) {
    h.hi[b] = 0;
    h.lo[b] = 0;
  }
}
__device__ __forceinline__ void histogram_add(const Histograms& h, int warp, uint32_t bin, u64 w) {
  // Native 32-bit shared atomics. (Combining equal bins across a warp first with
  // __match_any_sync + __reduce_add_sync compiled to a loop over the distinct
  // bins and ran ten times slower.)
  const int at = (h.copies == 1 ? 0 : warp * kBins) + int(bin);
  atomicAdd(&h.lo[at], uint32_t(w & kLowMask));
  if (w >> kLowBits) atomicAdd(&h.hi[at], uint32_t(w >> kLowBits));
}
// After a barrier that follows the last histogram_add; s.bins is ready after the next one.
__device__ void sum_histograms(const Histograms& h, SampleShared& s) {
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    u64 t = 0;
    for (int c = 0; c < h.copies; ++c) t += (u64(h.hi[c * kBins + b]) << kLowBits) + h.lo[c * kBins + b];
    s.bins[b] = t;
  }
}

// A candidate's fixed-point weight against the row maximum (kSamplingFixedOne = 1).
__device__ __forceinline__ u64 fixed_weight(float v, float max, float inv_t) {
  return u64(expf((v - max) * inv_t) * kFixedOne);
}

// Passes over a row load 8 values before using any, so that 8 loads per thread
// are in flight: one dependent load per iteration leaves a pass waiting on memory
// (a 64000-entry row then takes ~50 µs instead of a few).
constexpr int kLoadBatch = 8;
constexpr int kLoadBatch4 = 4;  // float4s: 16 values in flight per thread

// f(i, x[i]) over the whole row, each id once, this thread's share in no set
// order (every caller's result is independent of it): 16-byte loads when the row
// allows them, else ids i = threadIdx.x + k·kThreads.
template <typename F>
__device__ __forceinline__ void for_strided(const float* x, int64_t V, F f) {
  if (V % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const int64_t V4 = V / 4;
    for (int64_t base = threadIdx.x; base < V4; base += int64_t(kThreads) * kLoadBatch4) {
      float4 v[kLoadBatch4];
#pragma unroll
      for (int u = 0; u < kLoadBatch4; ++u) {
        const int64_t j = base + int64_t(u) * kThreads;
        v[u] = j < V4 ? x4[j] : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < kLoadBatch4; ++u) {
        const int64_t j = base + int64_t(u) * kThreads;
        if (j < V4) {
          f(4 * j, v[u].x);
          f(4 * j + 1, v[u].y);
          f(4 * j + 2, v[u].z);
          f(4 * j + 3, v[u].w);
        }
      }
    }
    return;
  }
  for (int64_t base = threadIdx.x; base < V; base += int64_t(kThreads) * kLoadBatch) {
    float v[kLoadBatch];
#pragma unroll
    for (int u = 0; u < kLoadBatch; ++u) {
      const int64_t i = base + int64_t(u) * kThreads;
      v[u] = i < V ? x[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kLoadBatch; ++u) {
      const int64_t i = base + int64_t(u) * kThreads;
      if (i < V) f(i, v[u]);
    }
  }
}

// f(i, x[i]) for i in [lo, hi) in order; stops after the first call that returns
// true. (32-bit ids: a row has at most 2¹⁷ entries.)
template <typename F>
__device__ __forceinline__ void for_range(const float* x, int32_t lo, int32_t hi, F f) {
  for (int32_t base = lo; base < hi; base += kLoadBatch) {
    float v[kLoadBatch];
#pragma unroll
    for (int u = 0; u < kLoadBatch; ++u) v[u] = base + u < hi ? x[base + u] : 0.0f;
#pragma unroll
    for (int u = 0; u < kLoadBatch; ++u) {
      if (base + u < hi && f(base + u, v[u])) return;
    }
  }
}

// One key per value: NaN counts as −inf, and + 0 turns −0 into +0.
__device__ __forceinline__ float canonical(float v) { return isnan(v) ? -INFINITY : v + 0.0f; }

// Float → unsigned key with the same order (NaN is mapped to −inf before this).
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

__device__ __forceinline__ void take_better(float& v, int32_t& i, float v2, int32_t i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

// Block-wide argmax by (value descending, id ascending); every thread gets the result.
__device__ void block_argmax(float& v, int32_t& i, SampleShared& s) {
  for (int o = 16; o > 0; o >>= 1) take_better(v, i, __shfl_xor_sync(kFull, v, o), __shfl_xor_sync(kFull, i, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    s.warp_f[threadIdx.x >> 5] = v;
    s.warp_i[threadIdx.x >> 5] = i;
  }
  __syncthreads();
  v = s.warp_f[0];
  i = s.warp_i[0];
  for (int w = 1; w < kWarps; ++w) take_better(v, i, s.warp_f[w], s.warp_i[w]);
}

// (max, Σ exp(x − max)) pairs, merged stably; −inf max means "nothing yet".
__device__ __forceinline__ void lse_merge(float& m, float& sum, float m2, float sum2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    sum = sum2;
    return;
  }
  const float mx = fmaxf(m, m2);
  sum = sum * expf(m - mx) + sum2 * expf(m2 - mx);
  m = mx;
}

__device__ float block_log_sum_exp(float m, float sum, SampleShared& s) {
  for (int o = 16; o > 0; o >>= 1) lse_merge(m, sum, __shfl_xor_sync(kFull, m, o), __shfl_xor_sync(kFull, sum, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    s.warp_f[threadIdx.x >> 5] = m;
    s.warp_f2[threadIdx.x >> 5] = sum;
  }
  __syncthreads();
  float M = -INFINITY, S = 0.0f;
  for (int w = 0; w < kWarps; ++w) lse_merge(M, S, s.warp_f[w], s.warp_f2[w]);
  return M + logf(S);
}

__device__ u64 block_sum(u64 v, SampleShared& s) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.warp_u64[threadIdx.x >> 5] = v;
  __syncthreads();
  u64 total = 0;
  for (int w = 0; w < kWarps; ++w) total += s.warp_u64[w];
  return total;
}

// Exclusive prefix sum over the threads of the block, in thread order.
__device__ u64 block_exclusive_scan(u64 v, SampleShared& s) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u64 inclusive = v;
  for (int o = 1; o < 32; o <<= 1) {
    const u64 n = __shfl_up_sync(kFull, inclusive, o);
    if (lane >= o) inclusive += n;
  }
  __syncthreads();
  if (lane == 31) s.warp_u64[warp] = inclusive;
  __syncthreads();
  u64 before = 0;
  for (int w = 0; w < warp; ++w) before += s.warp_u64[w];
  return before + inclusive - v;
}

// The first id (in id order) at which the running sum of weight_of(i, x[i])
// exceeds threshold_of(Σ of every weight); −1 when the total does not. Each
// thread owns a contiguous id range (in shared memory one pass serves both the
// total and the search).
template <typename WeightOf, typename ThresholdOf>
__device__ int32_t first_exceeding_of(const float* x, WeightOf weight_of, int64_t V, ThresholdOf threshold_of,
                                      SampleShared& s) {
  const int32_t n = int32_t(V), chunk = (n + kThreads - 1) / kThreads;
  const int32_t lo = min(n, int32_t(threadIdx.x) * chunk), hi = min(n, lo + chunk);
  u64 mine = 0;
  for_range(x, lo, hi, [&](int32_t i, float v) {
    mine += weight_of(i, v);
    return false;
  });
  const u64 before = block_exclusive_scan(mine, s);
  if (threadIdx.x == 0) s.found_id = -1;
  __syncthreads();
  u64 total = 0;  // block_exclusive_scan left each warp's total in s.warp_u64
  for (int w = 0; w < kWarps; ++w) total += s.warp_u64[w];
  const u64 threshold = threshold_of(total);
  if (before <= threshold && threshold < before + mine) {  // exactly one thread
    u64 running = before;
    for_range(x, lo, hi, [&](int32_t i, float v) {
      running += weight_of(i, v);
      if (running <= threshold) return false;
      s.found_id = int32_t(i);
      return true;
    });
  }
  __syncthreads();
  return s.found_id;
}
template <typename WeightOf>
__device__ int32_t first_exceeding(const float* x, WeightOf weight_of, int64_t V, u64 threshold, SampleShared& s) {
  return first_exceeding_of(x, weight_of, V, [=](u64) { return threshold; }, s);
}

// Warp 0 only: walking s.bins best first (from bin 255 down when kFromTop, else
// from bin 0 up), the first bin b where above + (weight of the bins before it and
// b) reaches target: s.sel_bin = b, s.sel_above = above + the bins before it;
// s.sel_found says whether there is one. Lane l takes 8 consecutive bins of the walk.
template <bool kFromTop>
__device__ void find_crossing_bin(SampleShared& s, u64 above, double target) {
  const int lane = threadIdx.x & 31;
  auto bin_at = [](int k) { return kFromTop ? kBins - 1 - k : k; };  // k-th bin of the walk
  u64 local = 0;
  for (int j = 0; j < 8; ++j) local += s.bins[bin_at(8 * lane + j)];
  u64 inclusive = local;
  for (int o = 1; o < 32; o <<= 1) {
    const u64 n = __shfl_up_sync(kFull, inclusive, o);
    if (lane >= o) inclusive += n;
  }
  const u64 exclusive = inclusive - local;
  const bool mine = double(above + exclusive) < target && double(above + inclusive) >= target;
  const unsigned ballot = __ballot_sync(kFull, mine);
  if (lane == 0) s.sel_found = ballot != 0;
  if (ballot != 0 && lane == __ffs(ballot) - 1) {
    u64 running = above + exclusive;
    for (int j = 0; j < 8; ++j) {
      const int b = bin_at(8 * lane + j);
      if (double(running + s.bins[b]) >= target) {
        s.sel_bin = uint32_t(b);
        s.sel_above = running;
        break;
      }
      running += s.bins[b];
    }
  }
}

// Radix select from the top: the key K at which the weight of the included
// elements with keys ≥ K first reaches `target`. *above: weight of keys > K;
// *at: weight of keys == K. False when the total weight stays below target.
// `element(i, x[i], &key, &weight)` says whether element i takes part.
// `above_start`: weight of keys above every element that takes part (a compacted
// row's better bins), so the sums compared with target are the whole row's.
template <typename Element>
__device__ bool select_key(const float* x, Element element, int64_t V, double target, const Histograms& h,
                           SampleShared& s, uint32_t* key_out, u64* above_out, u64* at_out, u64 above_start = 0) {
  const int warp = threadIdx.x >> 5;
  uint32_t prefix = 0, mask = 0;
  u64 above = above_start, at = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    clear_histograms(h);
    __syncthreads();
    for_strided(x, V, [&](int64_t i, float v) {
      uint32_t key;
      u64 w = 0;
      if (!element(i, v, key, w) || (key & mask) != prefix) return;
      histogram_add(h, warp, (key >> shift) & 0xFF, w);
    });
    __syncthreads();
    sum_histograms(h, s);
    __syncthreads();
    if (warp == 0) find_crossing_bin</*kFromTop=*/true>(s, above, target);
    __syncthreads();
    if (!s.sel_found) return false;  // the same answer in every thread
    const uint32_t b = s.sel_bin;
    above = s.sel_above;
    at = s.bins[b];
    prefix |= b << shift;
    mask |= 0xFFu << shift;
    __syncthreads();  // everyone has read sel_* and bins before the next level clears them
  }
  *key_out = prefix;
  *above_out = above;
  *at_out = at;
  return true;
}

// A kept candidate's fixed-point weight in the draw, 0 where min-p drops it
// (both draws below: the row's and the compacted row's).
__device__ __forceinline__ u64 fixed_draw_weight(float v, float max, float inv_t, float min_p) {
  const float w = expf((v - max) * inv_t);
  if (min_p > 0.0f && w < min_p) return 0;
  return u64(w * kFixedOne);
}

// A candidate's weight in the draw: its fixed-point weight where kept(i, key)
// and min-p keep it, else 0.
template <typename Kept>
__device__ __forceinline__ auto draw_weight(Kept kept, float max, const RowSampling& p) {
  return [=](int64_t i, float v) -> u64 {
    v = canonical(v);
    if (!kept(i, order_key(v))) return 0;
    return fixed_draw_weight(v, max, p.inv_temperature, p.min_p);
  };
}

// min-p, then the draw: the first id (in id order) among those kept(i, key)
// passes at which the running fixed-point weight exceeds uniform · Σ.
template <typename Kept>
__device__ int32_t draw_in_id_order(const float* x, int64_t n, Kept kept, float max, const RowSampling& p,
                                    SampleShared& s) {
  const auto kept_weight = draw_weight(kept, max, p);
  u64 mine = 0;
  for_strided(x, n, [&](int64_t i, float v) { mine += kept_weight(i, v); });
  const u64 total = block_sum(mine, s);
  return first_exceeding(x, kept_weight, n, u64(p.uniform * double(total)), s);
}

// Log-weight bin of a candidate: s = (x − max)·(1/T) ≤ 0 cut into steps of 0.1,
// best first; bin 255 holds s ≤ −25.5, whose fixed-point weight e^s·2³⁶ < 0.6
// truncates to 0. Monotone in x, so "bin ≤ b" is a best-first prefix of the row.
constexpr float kBinsPerUnit = 10.0f, kNegligibleLog = -25.5f;
__device__ __forceinline__ int log_weight_bin(float scaled) {
  return scaled > kNegligibleLog ? int(-scaled * kBinsPerUnit) : kBins - 1;
}

// v[e] for a run-time e, by selects on e's bits (a register array indexed at run
// time would live in local memory).
__device__ __forceinline__ float pick(const float (&v)[1], int) { return v[0]; }
__device__ __forceinline__ float pick(const float (&v)[8], int e) {
  const bool b0 = e & 1, b1 = e & 2, b2 = e & 4;
  const float v01 = b0 ? v[1] : v[0], v23 = b0 ? v[3] : v[2], v45 = b0 ? v[5] : v[4], v67 = b0 ? v[7] : v[6];
  const float v03 = b1 ? v23 : v01, v47 = b1 ? v67 : v45;
  return b2 ? v47 : v03;
}

// Copies (x[i], i) for every i with keep(x[i]) into vals/ids, in id order, and
// calls weigh(x[i]) once for every i; returns how many were copied, or −1 when
// more than `capacity` (nothing usable then). Ids past V are read as −inf, which
// keep(v) must refuse and weigh(v) must count as nothing. Each batch is cut
// into slices; in a slice thread t holds PerThread consecutive ids (slice start
// + t·PerThread …), so a warp scan of the threads' counts and one barrier per
// batch place every kept element. Nsight Compute's source counters (H200, 256
// rows × 64k) put earlier forms of this pass at a third to a half of the top-p
// kernel's instructions: a bound check per element, and stores in a loop over
// all of a thread's ids that ran for the whole warp wherever one lane kept an id
// (the kept ones are ~1 in 7). Now a thread loops over its kept ids alone
// (a warp as often as its busiest lane keeps, ~3.6 times for 8 ids), and
// one-lane-in-a-warp layouts (element e of a warp = one coalesced load, placed
// by a ballot) were measured slower: more load and placement instructions.
template <int Slices, int PerThread, typename Load, typename Weigh, typename Keep>
__device__ int32_t compact_batches(int64_t V, Load load, Weigh weigh, Keep keep, float* vals, int32_t* ids,
                                   int32_t capacity, SampleShared& s) {
  static_assert(Slices <= kMaxSlices && (PerThread == 1 || PerThread == 8), "slice_totals and the element pick");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  constexpr int64_t kSliceIds = int64_t(kThreads) * PerThread;
  int32_t running = 0;
  int buf = 0;
  for (int64_t batch = 0; batch < V; batch += kSliceIds * Slices, buf ^= 1) {
    float v[Slices][PerThread];
    uint32_t kept[Slices], count[Slices], inclusive[Slices];
#pragma unroll
    for (int u = 0; u < Slices; ++u) load(batch + u * kSliceIds + int64_t(threadIdx.x) * PerThread, v[u]);
#pragma unroll
    for (int u = 0; u < Slices; ++u) {
      kept[u] = 0;
#pragma unroll
      for (int e = 0; e < PerThread; ++e) {
        weigh(v[u][e]);
        kept[u] |= uint32_t(keep(v[u][e])) << e;
      }
      count[u] = __popc(kept[u]);
      inclusive[u] = count[u];
      for (int o = 1; o < 32; o <<= 1) {
        const uint32_t n = __shfl_up_sync(kFull, inclusive[u], o);
        if (lane >= o) inclusive[u] += n;
      }
      if (lane == 31) s.slice_totals[buf][u][warp] = inclusive[u];
    }
    __syncthreads();
    int32_t base = running;
#pragma unroll
    for (int u = 0; u < Slices; ++u) {
      // The warps' totals of this slice, one a lane, scanned with shuffles: each
      // thread reads one value, not kWarps.
      const uint32_t mine = lane < kWarps ? s.slice_totals[buf][u][lane] : 0u;
      uint32_t scan = mine;
      for (int o = 1; o < kWarps; o <<= 1) {
        const uint32_t n = __shfl_up_sync(kFull, scan, o);
        if (lane >= o) scan += n;
      }
      const int32_t before = int32_t(__shfl_sync(kFull, scan - mine, warp));  // the warps before this one
      const int32_t total = int32_t(__shfl_sync(kFull, scan, kWarps - 1));
      // Block-uniform: past capacity nothing of this batch is stored (the result is −1).
      if (base + total <= capacity) {
        int32_t at = base + before + int32_t(inclusive[u] - count[u]);
        const int32_t first = int32_t(batch + u * kSliceIds) + int32_t(threadIdx.x) * PerThread;
        for (uint32_t bits = kept[u]; bits != 0; bits &= bits - 1) {
          const int e = __ffs(bits) - 1;
          vals[at] = pick(v[u], e);
          ids[at] = first + e;
          ++at;
        }
      }
      base += total;
    }
    running = base;  // the same in every thread
    if (running > capacity) return -1;
  }
  __syncthreads();  // the compacted arrays are complete for every thread
  return running;
}

constexpr int kCompactIds = 8, kCompactSlices = 2;
// kCompactIds consecutive ids a thread (float4 loads) when the row allows 16-byte
// loads, else 1 id a thread; 4 float4 loads a thread in flight (2 slices × 2),
// or kLoadBatch floats.
template <typename Weigh, typename Keep>
__device__ int32_t compact_in_id_order(const float* x, int64_t V, Weigh weigh, Keep keep, float* vals, int32_t* ids,
                                       int32_t capacity, SampleShared& s) {
  if (V % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    auto load_vector = [&](int64_t first, float (&v)[kCompactIds]) {
#pragma unroll
      for (int q = 0; q < kCompactIds / 4; ++q) {
        const int64_t at = first + 4 * q;
        const float4 f = at < V ? x4[at / 4] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        v[4 * q] = f.x;
        v[4 * q + 1] = f.y;
        v[4 * q + 2] = f.z;
        v[4 * q + 3] = f.w;
      }
    };
    return compact_batches<kCompactSlices, kCompactIds>(V, load_vector, weigh, keep, vals, ids, capacity, s);
  }
  auto load1 = [&](int64_t first, float (&v)[1]) { v[0] = first < V ? x[first] : -INFINITY; };
  return compact_batches<kLoadBatch, 1>(V, load1, weigh, keep, vals, ids, capacity, s);
}

// The smallest value whose log-weight bin is ≤ b (b < kBins − 1): the bin is
// monotone in the value, so "bin ≤ b" is "value ≥ this". A search over order
// keys between −inf (bin kBins − 1) and the row maximum (bin 0), with the same
// bin function as every other pass; one warp, all lanes, 32 keys a round (7
// rounds; one thread's binary search took 32 dependent rounds while the block
// waited at the next barrier, ~5% of the top-p kernel's time in three searches).
template <typename BinOf>
__device__ float warp_lowest_value_in_bins(int b, float row_max, BinOf bin_of) {
  const uint32_t lane = threadIdx.x & 31;
  uint32_t lo = order_key(-INFINITY), hi = order_key(row_max);  // bin_of(lo) > b ≥ bin_of(hi)
  while (hi - lo > 1) {
    const uint32_t step = max((hi - lo) / 32u, 1u);  // lo + 32·step ≤ hi: no overflow
    const uint32_t probe = min(lo + step * (lane + 1u), hi - 1u);
    const unsigned ok = __ballot_sync(kFull, bin_of(key_value(probe)) <= b);  // a suffix of the lanes
    const uint32_t first_ok = ok ? uint32_t(__ffs(ok)) - 1u : 32u;
    const uint32_t below = __shfl_sync(kFull, probe, int(max(first_ok, 1u) - 1u));
    const uint32_t at = __shfl_sync(kFull, probe, int(min(first_ok, 31u)));
    if (first_ok < 32u) hi = at;
    if (first_ok > 0u) lo = below;  // the last probe that failed
  }
  return key_value(hi);
}

// The end of top-p (top-k off) over a compacted row that holds, in id order,
// every candidate of the log-weight bins ≤ b* (and maybe more below them), b*
// being the bin where the best-first weight reaches target and `above_bins` the
// weight of the bins before it: the top-p key among bin b*'s candidates, ties
// at it by id, min-p and the draw, with the same fixed-point sums as the full
// passes, so the same token. False, with nothing decided, where the select misses
// (it cannot with exact sums; the full passes then handle the row as the host does).
__device__ bool finish_compacted_top_p(const float* vals, const int32_t* ids, int32_t n, double target, int b_star,
                                       u64 above_bins, float max, const RowSampling& p, SampleShared& s,
                                       int32_t* token) {
  const float inv_t = p.inv_temperature;
  auto weight = [&](float v) { return fixed_weight(v, max, inv_t); };
  uint32_t key_p = 0;
  u64 above = 0, at = 0;
  auto in_last_bin = [&](int64_t, float v, uint32_t& key, u64& w) {
    const float c = canonical(v);
    if (log_weight_bin((c - max) * inv_t) != b_star) return false;
    key = order_key(c);
    w = weight(c);
    return true;
  };
  // Bin b*'s candidates, gathered where they fit: the four select levels then read
  // them alone (one a thread, typically), not the whole compacted row each time.
  const int lane = threadIdx.x & 31;
  auto bin_of = [&](float v) { return log_weight_bin((canonical(v) - max) * inv_t); };
  if (threadIdx.x < 32) {
    const float v = warp_lowest_value_in_bins(b_star, max, bin_of);
    if (threadIdx.x == 0) s.last_lo = v;
  } else if (threadIdx.x < 64) {  // a second warp, at the same time
    const float v = b_star == 0 ? INFINITY : warp_lowest_value_in_bins(b_star - 1, max, bin_of);
    if (threadIdx.x == 32) s.last_hi = v;
  }
  if (threadIdx.x == 0) s.last_count = 0;
  __syncthreads();
  const float lo = s.last_lo, hi = s.last_hi;
  for (int32_t base = 0; base < n; base += kThreads) {  // warp-uniform trips, for the ballot
    const int32_t j = base + int32_t(threadIdx.x);
    const float c = j < n ? canonical(vals[j]) : -INFINITY;
    const bool in = c >= lo && c < hi;
    const unsigned ballot = __ballot_sync(kFull, in);
    int32_t first = 0;
    if (lane == 0 && ballot != 0) first = atomicAdd(&s.last_count, __popc(ballot));
    first = __shfl_sync(kFull, first, 0);
    const int32_t at_gather = first + __popc(ballot & ((1u << lane) - 1u));
    if (in && at_gather < kLastBinCapacity) s.last_bin[at_gather] = c;
  }
  __syncthreads();
  const int32_t m = s.last_count;
  bool selected;
  if (m <= kLastBinCapacity) {
    auto element = [&](int64_t, float c, uint32_t& key, u64& w) {
      key = order_key(c);
      w = weight(c);
      return true;
    };
    selected = select_key(s.last_bin, element, m, target, single_histogram(s), s, &key_p, &above, &at, above_bins);
  } else {
    selected = select_key(vals, in_last_bin, n, target, single_histogram(s), s, &key_p, &above, &at, above_bins);
  }
  if (!selected) return false;
  const u64 w_star = weight(key_value(key_p));
  u64 c = u64(ceil((target - double(above)) / double(w_star)));
  if (c < 1) c = 1;
  while (c > 1 && double(above + (c - 1) * w_star) >= target) --c;
  while (double(above + c * w_star) < target) ++c;
  int64_t tie_p = n;  // a local index: the compacted row is in id order
  if (at / w_star > c) {
    tie_p = first_exceeding(vals, [&](int64_t, float v) { return u64(order_key(canonical(v)) == key_p); }, n, c - 1, s);
  }

  // min-p and the draw, in id order over the compacted row (candidates below
  // key_p, there when the row holds more than bin b*, are out like any other).
  // One pass: over shared memory the threads' contiguous ranges cost nothing
  // beyond strided reads, so the sum and the search share it. The values kept
  // are compared as values (never NaN here; −0 == +0, as their keys after
  // canonical() are), with no key to form.
  const float value_p = key_value(key_p);
  const double uniform = p.uniform;
  auto kept_weight = [&](int64_t j, float v) -> u64 {
    if (!(v > value_p || (v == value_p && j <= tie_p))) return 0;
    return fixed_draw_weight(v, max, inv_t, p.min_p);
  };
  const int32_t drawn =
      first_exceeding_of(vals, kept_weight, n, [=](u64 total) { return u64(uniform * double(total)); }, s);
  if (drawn >= 0) *token = ids[drawn];  // always: the best candidate keeps weight 2³⁶ > 0
  return true;
}

// Top-p (top-k off) through a compacted row, exactly: one pass sums the weights
// into the log-weight bins (per-warp histograms in the dynamic shared memory),
// a second copies the bins up to b* into it. False, with nothing decided, when
// the top-p set has more than `capacity` candidates.
__device__ bool top_p_compacted(const float* x, int64_t V, const RowSampling& p, float max, unsigned char* dynamic,
                                int32_t capacity, SampleShared& s, int32_t* token) {
  const int warp = threadIdx.x >> 5;
  const float inv_t = p.inv_temperature;
  auto scaled = [&](float v) { return (canonical(v) - max) * inv_t; };
  auto weight = [&](float v) { return fixed_weight(v, max, inv_t); };
  const Histograms h = warp_histograms(dynamic);

  // Pass 1: Σw and the weight of each log-weight bin (bin 255 weighs nothing).
  clear_histograms(h);
  __syncthreads();
  u64 mine = 0;
  for_strided(x, V, [&](int64_t, float v) {
    const int bin = log_weight_bin(scaled(v));
    if (bin == kBins - 1) return;
    const u64 w = weight(canonical(v));
    mine += w;
    histogram_add(h, warp, uint32_t(bin), w);
  });
  const double target = double(p.top_p) * double(block_sum(mine, s));  // block_sum's barriers cover the histogram
  sum_histograms(h, s);
  __syncthreads();
  // The first bin b* (best first) where the running weight reaches target; above: the weight of the bins before it.
  if (warp == 0) find_crossing_bin</*kFromTop=*/false>(s, 0, target);  // bin 0 is the best here
  __syncthreads();  // also: every read of the histograms is done before the compaction overwrites them
  if (!s.sel_found) return false;  // cannot happen (Σw ≥ target), but the full passes handle it as the host does
  const int b_star = int(s.sel_bin);
  const u64 above_bins = s.sel_above;
  if (b_star >= kBins - 1) return false;  // cannot happen: bin kBins − 1 weighs nothing
  if (threadIdx.x < 32) {
    const float v = warp_lowest_value_in_bins(b_star, max, [&](float v) { return log_weight_bin(scaled(v)); });
    if (threadIdx.x == 0) s.keep_from = v;
  }
  __syncthreads();

  // Pass 2: the candidates of bins ≤ b*, in id order. (v ≥ keep_from is false for
  // NaN, whose bin is kBins − 1, and treats −0 as +0, as canonical() does.)
  const float keep_from = s.keep_from;
  float* vals = reinterpret_cast<float*>(dynamic);
  int32_t* ids = reinterpret_cast<int32_t*>(vals + capacity);
  const int32_t n = compact_in_id_order(
      x, V, [](float) {}, [&](float v) { return v >= keep_from; }, vals, ids, capacity, s);
  if (n < 0) return false;
  return finish_compacted_top_p(vals, ids, n, target, b_star, above_bins, max, p, s, token);
}

// Warp 0 only: from the sample's bin counts (s.est_count), the bins to keep:
// the most that fit kEstimateFill of the capacity and, for top-p, at most
// kEstimateMarginBins past the bin where the sample reaches top_p of its
// weight; for top-k (k > 0), up to the first bin where the sample counts 3k +
// 256 candidates (or every bin that weighs anything, if it counts at least k
// there). The row's maximum is counted once with weight 1 (the sample leaves
// it out). s.est_keep_bin = −1 where the sample says the set does not fit.
__device__ void choose_estimated_keep_bin(SampleShared& s, int64_t V, float top_p, int32_t top_k, int32_t capacity) {
  const int lane = threadIdx.x & 31;
  const float scale = s.est_samples > 0 ? float(V) / float(s.est_samples) : 1.0f;
  float w_local = 0.0f;
  uint32_t n_local = 0;
  // A bin's weight is taken at its middle (the bins are 0.1 of a scaled logit wide).
  auto bin_weight = [](int b) { return expf(-(float(b) + 0.5f) / kBinsPerUnit); };
  for (int j = 0; j < 8; ++j) {
    const int b = 8 * lane + j;
    if (b < kBins - 1) {  // bin 255 weighs nothing and is never kept
      w_local += float(s.est_count[b]) * bin_weight(b);
      n_local += s.est_count[b];
    }
  }
  float w_incl = w_local;
  uint32_t n_incl = n_local;
  for (int o = 1; o < 32; o <<= 1) {
    const float w = __shfl_up_sync(kFull, w_incl, o);
    const uint32_t n = __shfl_up_sync(kFull, n_incl, o);
    if (lane >= o) {
      w_incl += w;
      n_incl += n;
    }
  }
  const float w_total = 1.0f + scale * __shfl_sync(kFull, w_incl, 31);
  const float n_total = 1.0f + scale * float(__shfl_sync(kFull, n_incl, 31));
  const float need = top_p * w_total, room = kEstimateFill * float(capacity);
  const float want = 3.0f * float(top_k) + 256.0f;
  float w_run = 1.0f + scale * (w_incl - w_local);
  float n_run = 1.0f + scale * float(n_incl - n_local);
  uint32_t short_bins = 0, fitting_bins = 0;  // bins before the set is reached; bins whose prefix fits
  for (int j = 0; j < 8; ++j) {
    const int b = 8 * lane + j;
    if (b >= kBins - 1) break;
    w_run += scale * float(s.est_count[b]) * bin_weight(b);
    n_run += scale * float(s.est_count[b]);
    short_bins += top_k > 0 ? n_run < want : w_run < need;
    fitting_bins += n_run <= room;
  }
  int b_need = int(__reduce_add_sync(kFull, short_bins));  // the first bin that reaches the set
  const int b_fit = int(__reduce_add_sync(kFull, fitting_bins)) - 1;
  if (top_k > 0 && b_need >= kBins - 1 && n_total >= float(top_k)) b_need = kBins - 2;  // every bin that weighs
  int keep = -1;
  if (b_need <= b_fit) keep = top_k > 0 ? b_need : min(b_fit, b_need + kEstimateMarginBins);
  if (lane == 0) s.est_keep_bin = keep;
}

// The estimated paths' threshold: a sample of the row (1/8, spread over it)
// counted into log-weight bins, the bins chosen from it (above), and the lowest
// value they hold into s.keep_from. False where the sample says the set does
// not fit (nothing decided).
__device__ bool estimate_keep_from(const float* x, int64_t V, const RowSampling& p, int32_t top_k, float max,
                                   int32_t capacity, SampleShared& s) {
  const int warp = threadIdx.x >> 5;
  const float inv_t = p.inv_temperature;
  for (int b = threadIdx.x; b < kBins; b += kThreads) s.est_count[b] = 0;
  if (threadIdx.x == 0) s.est_samples = 0;
  __syncthreads();
  // Sample slot k is id (k / G)·G·E + k % G: groups of G consecutive ids, every E-th group.
  constexpr int32_t G = kEstimateGroup, E = kEstimateEvery;
  const int32_t ids_in_row = int32_t(V), slots = (ids_in_row + G * E - 1) / (G * E) * G;  // 32-bit: V ≤ 2¹⁷
  auto id_of = [&](int32_t k) { return k / G * G * E + k % G; };
  int32_t taken = 0;
  for (int32_t base = threadIdx.x; base < slots; base += kThreads * kLoadBatch) {
    float v[kLoadBatch];
#pragma unroll
    for (int u = 0; u < kLoadBatch; ++u) {
      const int32_t k = base + u * kThreads, i = id_of(k);
      v[u] = k < slots && i < ids_in_row ? x[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kLoadBatch; ++u) {
      const int32_t k = base + u * kThreads, i = id_of(k);
      if (k >= slots || i >= ids_in_row) continue;
      ++taken;
      const float c = canonical(v[u]);
      if (c == max) continue;  // the maximum is counted once, exactly
      atomicAdd(&s.est_count[log_weight_bin((c - max) * inv_t)], 1u);
    }
  }
  atomicAdd(&s.est_samples, taken);
  __syncthreads();
  if (warp == 0) choose_estimated_keep_bin(s, V, p.top_p, top_k, capacity);
  __syncthreads();
  const int b_keep = s.est_keep_bin;
  if (b_keep < 0) return false;
  if (threadIdx.x < 32) {
    const float v =
        warp_lowest_value_in_bins(b_keep, max, [&](float v) { return log_weight_bin((canonical(v) - max) * inv_t); });
    if (threadIdx.x == 0) s.keep_from = v;
  }
  __syncthreads();
  return true;
}

// Top-p (top-k off) in two passes over the row after its maximum: a sample of
// it (1/8, spread over the row) picks a threshold that should keep the top-p set
// and fit the compacted row; one pass then sums the exact weights and copies the
// candidates at or above the threshold, in id order. The compacted row's own
// exact bins then give b*, and the end is the exact path's. False, with nothing
// decided, when the sample was wrong: more candidates than `capacity`, or less
// than top_p of the weight kept (the exact path decides then).
__device__ bool top_p_estimated(const float* x, int64_t V, const RowSampling& p, float max, float* vals, int32_t* ids,
                                int32_t capacity, SampleShared& s, int32_t* token) {
  const int warp = threadIdx.x >> 5;
  const float inv_t = p.inv_temperature;
  auto weight = [&](float v) { return fixed_weight(v, max, inv_t); };

  if (!estimate_keep_from(x, V, p, /*top_k=*/0, max, capacity, s)) return false;

  // The pass: every weight into Σw, and the candidates ≥ keep_from in id order.
  // (No canonical() needed: NaN weighs 0, as cvt turns NaN into 0, and fails
  // v ≥ keep_from; −0 and +0 weigh the same.)
  const float keep_from = s.keep_from;
  u64 mine = 0;
  const int32_t n = compact_in_id_order(
      x, V, [&](float v) { mine += weight(v); }, [&](float v) { return v >= keep_from; }, vals, ids, capacity, s);
  if (n < 0) return false;  // the same in every thread
  const double target = double(p.top_p) * double(block_sum(mine, s));

  // The compacted row's exact bins: b* and the weight of the bins before it.
  const Histograms h = single_histogram(s);
  clear_histograms(h);
  __syncthreads();
  for (int32_t j = threadIdx.x; j < n; j += kThreads) {
    const float v = vals[j];  // ≥ keep_from: never NaN
    const int bin = log_weight_bin((v - max) * inv_t);
    if (bin < kBins - 1) histogram_add(h, warp, uint32_t(bin), weight(v));
  }
  __syncthreads();
  sum_histograms(h, s);
  __syncthreads();
  if (warp == 0) find_crossing_bin</*kFromTop=*/false>(s, 0, target);
  __syncthreads();
  if (!s.sel_found) return false;  // what was kept weighs less than top_p of the row
  return finish_compacted_top_p(vals, ids, n, target, int(s.sel_bin), s.sel_above, max, p, s, token);
}

// The row's largest value, NaN read as −inf and −0 as +0 (the argmax's value).
__device__ float block_max(const float* x, int64_t V, SampleShared& s) {
  float m = -INFINITY;
  for_strided(x, V, [&](int64_t, float v) { m = fmaxf(m, v); });  // fmaxf drops NaN
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(kFull, m, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) s.warp_f[threadIdx.x >> 5] = m;
  __syncthreads();
  m = s.warp_f[0];
  for (int w = 1; w < kWarps; ++w) m = fmaxf(m, s.warp_f[w]);
  return m + 0.0f;
}

// Steps 3–5 over x[0, V) (a row, or a compacted row in id order): top-k,
// top-p, min-p and the draw, by radix passes. The index drawn (−1 only where
// nothing weighs).
__device__ int32_t sample_by_passes(const float* x, int64_t V, const RowSampling& p, float max, const Histograms& h,
                                    SampleShared& s) {
  const float inv_t = p.inv_temperature;
  auto weight = [&](float v) { return fixed_weight(v, max, inv_t); };

  // 3. top-k: the k-th best key; ties at it keep the lowest ids.
  const bool topk_on = p.top_k > 0 && p.top_k < V;
  uint32_t key_k = 0;
  int64_t tie_k = V;
  if (topk_on) {
    u64 above = 0, at = 0;
    select_key(x, [&](int64_t, float v, uint32_t& key, u64& w) {
      key = order_key(canonical(v));
      w = 1;
      return true;
    }, V, double(p.top_k), h, s, &key_k, &above, &at);
    const u64 need = u64(p.top_k) - above;
    if (at > need) {
      tie_k = first_exceeding(x, [&](int64_t, float v) { return u64(order_key(canonical(v)) == key_k); }, V,
                              need - 1, s);
    }
  }
  auto kept_k = [&](int64_t i, uint32_t key) { return !topk_on || key > key_k || (key == key_k && i <= tie_k); };

  // 4. top-p: the shortest best-first prefix reaching top_p of the kept weight.
  bool topp_on = p.top_p < 1.0f;
  uint32_t key_p = 0;
  int64_t tie_p = V;
  if (topp_on) {
    u64 mine = 0;
    for_strided(x, V, [&](int64_t i, float v) {
      v = canonical(v);
      if (kept_k(i, order_key(v))) mine += weight(v);
    });
    const double target = double(p.top_p) * double(block_sum(mine, s));
    auto element = [&](int64_t i, float v, uint32_t& key, u64& w) {
      v = canonical(v);
      key = order_key(v);
      if (!kept_k(i, key)) return false;
      w = weight(v);
      return true;
    };
    u64 above = 0, at = 0;
    if (select_key(x, element, V, target, h, s, &key_p, &above, &at)) {
      // All candidates at key_p weigh the same w*: the fewest c of them with above + c·w* ≥ target.
      const u64 w_star = weight(key_value(key_p));
      u64 c = u64(ceil((target - double(above)) / double(w_star)));
      if (c < 1) c = 1;
      while (c > 1 && double(above + (c - 1) * w_star) >= target) --c;
      while (double(above + c * w_star) < target) ++c;
      if (at / w_star > c) {
        tie_p = first_exceeding(
            x,
            [&](int64_t i, float v) {
              const uint32_t key = order_key(canonical(v));
              return u64(key == key_p && kept_k(i, key));
            },
            V, c - 1, s);
      }
    } else {
      topp_on = false;  // the target was missed by rounding: keep all, as the host Sampler does
    }
  }

  // 5. min-p, then the draw in id order.
  const int32_t drawn = draw_in_id_order(
      x, V,
      [&](int64_t i, uint32_t key) {
        return kept_k(i, key) && (!topp_on || key > key_p || (key == key_p && i <= tie_p));
      },
      max, p, s);
  return drawn;
}

// Top-k (with or without top-p) through a compacted row: a threshold from a
// sample that should keep 3k + 256 candidates, and one pass that copies those
// at or above it in id order; the radix passes then run over the copy. How many
// were copied, or −1 where the sample was wrong (fewer than k kept, or more
// than the capacity): the passes over the row decide then.
__device__ int32_t top_k_compact(const float* x, int64_t V, const RowSampling& p, float max, float* vals,
                                 int32_t* ids, int32_t capacity, SampleShared& s) {
  if (!estimate_keep_from(x, V, p, p.top_k, max, capacity, s)) return -1;
  const float keep_from = s.keep_from;
  const int32_t n = compact_in_id_order(
      x, V, [](float) {}, [&](float v) { return v >= keep_from; }, vals, ids, capacity, s);
  return n >= p.top_k ? n : -1;  // n ≥ k: the k best, and their ties, are all ≥ keep_from
}

// PenaltyRowMode::kRebuild: the slot's counts and prompt flags from the request's
// full entry list (each token at most once). Ends in a barrier: the rows are
// visible to the whole block.
__device__ void rebuild_penalty_row(const PenaltyEntry* entries, int32_t count, int64_t V, int32_t* counts,
                                    uint32_t* prompt_bits) {
  for (int64_t i = threadIdx.x; i < V; i += kThreads) counts[i] = 0;
  for (int64_t i = threadIdx.x; i < (V + 31) / 32; i += kThreads) prompt_bits[i] = 0u;
  __syncthreads();
  for (int j = threadIdx.x; j < count; j += kThreads) {
    const PenaltyEntry e = entries[j];
    if (e.token < 0 || e.token >= V) continue;
    counts[e.token] = e.output_count;
    if (e.in_prompt) atomicOr(&prompt_bits[e.token >> 5], 1u << (e.token & 31));
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads, kBlocksPerSm) sample_rows_kernel(const float* __restrict__ logits, int64_t V,
                                                               const SampleRowArgs* __restrict__ rows,
                                                               const PenaltyEntry* __restrict__ entries,
                                                               const uint32_t* __restrict__ masks,
                                                               PenaltyRows penalty_rows, float* work,
                                                               SampledToken* __restrict__ out, int32_t capacity) {
  __shared__ SampleShared s;
  // capacity × kCompactEntryBytes (a compacted row), or at least the per-warp histograms of the full passes
  extern __shared__ __align__(16) unsigned char dynamic[];
  float* compact_vals = reinterpret_cast<float*>(dynamic);
  int32_t* compact_ids = reinterpret_cast<int32_t*>(compact_vals + capacity);
  const SampleRowArgs a = rows[blockIdx.x];
  const RowSampling& p = a.params;
  const float* raw = logits + int64_t(a.row) * V;
  const float* x = raw;

  // 0. The slot's penalty row (its own: a slot appears at most once per launch).
  const bool slot_row = a.penalty_mode != PenaltyRowMode::kNone;
  int32_t* counts = slot_row ? penalty_rows.counts + int64_t(a.penalty_slot) * V : nullptr;
  uint32_t* prompt_bits = slot_row ? penalty_rows.prompt_bits + int64_t(a.penalty_slot) * ((V + 31) / 32) : nullptr;
  if (a.penalty_mode == PenaltyRowMode::kRebuild) {
    rebuild_penalty_row(entries + a.penalty_begin, a.penalty_count, V, counts, prompt_bits);
  }

  // 1. The mask, penalties and biases, into this row's copy (each token appears
  // once in its entries). With a slot row the penalties are applied densely from
  // it and the entries add their biases alone.
  if (a.penalty_count > 0 || a.mask_begin >= 0 || slot_row) {
    float* w = work + int64_t(blockIdx.x) * V;
    const uint32_t* mask = a.mask_begin >= 0 ? masks + a.mask_begin : nullptr;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      float v = raw[i];
      if (mask && !((mask[i >> 5] >> (i & 31)) & 1u)) {
        v = -INFINITY;
      } else if (slot_row) {
        v = penalise(v, p, counts[i], (prompt_bits[i >> 5] >> (i & 31)) & 1u);
      }
      w[i] = v;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < a.penalty_count; j += kThreads) {
      const PenaltyEntry e = entries[a.penalty_begin + j];
      if (e.token < 0 || e.token >= V || w[e.token] == -INFINITY) continue;  // a masked token stays out
      w[e.token] = (slot_row ? w[e.token] : penalise(w[e.token], p, e.output_count, e.in_prompt != 0)) + e.bias;
    }
    __syncthreads();  // the block's global writes are visible to the block after the barrier
    x = w;
  }

  // 2. Top-p alone: the row's maximum, then the estimated compacted path, which
  // decides nearly every such row. The rest: argmax and, for the logprob, the raw
  // row's log-normaliser.
  const bool topk_wanted = p.top_k > 0 && p.top_k < V;
  const bool top_p_alone = p.temperature != 0.0f && p.top_p < 1.0f && !topk_wanted && capacity > 0;
  const bool top_k_compactable = p.temperature != 0.0f && topk_wanted && p.top_k <= capacity / 4;
  int32_t token = -1;
  bool decided = false;
  float best = -INFINITY;
  int32_t best_id = INT32_MAX;
  int32_t compacted = -1;  // top-k: the candidates copied into compact_vals/ids, or −1
  if (top_p_alone || top_k_compactable) {
    const float max = block_max(x, V, s);
    if (max > -INFINITY && max < INFINITY) {
      if (top_p_alone) {
        decided = top_p_estimated(x, V, p, max, compact_vals, compact_ids, capacity, s, &token);
      } else {
        compacted = top_k_compact(x, V, p, max, compact_vals, compact_ids, capacity, s);
        if (compacted >= 0) best = max;
      }
    }
  }
  if (!decided && compacted < 0) {
    for_strided(x, V, [&](int64_t i, float v) { take_better(best, best_id, canonical(v), int32_t(i)); });
    block_argmax(best, best_id, s);
    token = best_id;
  }
  float log_z = 0.0f;
  if (a.want_logprob) {
    float lse_m = -INFINITY, lse_s = 0.0f;
    for_strided(raw, V, [&](int64_t, float r) {
      if (r > -INFINITY) lse_merge(lse_m, lse_s, r, 1.0f);  // −inf adds nothing; NaN is ignored
    });
    log_z = block_log_sum_exp(lse_m, lse_s, s);
  }

  if (decided) {
    // done: an estimated compacted row decided
  } else if (top_p_alone && best != -INFINITY && best != INFINITY &&
             top_p_compacted(x, V, p, best, dynamic, capacity, s, &token)) {
    // done: the exact compacted row decided
  } else if (p.temperature != 0.0f && best != -INFINITY) {
    // One call site for the row and the compacted top-k row (two inlined copies
    // of the passes spilled registers).
    const bool c = compacted >= 0;
    const int32_t drawn = sample_by_passes(c ? compact_vals : x, c ? compacted : V, p, best,
                                           c ? single_histogram(s) : warp_histograms(dynamic), s);
    if (drawn >= 0) token = c ? compact_ids[drawn] : drawn;  // always: the best candidate keeps weight 2³⁶ > 0
  }
  if (threadIdx.x == 0) {
    out[blockIdx.x].token = token;
    out[blockIdx.x].logprob = a.want_logprob ? raw[token] - log_z : 0.0f;
    // Every read of the counts (step 1) is behind a barrier: the drawn token joins them.
    if (slot_row && token >= 0 && token < V) ++counts[token];
  }
}

}  // namespace

cudaError_t sample_rows(const float* logits, int64_t vocab, const SampleRowArgs* rows, int64_t num_rows,
                        const PenaltyEntry* entries, const uint32_t* masks, PenaltyRows penalty_rows, float* work,
                        SampledToken* out, cudaStream_t stream) {
  if (vocab <= 0 || vocab > (int64_t{1} << 17) || num_rows < 0 || !logits || !rows || !out) {
    return cudaErrorInvalidValue;  // the fixed-point sums are exact up to 2¹⁷ candidates
  }
  if (num_rows == 0) return cudaSuccess;
  // The compacted candidates take a block's share of the SM's shared memory
  // (kBlocksPerSm share an SM; 228 KB per SM on Hopper, 100 KB on sm_86/89) beyond
  // the static part, up to kCompactCapacity; too little and top-p takes the full
  // passes.
  int device = 0, optin = 0, per_sm = 0, reserved = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device);
  if (e != cudaSuccess) return e;
  const int64_t share = std::min<int64_t>(optin, per_sm / kBlocksPerSm - reserved);
  const int64_t room = (share - int64_t(sizeof(SampleShared))) / int64_t(kCompactEntryBytes);
  int32_t capacity = int32_t(std::min<int64_t>(kCompactCapacity, room)) / 4 * 4;  // float4-aligned ids after vals
  if (capacity < kMinCompactCapacity) capacity = 0;
  const size_t bytes = std::max(size_t(capacity) * kCompactEntryBytes, kWarpHistogramBytes);
  if (bytes > 48 * 1024) {  // past the default: the block must opt in
    e = reserve_dynamic_shared_memory<sample_rows_kernel>(int(bytes));
    if (e != cudaSuccess) return e;
  }
  sample_rows_kernel<<<unsigned(num_rows), kThreads, bytes, stream>>>(logits, vocab, rows, entries, masks,
                                                                      penalty_rows, work, out, capacity);
  return cudaGetLastError();
}

}  // namespace tnl::cuda
