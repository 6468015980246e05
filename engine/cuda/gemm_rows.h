// The row counts the CUDA backend runs its cuBLAS GEMMs on.
//
// cuBLAS picks a kernel for a GEMM shape on the shape's first call (a heuristic
// query, at times a kernel load): 0.2–4 ms of host time per shape on the H200,
// ~7–10 ms for a layer's four projections at a token count never seen before
// (measured: docs/architecture.md, "GEMM row buckets"). A server's prefill steps
// have ever-new token counts, so nearly every one of them paid it. The backend
// therefore rounds a step's rows up to a bucket, computes the padding rows (their
// inputs are whatever the buffers hold; a GEMM row depends on its own input row
// only, and nothing reads the padding's outputs), and calls every bucket once at
// start-up.
//
// Buckets: powers of two up to 64 (the decode graphs' batch buckets are among
// them), then 16 per doubling, so that the padding is under 1/16 of the rows.
#pragma once

#include <cstdint>

namespace tnl {

constexpr int64_t gemm_row_bucket(int64_t n) {
  if (n <= 1) return n < 0 ? 0 : n;
  int64_t p = 1;
  while (p < n) p *= 2;  // p/2 < n ≤ p
  if (p <= 64) return p;
  const int64_t step = p / 32;
  return (n + step - 1) / step * step;
}

// The bucket after `bucket` (for walking every bucket up to a limit).
constexpr int64_t next_gemm_row_bucket(int64_t bucket) { return gemm_row_bucket(bucket + 1); }

}  // namespace tnl
