// Device-side sampling of logits rows (rules: kernels/sampling_row.h; reference:
// kernels/cpu/sampling_reference.cpp). One CTA of 512 threads per row; the row
// (V fp32, ≤ 512 KB) is re-read from L2 by each pass, never sorted:
//   1. the allowed-token mask, penalties and biases into a private copy of the row
//      (only rows that have any);
//   2. argmax (ties to the lower id) and, for the logprob, log Σ exp of the raw row;
//   3. top-k: radix select of the k-th best key, 8 bits a level, counting;
//   4. top-p: radix select again, weighing each candidate by its fixed-point weight;
//   5. the draw: a block scan in id order over per-thread id ranges.
// Top-p without top-k first compacts the row (see top_p_compacted): one pass sums
// the weights into 256 bins of log-weight, a second copies the best bins up to
// the one where top_p is reached, in id order, into shared memory, and steps 4–5
// run there. Rows whose top-p set is too large for it take the passes above.
// Ties at a selected key are resolved by id (the lowest ids stay), found by the
// same id-order scan. Fixed-point integer sums make every result independent of
// the order of the additions (deterministic runs, exact agreement with the CPU
// reference but for expf's last bit).
// Shared memory: ≈ 36 KB static (per-warp 256-bin histograms, two u32 halves)
// and up to kCompactCapacity × 8 bytes dynamic (the compacted candidates; fewer
// where the device's shared memory is smaller than a Hopper's). Two CTAs share an
// SM (registers capped at 64 a thread, and each takes at most half the SM's
// shared memory): a batch of 256 rows then runs in one wave on an H200's 132 SMs
// with 32 warps an SM, where one CTA an SM (124 registers) left the SM at 16
// warps stalled on shared-memory atomics and barriers (IPC 1.85).
#include <algorithm>

#include "kernels/cuda/device_math.cuh"
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
constexpr int kCompactCapacity = 9216;
constexpr int kBlocksPerSm = 2;
constexpr int kMinCompactCapacity = 1024;  // below this the compacted path is not worth a launch option
constexpr size_t kCompactEntryBytes = sizeof(float) + sizeof(int32_t);
constexpr int kMaxSlices = 8;  // slices of one compaction batch (kLoadBatch or kLoadBatch4)

struct SampleShared {
  uint32_t hist_hi[kWarps][kBins];  // a warp's atomics touch only its own copy
  uint32_t hist_lo[kWarps][kBins];
  uint32_t slice_totals[2][kMaxSlices][kWarps];  // compaction: kept per warp and slice, double-buffered
  u64 bins[kBins];
  u64 warp_u64[kWarps];
  float warp_f[kWarps], warp_f2[kWarps];
  int32_t warp_i[kWarps];
  uint32_t sel_bin;
  u64 sel_above;
  int32_t sel_found;
  int32_t found_id;
  float keep_from;  // the compacted top-p row: the lowest value kept
};

