// The channel mixer's first half in one launch (sm_90a): p = (a·W1ᵀ) ⊙ (a·W2ᵀ),
// the [W1; W2] product with the SGLU product in its epilogue, so that the 2G-wide
// h12 never goes to memory and no separate product pass reads it back.
//
// Persistent: one CTA an SM walks tiles of 128 rows × 128 columns of p, each the
// 128 × 256 product of 128 rows of a with 128 rows of W1 and the same 128 rows of
// W2. A producer warp loads 64-wide k slices of the three operands by TMA
// (128-byte swizzle, the layout wgmma.cuh describes) into a ring of kStages
// stages, each guarded by two mbarriers (full: the bytes landed; empty: both
// consumer warpgroups' products that read it finished), running on into the next
// tile while the consumers store this one. Consumer warpgroup w multiplies rows
// 64w…64w+63 with wgmma m64n256k16, accumulator columns 0-127 the W1 half and
// 128-255 the W2 half, so each thread holds both factors of its products: the
// epilogue rounds them to T first (the two GEMM outputs the unfused path writes),
// multiplies in fp32 and stores T, as sglu_product does.
#include <cuda.h>
#include <cudaTypedefs.h>

#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/kernel_attribute.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/wgmma.cuh"

namespace tnl::cuda {
namespace detail {
namespace {

constexpr int kRowsPerTile = 128;  // rows of a (two consumer warpgroups of 64)
constexpr int kColsPerTile = 128;  // columns of p (as many rows of W1, and of W2)
constexpr int kColAlign = 64;      // glu must be a multiple: a tile's W1 rows past glu then
                                   // are W2's first rows or past the matrix (TMA zeros), unstored
constexpr int kSliceK = 64;        // k values per stage: one 128-byte swizzled row
constexpr int kStages = 4;
constexpr int kThreads = 288;      // two consumer warpgroups and the producer warp
constexpr int kABytes = kRowsPerTile * kSliceK * 2;      // 16 KB
constexpr int kWBytes = 2 * kColsPerTile * kSliceK * 2;  // 32 KB: W1's rows, then W2's
constexpr int kStageBytes = kABytes + kWBytes;
constexpr int kSmemBytes = kStages * kStageBytes + 1024 /* alignment */ + 2 * kStages * 8;

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbarrier_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_expect_bytes(uint32_t bar, int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Returns once the phase of parity `parity` has completed.
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// One box of a 2-D tensor map (coordinates: k, then row) into shared memory; the
// bytes count against `bar`'s expected transaction.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int k, int row, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(k), "r"(row), "r"(bar)
      : "memory");
}

// The 128 accumulator operands of an m64n256 fp32 product, in asm and as C++ outputs.
#define TNL_D128 \
  "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26," \
  "%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51," \
  "%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76," \
  "%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100," \
  "%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120," \
  "%121,%122,%123,%124,%125,%126,%127""}"
#define TNL_O128 \
      "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
      "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
      "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
      "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
      "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
      "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
      "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
      "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
      "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
      "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
      "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
      "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
      "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
      "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
      "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
#define TNL_WGMMA_N256(TY)                                                                             \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\nwgmma.mma_async.sync.aligned.m64n256k16.f32." TY \
               "." TY " " TNL_D128 ", %128, %129, p, 1, 1, 0, 0;\n}\n"                                       \
               : TNL_O128                                                                               \
               : "l"(a), "l"(b), "r"(accumulate))

// d (+)= A · B, both K-major in shared memory (d: m64n256 accumulators, 128 a
// thread, laid out as wgmma.cuh says for n = 64, with j running to 31);
// accumulate = 0 overwrites d.
template <typename T>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t a, uint64_t b, int accumulate) {
  if constexpr (std::is_same_v<T, __half>) TNL_WGMMA_N256("f16");
  else TNL_WGMMA_N256("bf16");
}
#undef TNL_WGMMA_N256
#undef TNL_O128
#undef TNL_D128

// First row of a and first column of p of tile `tile`: tiles run in row-major
// order over (row tile, column tile), the producer and the consumers alike.
struct TileOrigin {
  int row0, col0;
};
__device__ __forceinline__ TileOrigin tile_origin(int tile, int col_tiles) {
  return {tile / col_tiles * kRowsPerTile, tile % col_tiles * kColsPerTile};
}

