// Small-batch linear layer (small_batch_linear.h): the norm/gate prologue, the
// weight stream through the tensor cores, and the bias/GLU/residual epilogue in
// one launch. At n ≤ 16 rows the product is bound by the weight bytes, so the
// design is about keeping enough 16-byte weight loads in flight on every SM.
//
// Tiles. The weight rows are cut into tiles of 8 (kGluProductT: rows j…j+3 of W1
// interleaved with rows j…j+3 of W2, so a lane ends up holding both factors of its
// product). A warp computes a tile over a slice of the input columns, 32 columns
// (a "step") at a time, with two mma.m16n8k16: A = the n ≤ 16 input rows (rows
// n…15 zero), B = the 8 weight rows. The mma computes all 16 A rows whatever n is,
// so 9–16 rows cost the weight stream of 1–8 (the bound) and one more 16-byte
// shared-memory load a step. Lane (g = lane/4, t = lane%4) loads columns
// [8t, 8t+8) of tile row g with one 16-byte load; with the columns of a step
// permuted (k16 step 0 takes columns 8t…8t+3, step 1 takes 8t+4…8t+7) that load
// is exactly its B fragment for both k16 steps, and its A fragment is the same 8
// columns of input row g (and of row g + 8: A's other half): one 16-byte
// shared-memory load each. A dot product does not care about the order of its
// terms, so no shuffles are needed. C then holds, in lane (g, t), input rows g and
// g + 8 against tile rows 2t and 2t+1.
//
// Grid. One CTA of W = 16 warps per SM (two of W = 8 at n ≤ 4: warps_for_rows),
// each CTA a contiguous, balanced range of m tiles. m ≤ W: every tile is split
// along the input over W/m warps, whose partial sums meet in shared memory; m > W:
// one warp per tile, W tiles per pass. Few fat CTAs build the input rows once per
// CTA (at n = 8, in = 1024: 32 KB of fp32 rows read per CTA). Each warp keeps two rounds of kUnroll 16-byte loads per
// lane in flight (ping-pong buffers); the first two rounds are issued before the
// prologue so that the weight stream and the norm overlap, and, as the launch is a
// dependent one (dependent_launch.cuh), before the kernel ahead of it has finished.
// The epilogue's operands (bias, old residual) are read right after that wait.
//
// Resources (nvcc 13.0, sm_90a, -Xptxas -v): 128 registers, the cap that
// __launch_bounds__(32·W, 16/W) allows (2 × 8 × 16 B of weights per lane in flight),
// no spills, for both T, both weight paths and both W; no static shared memory.
// Dynamic shared memory (W = 16): 4.1 KB (n ≤ 8) or 8.1 KB (n > 8) + n rows of
// (round_up(in, 64) + 32) T, i.e. 21,056 B at n = 8, in = 1024, 49,728 B at n = 8,
// in = 2816 and 99,392 B at n = 16, in = 2816 (bf16; over 48 KiB takes the opt-in).
//
// Measured on an H100 SXM (CUDA graph of launches, weights beyond L2, n = 1, bf16):
// [4096 × 1024] norm → T 7.3 µs, [1024 × 1024] norm·gate → += 4.9 µs,
// [5632 × 1024] norm → GLU 8.8 µs, [1024 × 2816] → += 5.7 µs, [11008 × 4096] 37.7 µs
// (2.4 TB/s). A bare read of the same 8 MB with this grid takes 5.8 µs and cuBLAS
// 5.3 µs for the GEMM alone: about 0.9 µs here is the norm prologue, 0.6 µs the mma.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_attribute.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/small_batch_linear.h"

