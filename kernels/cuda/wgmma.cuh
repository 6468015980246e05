// Warpgroup tensor-core helpers (sm_90a): wgmma.mma_async m64n64k16 with fp32
// accumulators, operands in 128-byte-swizzled shared memory, and the fences that
// order it. Only kernels compiled for sm_90a may call them (TNL_CUDA_HAS_SM90A).
//
// Shared-memory operands (PTX ISA "Matrix Descriptor"; CUTLASS calls the layouts
// K-major and MN-major SW128): a region of 128-byte rows, 1,024-byte aligned, in
// which 16-byte chunk c of row r sits at r·128 + ((c ^ (r mod 8)) · 16).
//   K-major (A, or B as [n][k]): a row is one m (or n) index, 64 k values; a
//     64-wide k range is one region; k-step s of 16 starts 32·s bytes in.
//   MN-major (B as [k][n], n = 64): a row is one k index; k-step s of 16 starts
//     16 rows (2,048 bytes) in. wgmma's "transpose B" flag says which.
// Both: 8-row groups 1,024 bytes apart (the stride byte offset); the leading byte
// offset is unused at these widths.
//
// Accumulators (m64n64, fp32, 32 a thread): warp w of the warpgroup holds rows
// 16w + g and 16w + g + 8 (g = lane / 4, t = lane % 4); d[4j + i] is column
// 8j + 2t + (i mod 2) of row 16w + g + 8·(i / 2): mma.sync's C fragment of n-tile j.
// An A operand from registers is mma.sync's m16n8k16 A fragment of the warp's rows.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace tnl::cuda::detail {

enum class Major { kK, kMN };

// Byte offset of 16-byte chunk `chunk` (0-7) of row `row` in a swizzled region.
__device__ __forceinline__ uint32_t sw128_offset(int row, int chunk) {
  return uint32_t(row) * 128u + (uint32_t(chunk ^ (row & 7)) << 4);
}

// Descriptor of a swizzled operand starting at shared address `addr` (see above),
// in two halves: the low word (start address / 16, leading byte offset 16) varies,
// so kernels compute it once per tile and add offset / 16 per step (shared memory
// is under 256 KB: the 14-bit address field does not carry); the high word (stride
// byte offset 1,024, 128-byte swizzle) is a constant.
__device__ __forceinline__ uint32_t sw128_descriptor_lo(uint32_t addr) { return (addr >> 4) | (1u << 16); }
__device__ __forceinline__ uint64_t sw128_descriptor_at(uint32_t lo) {
  return (uint64_t((1u << 30) | (1024u >> 4)) << 32) | lo;
}
__device__ __forceinline__ uint64_t sw128_descriptor(uint32_t addr) { return sw128_descriptor_at(sw128_descriptor_lo(addr)); }

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed groups are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Makes this thread's generic-proxy shared-memory writes (st.shared, cp.async)
// visible to wgmma's reads, which go through the async proxy.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Barrier of warpgroup `wg`'s 128 threads alone: named barrier 1 + wg, wg < 2 (0 is
// __syncthreads), as an immediate (a register id makes ptxas reserve all sixteen).
__device__ __forceinline__ void warpgroup_barrier(int wg) {
  if (wg == 0) {
    asm volatile("bar.sync 1, 128;\n" ::: "memory");
  } else {
    asm volatile("bar.sync 2, 128;\n" ::: "memory");
  }
}
// Keeps the compiler from moving reads or writes of accumulators across a wait.
template <int N>
__device__ __forceinline__ void fence_registers(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Stores four 8×8 b16 matrices to shared memory (sm_90): lane 4g + t gives row g,
// columns 2t and 2t + 1 of matrix i in r[i] (mma.sync's C fragment, packed), and
// lane l the shared address of row l mod 8 of matrix l / 8.
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(r0), "r"(r1), "r"(r2),
               "r"(r3)
               : "memory");
}

// The 32 accumulator operands of an m64n64 fp32 product, in asm and as C++ outputs.
#define TNL_WGMMA_D32 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
#define TNL_WGMMA_OUTS(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
// TY: "bf16" or "f16"; TRANS_B: "0" (B K-major) or "1" (MN-major).
#define TNL_WGMMA_SS(TY, TRANS_B)                                                                               \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\nwgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY \
               " " TNL_WGMMA_D32 ", %32, %33, p, 1, 1, 0, " TRANS_B ";\n}\n"                                      \
               : TNL_WGMMA_OUTS(d)                                                                              \
               : "l"(a), "l"(b), "r"(accumulate))
#define TNL_WGMMA_RS(TY)                                                                                        \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\nwgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY \
               " " TNL_WGMMA_D32 ", {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"                                  \
               : TNL_WGMMA_OUTS(d)                                                                              \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate))

// d (+)= A · B, A and B from shared memory (A K-major); accumulate = 0 overwrites d.
// T: __nv_bfloat16 or __half.
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t a, uint64_t b, int accumulate,
                                                   Major b_major) {
  constexpr bool kHalf = std::is_same_v<T, __half>;
  if (b_major == Major::kK) {
    if constexpr (kHalf) TNL_WGMMA_SS("f16", "0");
    else TNL_WGMMA_SS("bf16", "0");
  } else {
    if constexpr (kHalf) TNL_WGMMA_SS("f16", "1");
    else TNL_WGMMA_SS("bf16", "1");
  }
}

// d (+)= A · B, A from registers, B MN-major in shared memory.
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b, int accumulate) {
  if constexpr (std::is_same_v<T, __half>) TNL_WGMMA_RS("f16");
  else TNL_WGMMA_RS("bf16");
}

#undef TNL_WGMMA_RS
#undef TNL_WGMMA_SS
#undef TNL_WGMMA_OUTS
#undef TNL_WGMMA_D32

}  // namespace tnl::cuda::detail