// The consumer warpgroups' side of sglu_gemm_kernel: products of each tile's
// slices as they land, then the SGLU epilogue from the accumulators.
template <typename T>
__device__ __forceinline__ void consume(uint32_t base, uint32_t full, uint32_t empty, int slices, int col_tiles,
                                        int tiles, int rows, int glu, T* p) {
  const int warp = threadIdx.x / 32, wg = warp / 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const bool signals = threadIdx.x % 128 == 0;  // one thread a warpgroup releases stages
  float d[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) d[i] = 0.0f;  // each tile's first product overwrites; this keeps d defined
  int it = 0;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const auto [row0, col0] = tile_origin(tile, col_tiles);
    for (int i = 0; i < slices; ++i, ++it) {
      const int s = it % kStages;
      mbarrier_wait(full + 8 * s, uint32_t((it / kStages) & 1));
      const uint32_t stage = base + s * kStageBytes;
      const uint32_t a_lo = sw128_descriptor_lo(stage + wg * 64 * 128), w_lo = sw128_descriptor_lo(stage + kABytes);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kSliceK / 16; ++ks) {
        wgmma_m64n256k16<T>(d, sw128_descriptor_at(a_lo + 2 * ks), sw128_descriptor_at(w_lo + 2 * ks),
                            i > 0 || ks > 0);
      }
      wgmma_commit();
      // The products of the slice before are done: its stage may be refilled.
      wgmma_wait<1>();
      if (i > 0 && signals) mbarrier_arrive(empty + 8 * ((it - 1) % kStages));
    }
    wgmma_wait<0>();
    fence_registers(d);
    if (signals) mbarrier_arrive(empty + 8 * ((it - 1) % kStages));

    // d[4j + i]: row 16·(warp mod 4) + g + 8·(i / 2), column 8j + 2t + (i mod 2);
    // columns 0-127 are W1's, 128-255 W2's (j + 16).
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = row0 + wg * 64 + (warp % 4) * 16 + g + 8 * half;
      if (row >= rows) continue;
      T* out = p + int64_t(row) * glu + col0 + 2 * t;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        if (col0 + 8 * j >= glu) break;  // the last tile of a glu that is an odd multiple of 64
        const int i = 4 * j + 2 * half;
        const float x0 = to_f32(from_f32<T>(d[i])) * to_f32(from_f32<T>(d[i + 64]));
        const float x1 = to_f32(from_f32<T>(d[i + 1])) * to_f32(from_f32<T>(d[i + 65]));
        if constexpr (std::is_same_v<T, __half>) {
          *reinterpret_cast<__half2*>(out + 8 * j) = __floats2half2_rn(x0, x1);
        } else {
          *reinterpret_cast<__nv_bfloat162*>(out + 8 * j) = __floats2bfloat162_rn(x0, x1);
        }
      }
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
    sglu_gemm_kernel(const __grid_constant__ CUtensorMap a_map, const __grid_constant__ CUtensorMap w_map,
                     int rows, int glu, int k, T* p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  const uint32_t base = shared_address(smem);
  const uint32_t full = base + kStages * kStageBytes;  // kStages mbarriers, then kStages "empty" ones
  const uint32_t empty = full + kStages * 8;
  const int warp = threadIdx.x / 32, slices = (k + kSliceK - 1) / kSliceK;
  const int col_tiles = (glu + kColsPerTile - 1) / kColsPerTile;
  const int tiles = (rows + kRowsPerTile - 1) / kRowsPerTile * col_tiles;

  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(full + 8 * s, 1);
      mbarrier_init(empty + 8 * s, 2);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  // a is the previous launch's output; the weights are not, but one wait keeps it simple.
  wait_for_predecessor();
  allow_dependents();

  // Tiles in row-major order (tile_origin): the CTAs at work at once share a's rows
  // and sweep W, which stays in L2. `it` counts k slices across the
  // CTA's tiles: stage it mod kStages, in its (it / kStages)-th use.
  if (warp == 8) {  // producer
    if (threadIdx.x % 32 == 0) {
      int it = 0;
      for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const auto [row0, col0] = tile_origin(tile, col_tiles);
        for (int i = 0; i < slices; ++i, ++it) {
          const int s = it % kStages;
          if (it >= kStages) mbarrier_wait(empty + 8 * s, uint32_t((it / kStages - 1) & 1));
          const uint32_t stage = base + s * kStageBytes, bar = full + 8 * s;
          mbarrier_expect_bytes(bar, kStageBytes);
          tma_load_2d(stage, &a_map, i * kSliceK, row0, bar);
          tma_load_2d(stage + kABytes, &w_map, i * kSliceK, col0, bar);
          tma_load_2d(stage + kABytes + kWBytes / 2, &w_map, i * kSliceK, glu + col0, bar);
        }
      }
    }
    return;
  }
  consume<T>(base, full, empty, slices, col_tiles, tiles, rows, glu, p);