namespace tnl::cuda {
namespace {

// Warps per CTA: 16 (one CTA an SM) from 5 input rows up; 8 (two CTAs an SM) at
// 1–4 rows, where a launch's fixed costs dominate and half-SM CTAs let the next
// dependent launch move onto an SM while the last CTA there still drains
// (measured on the H200: batch-1 decode step 0.66 → 0.59 ms; at 8 rows 16 warps
// stay 2% faster).
constexpr int kMaxWarps = 16;
constexpr int64_t kFewRows = 4;
int warps_for_rows(int64_t n) { return n <= kFewRows ? 8 : 16; }
constexpr int kStepCols = 32;  // input columns per step (two k16 mma steps)
constexpr int kTileRows = 8;   // weight rows per tile (the n8 of the mma)
constexpr int kUnroll = 8;     // steps per round of loads; two rounds in flight
constexpr float kEps = 1e-6f;

// Launch shape, chosen on the host.
struct Plan {
  int64_t tiles = 0;           // tiles of the weight
  int32_t steps = 0;           // ceil(in / 32)
  int32_t row_stride = 0;      // elements between input rows in shared memory
  bool vector_inputs = false;  // in % 8 == 0, input (and gate) rows 16-byte aligned
};

// Shared memory: norm partials [≤ 16 warps] f32 (padded to 64 B), split partials
// [warps][32 lanes] float2 (row g), or float4 (rows g and g + 8) when A's rows 8–15
// are live (n > 8), then the input rows [n][row_stride] T.
constexpr int64_t kNormPartialBytes = 64;
constexpr bool uses_high_rows(int64_t n) { return n > 8; }
constexpr int64_t split_partial_bytes(int warps, bool high_rows) {
  return int64_t(warps) * 32 * (high_rows ? sizeof(float4) : sizeof(float2));
}

// ≡ 32 (mod 64) elements: the 16-byte A-fragment loads of rows g and g+1 fall in
// different banks.
int64_t input_row_stride(int64_t in) { return (in + 63) / 64 * 64 + 32; }

int64_t shared_bytes(int64_t n, int64_t in, int64_t element_bytes, int warps) {
  return kNormPartialBytes + split_partial_bytes(warps, uses_high_rows(n)) + n * input_row_stride(in) * element_bytes;
}

// The weight stream is read once: keep it out of L1 so the input rows stay there.
__device__ __forceinline__ uint4 load_streaming(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// 8 weights from column `col` of `row`; zeros past `in` (the padded columns must
// add nothing, and a garbage NaN times a zero input would not) or for a missing row.
template <typename T, bool kVector>
__device__ __forceinline__ uint4 load_weights(const T* row, int64_t col, int64_t in) {
  if (!row || col >= in) return make_uint4(0, 0, 0, 0);
  if constexpr (kVector) {
    return load_streaming(row + col);
  } else {
    detail::Pack8<T> p;
#pragma unroll
    for (int j = 0; j < 8; ++j) p.v[j] = col + j < in ? row[col + j] : detail::from_f32<T>(0.0f);
    return *reinterpret_cast<const uint4*>(&p);
  }
}

// V consecutive values as fp32 (V = 8: 16-byte loads, 16-byte aligned).
template <int V, typename E>
__device__ __forceinline__ void load_f32(const E* p, float (&x)[V]) {
  if constexpr (V == 8 && std::is_same_v<E, float>) {
    const float4 lo = *reinterpret_cast<const float4*>(p), hi = *reinterpret_cast<const float4*>(p + 4);
    x[0] = lo.x, x[1] = lo.y, x[2] = lo.z, x[3] = lo.w, x[4] = hi.x, x[5] = hi.y, x[6] = hi.z, x[7] = hi.w;
  } else if constexpr (V == 8) {
    const auto pack = *reinterpret_cast<const detail::Pack8<E>*>(p);
#pragma unroll
    for (int j = 0; j < 8; ++j) x[j] = detail::to_f32(pack.v[j]);
  } else {
    x[0] = detail::to_f32(*p);
  }
}

// Builds the n input rows a[r, :] as T in shared memory, zero-padded to whole
// steps: 1/sqrt(mean(x²) + 1e-6) in fp32 as in srms_norm.cu; the gate multiplies
// after the norm, (x · inv) · u, as in norm_gate. The rows are built side by side,
// kWarps/n warps each (a power of two), so that all their loads are in flight
// together. V: elements per load (8 when every row is 16-byte aligned, else 1).
template <int kWarps, int V, typename T>
__device__ void build_input_rows(const SmallBatchLinearArgs<T>& a, const Plan& plan, float* norm_partial,
                                 T* rows) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int warps_per_row = kWarps;
  while (warps_per_row * a.n > kWarps) warps_per_row /= 2;
  const int r = warp / warps_per_row;  // r ≥ n: this warp only joins the barrier
  const int first = (warp % warps_per_row * 32 + lane) * V, stride = warps_per_row * 32 * V;
  const int64_t padded = int64_t(plan.steps) * kStepCols;
  const auto load_row = [&](int64_t k, float (&x)[V]) {
    if (a.input == LinearInput::kNormF32) {
      load_f32<V>(a.x_f32 + r * a.in + k, x);
    } else {
      load_f32<V>(a.x + r * a.in + k, x);
    }
  };

  float inv_rms = 1.0f;
  if (a.input != LinearInput::kPlainT) {
    float sum_sq = 0.0f;
    if (r < a.n) {
#pragma unroll 4
      for (int64_t k = first; k < a.in; k += stride) {
        float x[V];
        load_row(k, x);
#pragma unroll
        for (int j = 0; j < V; ++j) sum_sq += x[j] * x[j];
      }
    }
    sum_sq = detail::warp_sum(sum_sq);
    if (lane == 0) norm_partial[warp] = sum_sq;
    __syncthreads();
    if (r < a.n) {
      sum_sq = 0.0f;
      for (int w = 0; w < warps_per_row; ++w) sum_sq += norm_partial[r * warps_per_row + w];
      inv_rms = rsqrtf(sum_sq / float(a.in) + kEps);
    }
  }
  if (r >= a.n) return;
#pragma unroll 4
  for (int64_t k = first; k < padded; k += stride) {
    float x[V] = {};
    if (k < a.in) {
      load_row(k, x);
      float u[V];
      if (a.input == LinearInput::kNormGateT) load_f32<V>(a.gate + r * a.gate_stride + k, u);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        x[j] *= inv_rms;
        if (a.input == LinearInput::kNormGateT) x[j] *= u[j];
      }
    }
    if constexpr (V == 8) {
      detail::Pack8<T> p;
#pragma unroll
      for (int j = 0; j < 8; ++j) p.v[j] = detail::from_f32<T>(x[j]);
      *reinterpret_cast<detail::Pack8<T>*>(rows + r * plan.row_stride + k) = p;
    } else {
      rows[r * plan.row_stride + k] = detail::from_f32<T>(x[0]);
    }
  }
}

// The epilogue of lane t for output row r: the two tile rows 2t, 2t+1 of `tile`.
// Its operands (bias, and the old residual for kAddF32) are read before the
// weight stream starts, so that the epilogue waits on no memory at the end.
struct EpilogueOperands {
  float2 addend = make_float2(0.0f, 0.0f);  // added to the two sums (GLU: b1, b2)
};

template <typename T>
__device__ __forceinline__ EpilogueOperands load_epilogue(const SmallBatchLinearArgs<T>& a, int64_t tile, int r,
                                                          int t) {
  EpilogueOperands e;
  const auto bias = [&](int64_t j) { return a.bias ? detail::to_f32(a.bias[j]) : 0.0f; };
  if (a.output == LinearOutput::kGluProductT) {
    // Tile rows 2t and 2t+1 are row j of W1 and row j of W2.
    const int64_t j = tile * (kTileRows / 2) + t;
    if (j < a.out) e.addend = make_float2(bias(j), bias(a.out + j));
    return e;
  }
  const int64_t col = tile * kTileRows + 2 * t;
  const auto old = [&](int64_t c) { return a.output == LinearOutput::kAddF32 ? a.residual[r * a.out + c] : 0.0f; };
  if (col < a.out) e.addend.x = bias(col) + old(col);
  if (col + 1 < a.out) e.addend.y = bias(col + 1) + old(col + 1);
  return e;
}

template <typename T>
__device__ __forceinline__ void write_outputs(const SmallBatchLinearArgs<T>& a, int64_t tile, int r, int t,
                                              float2 h, const EpilogueOperands& e) {
  if (a.output == LinearOutput::kGluProductT) {
    const int64_t j = tile * (kTileRows / 2) + t;
    if (j < a.out) a.y[r * a.out + j] = detail::from_f32<T>((h.x + e.addend.x) * (h.y + e.addend.y));
    return;
  }
  const int64_t col = tile * kTileRows + 2 * t;
  const float v[2] = {h.x + e.addend.x, h.y + e.addend.y};
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    if (col + k >= a.out) break;
    if (a.output == LinearOutput::kAddF32) {
      a.residual[r * a.out + col + k] = v[k];
    } else {
      a.y[r * a.out + col + k] = detail::from_f32<T>(v[k]);
    }
  }
}