// The per-warp 256-bin histograms of exact fixed-point weights (select_key and
// the compacted top-p share them): cleared, added to, and summed into s.bins.
__device__ void clear_histograms(SampleShared& s) {
  for (int b = threadIdx.x; b < kWarps * kBins; b += kThreads) {
    (&s.hist_hi[0][0])[b] = 0;
    (&s.hist_lo[0][0])[b] = 0;
  }
}
__device__ __forceinline__ void histogram_add(SampleShared& s, int warp, uint32_t bin, u64 w) {
  // Native 32-bit shared atomics. (Combining equal bins across a warp first with
  // __match_any_sync + __reduce_add_sync compiled to a loop over the distinct
  // bins and ran ten times slower.)
  atomicAdd(&s.hist_lo[warp][bin], uint32_t(w & kLowMask));
  if (w >> kLowBits) atomicAdd(&s.hist_hi[warp][bin], uint32_t(w >> kLowBits));
}
// After a barrier that follows the last histogram_add; s.bins is ready after the next one.
__device__ void sum_histograms(SampleShared& s) {
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    u64 t = 0;
    for (int w = 0; w < kWarps; ++w) t += (u64(s.hist_hi[w][b]) << kLowBits) + s.hist_lo[w][b];
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

// f(i, x[i]) for i in [lo, hi) in order; stops after the first call that returns true.
template <typename F>
__device__ __forceinline__ void for_range(const float* x, int64_t lo, int64_t hi, F f) {
  for (int64_t base = lo; base < hi; base += kLoadBatch) {
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
// exceeds `threshold`; −1 when the total does not. Each thread owns a contiguous id range.
template <typename WeightOf>
__device__ int32_t first_exceeding(const float* x, WeightOf weight_of, int64_t V, u64 threshold, SampleShared& s) {
  const int64_t chunk = (V + kThreads - 1) / kThreads;
  const int64_t lo = min(V, int64_t(threadIdx.x) * chunk), hi = min(V, lo + chunk);
  u64 mine = 0;
  for_range(x, lo, hi, [&](int64_t i, float v) {
    mine += weight_of(i, v);
    return false;
  });
  const u64 before = block_exclusive_scan(mine, s);
  if (threadIdx.x == 0) s.found_id = -1;
  __syncthreads();
  if (before <= threshold && threshold < before + mine) {  // exactly one thread
    u64 running = before;
    for_range(x, lo, hi, [&](int64_t i, float v) {
      running += weight_of(i, v);
      if (running <= threshold) return false;
      s.found_id = int32_t(i);
      return true;
    });
  }
  __syncthreads();
  return s.found_id;
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
__device__ bool select_key(const float* x, Element element, int64_t V, double target, SampleShared& s, uint32_t* key_out,
                           u64* above_out, u64* at_out, u64 above_start = 0) {
  const int warp = threadIdx.x >> 5;
  uint32_t prefix = 0, mask = 0;
  u64 above = above_start, at = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    clear_histograms(s);
    __syncthreads();
    for_strided(x, V, [&](int64_t i, float v) {
      uint32_t key;
      u64 w = 0;
      if (!element(i, v, key, w) || (key & mask) != prefix) return;
      histogram_add(s, warp, (key >> shift) & 0xFF, w);
    });
    __syncthreads();
    sum_histograms(s);
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


// min-p, then the draw: the first id (in id order) among those kept(i, key)
// passes at which the running fixed-point weight exceeds uniform · Σ.
template <typename Kept>
__device__ int32_t draw_in_id_order(const float* x, int64_t n, Kept kept, float max, const RowSampling& p,
                                    SampleShared& s) {
  auto kept_weight = [&](int64_t i, float v) -> u64 {
    v = canonical(v);
    if (!kept(i, order_key(v))) return 0;
    const float w = expf((v - max) * p.inv_temperature);
    if (p.min_p > 0.0f && w < p.min_p) return 0;
    return u64(w * kFixedOne);
  };
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

// Copies (x[i], i) for every i with keep(x[i]) into vals/ids, in id order;
// returns how many, or −1 when more than `capacity` (nothing usable then). Each
// batch is cut into slices; in a slice thread t holds PerThread consecutive ids
// (slice start + t·PerThread …), so a warp scan of the threads' counts and one
// barrier per batch place every kept element. Nsight Compute's source counters
// (H200, 256 rows × 64k) had this pass at a third of the top-p kernel's issued
// instructions with 4 ids a thread, a log-weight bin per element and a
// capacity check per store: now keep is one compare, 8 ids a thread share a
// scan, a slice that overflows skips its stores at once, and a warp that keeps
// nothing in a slice issues no stores.
template <int Slices, int PerThread, typename Load, typename Keep>
__device__ int32_t compact_batches(int64_t V, Load load, Keep keep, float* vals, int32_t* ids, int32_t capacity,
                                   SampleShared& s) {
  static_assert(Slices <= kMaxSlices && PerThread <= 32, "slice_totals and the kept bit masks");
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
      const int64_t first = batch + u * kSliceIds + int64_t(threadIdx.x) * PerThread;
#pragma unroll
      for (int e = 0; e < PerThread; ++e) kept[u] |= uint32_t(first + e < V && keep(v[u][e])) << e;
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
      if (base + total <= capacity && __any_sync(kFull, kept[u] != 0)) {
        int32_t at = base + before + int32_t(inclusive[u] - count[u]);
        const int64_t first = batch + u * kSliceIds + int64_t(threadIdx.x) * PerThread;
#pragma unroll
        for (int e = 0; e < PerThread; ++e) {
          if ((kept[u] >> e) & 1u) {  // predicated stores, no branch per element
            vals[at] = v[u][e];
            ids[at] = int32_t(first + e);
            ++at;
          }
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

constexpr int kCompactIds = 8, kCompactSlices = 4;
// kCompactIds consecutive ids a thread (float4 loads) when the row allows 16-byte
// loads, else 1 id a thread; either way 8 loads a thread in flight (4 slices × 2
// float4, or kLoadBatch slices × 1 float).
template <typename Keep>
__device__ int32_t compact_in_id_order(const float* x, int64_t V, Keep keep, float* vals, int32_t* ids,
                                       int32_t capacity, SampleShared& s) {
  if (V % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    auto load_vector = [&](int64_t first, float (&v)[kCompactIds]) {
#pragma unroll
      for (int q = 0; q < kCompactIds / 4; ++q) {
        const int64_t at = first + 4 * q;
        const float4 f = at < V ? x4[at / 4] : make_float4(0.f, 0.f, 0.f, 0.f);
        v[4 * q] = f.x;
        v[4 * q + 1] = f.y;
        v[4 * q + 2] = f.z;
        v[4 * q + 3] = f.w;
      }
    };
    return compact_batches<kCompactSlices, kCompactIds>(V, load_vector, keep, vals, ids, capacity, s);
  }
  auto load1 = [&](int64_t first, float (&v)[1]) { v[0] = first < V ? x[first] : 0.0f; };
  return compact_batches<kLoadBatch, 1>(V, load1, keep, vals, ids, capacity, s);
}

// The smallest value whose log-weight bin is ≤ b (b < kBins − 1): the bin is
// monotone in the value, so "bin ≤ b" is "value ≥ this". A binary search over
// order keys between −inf (bin kBins − 1) and the row maximum (bin 0), with the
// same bin function as every other pass.
template <typename BinOf>
__device__ float lowest_value_in_bins(int b, float max, BinOf bin_of) {
  uint32_t lo = order_key(-INFINITY), hi = order_key(max);  // bin_of(lo) > b ≥ bin_of(hi)
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (bin_of(key_value(mid)) <= b) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return key_value(hi);
}

// Top-p (top-k off) through a compacted row; the same token as the full passes
// (top-p select, ties, min-p, the draw in id order, with the same fixed-point
// sums). False, with nothing decided, when the top-p set has more than
// `capacity` candidates.
__device__ bool top_p_compacted(const float* x, int64_t V, const RowSampling& p, float max, float* vals, int32_t* ids,
                                int32_t capacity, SampleShared& s, int32_t* token) {
  const int warp = threadIdx.x >> 5;
  const float inv_t = p.inv_temperature;
  auto scaled = [&](float v) { return (canonical(v) - max) * inv_t; };
  auto weight = [&](float v) { return fixed_weight(v, max, inv_t); };

  // Pass 1: Σw and the weight of each log-weight bin (bin 255 weighs nothing).
  clear_histograms(s);
  __syncthreads();
  u64 mine = 0;
  for_strided(x, V, [&](int64_t, float v) {
    const int bin = log_weight_bin(scaled(v));
    if (bin == kBins - 1) return;
    const u64 w = weight(canonical(v));
    mine += w;
    histogram_add(s, warp, uint32_t(bin), w);
  });
  const double target = double(p.top_p) * double(block_sum(mine, s));  // block_sum's barriers cover the histogram
  sum_histograms(s);
  __syncthreads();
  // The first bin b* (best first) where the running weight reaches target; above: the weight of the bins before it.
  if (warp == 0) find_crossing_bin</*kFromTop=*/false>(s, 0, target);  // bin 0 is the best here
  __syncthreads();
  if (!s.sel_found) return false;  // cannot happen (Σw ≥ target), but the full passes handle it as the host does
  const int b_star = int(s.sel_bin);
  const u64 above_bins = s.sel_above;
  if (b_star >= kBins - 1) return false;  // cannot happen: bin kBins − 1 weighs nothing
  if (threadIdx.x == 0) {
    s.keep_from = lowest_value_in_bins(b_star, max, [&](float v) { return log_weight_bin(scaled(v)); });
  }
  __syncthreads();

  // Pass 2: the candidates of bins ≤ b*, in id order. (v ≥ keep_from is false for
  // NaN, whose bin is kBins − 1, and treats −0 as +0, as canonical() does.)
  const float keep_from = s.keep_from;
  const int32_t n = compact_in_id_order(x, V, [&](float v) { return v >= keep_from; }, vals, ids, capacity, s);
  if (n < 0) return false;

  // The top-p key among bin b*'s candidates, the bins above counted in.
  uint32_t key_p = 0;
  u64 above = 0, at = 0;
  auto in_last_bin = [&](int64_t, float v, uint32_t& key, u64& w) {
    if (log_weight_bin(scaled(v)) != b_star) return false;
    const float c = canonical(v);
    key = order_key(c);
    w = weight(c);
    return true;
  };
  if (!select_key(vals, in_last_bin, n, target, s, &key_p, &above, &at, above_bins)) return false;
  const u64 w_star = weight(key_value(key_p));
  u64 c = u64(ceil((target - double(above)) / double(w_star)));
  if (c < 1) c = 1;
  while (c > 1 && double(above + (c - 1) * w_star) >= target) --c;
  while (double(above + c * w_star) < target) ++c;
  int64_t tie_p = n;  // a local index: the compacted row is in id order
  if (at / w_star > c) {
    tie_p = first_exceeding(vals, [&](int64_t, float v) { return u64(order_key(canonical(v)) == key_p); }, n, c - 1, s);
  }

  // min-p and the draw, in id order over the compacted row.
  const int32_t drawn = draw_in_id_order(
      vals, n, [&](int64_t j, uint32_t key) { return key > key_p || (key == key_p && j <= tie_p); }, max, p, s);
  if (drawn >= 0) *token = ids[drawn];  // always: the best candidate keeps weight 2³⁶ > 0
  return true;
}

__global__ void __launch_bounds__(kThreads, kBlocksPerSm) sample_rows_kernel(const float* __restrict__ logits, int64_t V,
                                                               const SampleRowArgs* __restrict__ rows,
                                                               const PenaltyEntry* __restrict__ entries,
                                                               const uint32_t* __restrict__ masks, float* work,
                                                               SampledToken* __restrict__ out, int32_t capacity) {
  __shared__ SampleShared s;
  extern __shared__ __align__(16) unsigned char compact_storage[];  // capacity × kCompactEntryBytes
  float* compact_vals = reinterpret_cast<float*>(compact_storage);
  int32_t* compact_ids = reinterpret_cast<int32_t*>(compact_vals + capacity);
  const SampleRowArgs a = rows[blockIdx.x];
  const RowSampling& p = a.params;
  const float* raw = logits + int64_t(a.row) * V;
  const float* x = raw;

  // 1. The mask, penalties and biases, into this row's copy (each token appears
  // once in its entries).
  if (a.penalty_count > 0 || a.mask_begin >= 0) {
    float* w = work + int64_t(blockIdx.x) * V;
    const uint32_t* mask = a.mask_begin >= 0 ? masks + a.mask_begin : nullptr;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      w[i] = mask && !((mask[i >> 5] >> (i & 31)) & 1u) ? -INFINITY : raw[i];
    }
    __syncthreads();
    for (int j = threadIdx.x; j < a.penalty_count; j += kThreads) {
      const PenaltyEntry e = entries[a.penalty_begin + j];
      if (e.token < 0 || e.token >= V) continue;
      float v = w[e.token];
      if (p.repetition_penalty != 1.0f && (e.in_prompt || e.output_count > 0)) {
        v = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
      }
      if (e.output_count > 0) v -= fmaf(float(e.output_count), p.frequency_penalty, p.presence_penalty);
      if (w[e.token] != -INFINITY) w[e.token] = v + e.bias;  // a masked token stays out
    }
    __syncthreads();  // the block's global writes are visible to the block after the barrier
    x = w;
  }

  // 2. Argmax and the raw row's log-normaliser.
  float best = -INFINITY;
  int32_t best_id = INT32_MAX;
  for_strided(x, V, [&](int64_t i, float v) { take_better(best, best_id, canonical(v), int32_t(i)); });
  block_argmax(best, best_id, s);
  float log_z = 0.0f;
  if (a.want_logprob) {
    float lse_m = -INFINITY, lse_s = 0.0f;
    for_strided(raw, V, [&](int64_t, float r) {
      if (r > -INFINITY) lse_merge(lse_m, lse_s, r, 1.0f);  // −inf adds nothing; NaN is ignored
    });
    log_z = block_log_sum_exp(lse_m, lse_s, s);
  }

  int32_t token = best_id;
  const bool topk_wanted = p.top_k > 0 && p.top_k < V;
  if (p.temperature != 0.0f && best != -INFINITY && best != INFINITY && p.top_p < 1.0f && !topk_wanted &&
      capacity > 0 && top_p_compacted(x, V, p, best, compact_vals, compact_ids, capacity, s, &token)) {
    // done: the compacted row decided
  } else if (p.temperature != 0.0f && best != -INFINITY) {
    const float max = best, inv_t = p.inv_temperature;
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
      }, V, double(p.top_k), s, &key_k, &above, &at);
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
      if (select_key(x, element, V, target, s, &key_p, &above, &at)) {
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
    if (drawn >= 0) token = drawn;  // always: the best candidate keeps weight 2³⁶ > 0
  }
  if (threadIdx.x == 0) {
    out[blockIdx.x].token = token;
    out[blockIdx.x].logprob = a.want_logprob ? raw[token] - log_z : 0.0f;
  }
}

}  // namespace

cudaError_t sample_rows(const float* logits, int64_t vocab, const SampleRowArgs* rows, int64_t num_rows,
                        const PenaltyEntry* entries, const uint32_t* masks, float* work, SampledToken* out,
                        cudaStream_t stream) {
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
  const size_t bytes = size_t(capacity) * kCompactEntryBytes;
  if (bytes > 48 * 1024) {  // past the default: the block must opt in
    e = cudaFuncSetAttribute(sample_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    if (e != cudaSuccess) return e;
  }
  sample_rows_kernel<<<unsigned(num_rows), kThreads, bytes, stream>>>(logits, vocab, rows, entries, masks, work, out,
                                                                      capacity);
  return cudaGetLastError();
}

}  // namespace tnl::cuda