#endif
}

// cuTensorMapEncodeTiled from the driver the runtime loaded (no link to libcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

// A row-major [rows, k] matrix of 16-bit T, read in boxes of box_rows × 64 k values.
template <typename T>
bool encode_operand(CUtensorMap* map, const T* ptr, int64_t rows, int64_t k, int box_rows) {
  const auto encode = tensor_map_encoder();
  if (!encode) return false;
  const cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(k) * sizeof(T)};
  const cuuint32_t box[2] = {cuuint32_t(kSliceK), cuuint32_t(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUtensorMapDataType type =
      std::is_same_v<T, __half> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
  return encode(map, type, 2, const_cast<T*>(ptr), dims, strides, box, element_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace

template <typename T>
cudaError_t sglu_gemm(const T* a, int64_t rows, int64_t k, const T* w12, int64_t glu, T* p, cudaStream_t stream) {
  if (rows < 0 || !sglu_gemm_fits(k, glu) || !a || !w12 || !p) return cudaErrorInvalidValue;
  if ((reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(w12) | reinterpret_cast<uintptr_t>(p)) % 16)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (rows > (int64_t(1) << 30)) return cudaErrorInvalidValue;  // tile indices stay in int
  const int64_t tiles = ceil_div(rows, int64_t(kRowsPerTile)) * ceil_div(glu, int64_t(kColsPerTile));
  if (tiles > INT32_MAX) return cudaErrorInvalidValue;
  CUtensorMap a_map, w_map;
  if (!encode_operand(&a_map, a, rows, k, kRowsPerTile) || !encode_operand(&w_map, w12, 2 * glu, k, kColsPerTile)) {
    return cudaErrorInvalidValue;
  }
  if (const cudaError_t err = reserve_dynamic_shared_memory<sglu_gemm_kernel<T>>(kSmemBytes); err != cudaSuccess) {
    return err;
  }
  const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
  const dim3 grid(unsigned(std::min<int64_t>(tiles, sms > 0 ? sms : 1)));
  return launch_dependent(sglu_gemm_kernel<T>, grid, dim3(kThreads), kSmemBytes, stream, a_map, w_map, int(rows),
                          int(glu), int(k), p);
}

}  // namespace detail

bool sglu_gemm_fits(int64_t k, int64_t glu) {
  // TMA: row strides a multiple of 16 bytes; glu a multiple of kColAlign (see there).
  return k > 0 && k % 8 == 0 && glu > 0 && glu % detail::kColAlign == 0 && glu <= (int64_t(1) << 24);
}

bool sglu_gemm_available() { return lightning_wgmma_available() && detail::tensor_map_encoder() != nullptr; }

template <typename T>
cudaError_t sglu_gemm(const T* a, int64_t rows, int64_t k, const T* w12, int64_t glu, T* p, cudaStream_t stream) {
#if defined(TNL_CUDA_HAS_SM90A)
  if (!sglu_gemm_available()) return cudaErrorNotSupported;
  return detail::sglu_gemm(a, rows, k, w12, glu, p, stream);
#else
  (void)a, (void)rows, (void)k, (void)w12, (void)glu, (void)p, (void)stream;
  return cudaErrorNotSupported;
#endif
}

template cudaError_t sglu_gemm<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, const __nv_bfloat16*, int64_t,
                                              __nv_bfloat16*, cudaStream_t);
template cudaError_t sglu_gemm<__half>(const __half*, int64_t, int64_t, const __half*, int64_t, __half*,
                                       cudaStream_t);

}  // namespace tnl::cuda