// kVectorWeights: 16-byte weight loads (in % 8 == 0, weight 16-byte aligned);
// else element by element, a separate instantiation so the fast one stays lean.
// kHighRows: n > 8, A's rows 8–15 are loaded and written (a separate instantiation:
// at n ≤ 8 the extra shared-memory load and epilogue made batch-1 and batch-8
// decode steps 3% slower on the H200).
template <typename T, bool kVectorWeights, int kWarps, bool kHighRows>
__global__ void __launch_bounds__(kWarps * 32, kMaxWarps / kWarps)
    small_batch_linear_kernel(const SmallBatchLinearArgs<T> a, const Plan plan) {
  extern __shared__ uint4 shared[];
  float* norm_partial = reinterpret_cast<float*>(shared);
  char* split_partial = reinterpret_cast<char*>(shared) + kNormPartialBytes;  // float2 or float4 a lane
  T* input_rows = reinterpret_cast<T*>(reinterpret_cast<char*>(shared) + kNormPartialBytes +
                                      split_partial_bytes(kWarps, kHighRows));

  detail::allow_dependents();  // the next launch may take SMs as this one's CTAs leave
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const bool glu = a.output == LinearOutput::kGluProductT;

  // This CTA's tiles [tile_begin, tile_end), and how its warps share them.
  const int64_t tile_begin = plan.tiles * blockIdx.x / gridDim.x;
  const int64_t tile_end = plan.tiles * (blockIdx.x + 1) / gridDim.x;
  const int tiles_per_pass = int(std::min<int64_t>(tile_end - tile_begin, kWarps));
  const int splits = std::min(kWarps / tiles_per_pass, int(plan.steps));  // warps per tile
  const int tile_in_pass = warp / splits, split = warp % splits;
  const bool active = tile_in_pass < tiles_per_pass;  // kWarps − tiles_per_pass · splits warps idle
  // This warp's steps: split, split + splits, … (neighbouring warps read neighbouring columns).
  const int my_steps = active ? (plan.steps - split + splits - 1) / splits : 0;
  const int rounds = (my_steps + kUnroll - 1) / kUnroll;
  const T* my_input = input_rows + g * plan.row_stride + 8 * t;  // A-fragment row g (used when g < n)
  const T* my_input_hi = my_input + 8 * plan.row_stride;           // and row g + 8 (when g + 8 < n)
  const bool row_lo = g < a.n, row_hi = kHighRows && g + 8 < a.n;

  bool first_pass = true;
  for (int64_t pass_tile = tile_begin; pass_tile < tile_end; pass_tile += tiles_per_pass) {
    const int64_t tile = pass_tile + tile_in_pass;
    const bool has_tile = active && tile < tile_end;
    const T* weight_row = nullptr;  // tile row g of this lane; null past the end of W
    if (has_tile) {
      const int64_t j = glu ? tile * (kTileRows / 2) + g / 2 : tile * kTileRows + g;
      if (j < a.out) weight_row = a.weight + (glu && (g & 1) ? a.out + j : j) * a.in;
    }
    const auto load_round = [&](uint4 (&w)[kUnroll], int round) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = round * kUnroll + u;
        const int64_t col = int64_t(split + i * splits) * kStepCols + 8 * t;
        w[u] = i < my_steps ? load_weights<T, kVectorWeights>(weight_row, col, a.in) : make_uint4(0, 0, 0, 0);
      }
    };
    // Four accumulators: the mma of a round form four independent chains, which
    // shortens the tail after the last weights arrive.
    float c[4][4] = {};
    const auto mma_round = [&](const uint4 (&w)[kUnroll], int round) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int i = round * kUnroll + u;
        if (i >= my_steps) break;
        const int64_t col = int64_t(split + i * splits) * kStepCols;
        const uint4 x = row_lo ? *reinterpret_cast<const uint4*>(my_input + col) : make_uint4(0, 0, 0, 0);
        uint4 xh = make_uint4(0, 0, 0, 0);
        if constexpr (kHighRows) {
          if (row_hi) xh = *reinterpret_cast<const uint4*>(my_input_hi + col);
        }
        detail::mma_16816<T>(c[u % 2 * 2], {x.x, xh.x, x.y, xh.y}, w[u].x, w[u].y);
        detail::mma_16816<T>(c[u % 2 * 2 + 1], {x.z, xh.z, x.w, xh.w}, w[u].z, w[u].w);
      }
    };

    // Two rounds of weights are in flight while the first pass builds the input
    // rows; on the first pass they are also in flight while the kernel before
    // this one finishes (dependent_launch.cuh): nothing else is read before it has.
    uint4 w_even[kUnroll], w_odd[kUnroll];  // rounds 0, 2, 4, … and 1, 3, 5, …
    load_round(w_even, 0);
    load_round(w_odd, 1);
    if (first_pass) detail::wait_for_predecessor();
    // This lane writes rows g and g + 8 of the tile (those below n).
    const bool writes = has_tile && split == 0 && row_lo, writes_hi = writes && row_hi;
    const EpilogueOperands epilogue = writes ? load_epilogue(a, tile, g, t) : EpilogueOperands{};
    const EpilogueOperands epilogue_hi = writes_hi ? load_epilogue(a, tile, g + 8, t) : EpilogueOperands{};
    if (first_pass) {
      if (plan.vector_inputs) {
        build_input_rows<kWarps, 8>(a, plan, norm_partial, input_rows);
      } else {
        build_input_rows<kWarps, 1>(a, plan, norm_partial, input_rows);
      }
      __syncthreads();
      first_pass = false;
    }
    for (int round = 0; round < rounds; round += 2) {
      mma_round(w_even, round);
      if (round + 2 < rounds) load_round(w_even, round + 2);
      mma_round(w_odd, round + 1);
      if (round + 3 < rounds) load_round(w_odd, round + 3);
    }

    // Of each accumulator, [0], [1]: input row g against tile rows 2t, 2t+1; [2], [3]: row g + 8.
    const float4 h = make_float4(c[0][0] + c[1][0] + c[2][0] + c[3][0], c[0][1] + c[1][1] + c[2][1] + c[3][1],
                                 c[0][2] + c[1][2] + c[2][2] + c[3][2], c[0][3] + c[1][3] + c[2][3] + c[3][3]);
    if (splits == 1) {
      if (writes) write_outputs(a, tile, g, t, make_float2(h.x, h.y), epilogue);
      if (writes_hi) write_outputs(a, tile, g + 8, t, make_float2(h.z, h.w), epilogue_hi);
      continue;
    }
    const auto partial = [&](int w) -> float4 {  // lane's partial sums of warp w (rows g, g + 8)
      if constexpr (kHighRows) return reinterpret_cast<float4*>(split_partial)[w * 32 + lane];
      const float2 p = reinterpret_cast<float2*>(split_partial)[w * 32 + lane];
      return make_float4(p.x, p.y, 0.0f, 0.0f);
    };
    if constexpr (kHighRows) {
      reinterpret_cast<float4*>(split_partial)[warp * 32 + lane] = h;
    } else {
      reinterpret_cast<float2*>(split_partial)[warp * 32 + lane] = make_float2(h.x, h.y);
    }
    __syncthreads();
    if (writes) {
      float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int s = 0; s < splits; ++s) {
        const float4 p = partial(warp + s);
        sum.x += p.x;
        sum.y += p.y;
        sum.z += p.z;
        sum.w += p.w;
      }
      write_outputs(a, tile, g, t, make_float2(sum.x, sum.y), epilogue);
      if (writes_hi) write_outputs(a, tile, g + 8, t, make_float2(sum.z, sum.w), epilogue_hi);
    }
    __syncthreads();  // split_partial is rewritten by the next pass
  }
}

bool aligned(const void* p, int64_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace

bool small_batch_linear_fits(int64_t n, int64_t in, int64_t element_bytes) {
  if (n < 0 || n > kSmallBatchMaxRows || in <= 0 || in > (int64_t(1) << 24) || element_bytes <= 0) return false;
  return shared_bytes(n, in, element_bytes, warps_for_rows(n)) <=
         current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
}

template <typename T>
cudaError_t small_batch_linear(const SmallBatchLinearArgs<T>& a, cudaStream_t stream) {
  if (a.n < 0 || a.n > kSmallBatchMaxRows || a.in <= 0 || a.out <= 0 || !a.weight) return cudaErrorInvalidValue;
  switch (a.input) {
    case LinearInput::kNormF32:
      if (!a.x_f32) return cudaErrorInvalidValue;
      break;
    case LinearInput::kNormGateT:
      if (!a.x || !a.gate || a.gate_stride < a.in) return cudaErrorInvalidValue;
      break;
    case LinearInput::kPlainT:
      if (!a.x) return cudaErrorInvalidValue;
      break;
  }
  if (a.output == LinearOutput::kAddF32 ? !a.residual : !a.y) return cudaErrorInvalidValue;
  if (a.n == 0) return cudaSuccess;
  if (!small_batch_linear_fits(a.n, a.in, sizeof(T))) return cudaErrorInvalidValue;

  Plan plan;
  const bool glu = a.output == LinearOutput::kGluProductT;
  plan.tiles = glu ? (a.out + kTileRows / 2 - 1) / (kTileRows / 2) : (a.out + kTileRows - 1) / kTileRows;
  plan.steps = int32_t((a.in + kStepCols - 1) / kStepCols);
  plan.row_stride = int32_t(input_row_stride(a.in));
  plan.vector_inputs = a.in % 8 == 0 && (a.input == LinearInput::kNormF32 ? aligned(a.x_f32, 16) : aligned(a.x, 16)) &&
                       (a.input != LinearInput::kNormGateT || (a.gate_stride % 8 == 0 && aligned(a.gate, 16)));
  const int warps = warps_for_rows(a.n);
  const int64_t sms = std::max(1, current_device_attribute(cudaDevAttrMultiProcessorCount));
  const int64_t grid = std::min(sms * (kMaxWarps / warps), plan.tiles);

  const bool vector_weights = a.in % 8 == 0 && aligned(a.weight, 16);
  const auto pick = [&](auto warps_constant, auto high_rows) {
    constexpr int W = decltype(warps_constant)::value;
    constexpr bool H = decltype(high_rows)::value;
    return vector_weights ? small_batch_linear_kernel<T, true, W, H> : small_batch_linear_kernel<T, false, W, H>;
  };
  using Eight = std::integral_constant<int, 8>;
  using Sixteen = std::integral_constant<int, 16>;
  const auto kernel = warps == 8 ? pick(Eight{}, std::false_type{})
                      : !uses_high_rows(a.n) ? pick(Sixteen{}, std::false_type{})
                                 : pick(Sixteen{}, std::true_type{});
  const int64_t bytes = shared_bytes(a.n, a.in, sizeof(T), warps);
  if (bytes > 48 * 1024) {
    // Always the device's whole opt-in limit: idempotent, so concurrent launchers
    // never lower it under one another.
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin));
    if (err != cudaSuccess) return err;
  }
  return launch_dependent(kernel, dim3(unsigned(grid)), dim3(unsigned(warps * 32)), size_t(bytes), stream, a, plan);
}

template cudaError_t small_batch_linear<__nv_bfloat16>(const SmallBatchLinearArgs<__nv_bfloat16>&, cudaStream_t);
template cudaError_t small_batch_linear<__half>(const SmallBatchLinearArgs<__half>&, cudaStream_t);

}  // namespace tnl::cuda
