// Deterministic, multithreaded y = x·Wᵀ (+b) over several independent row blocks.
//
// Why tiles: the CPU backend promises bit-identical results whatever else is in
// the batch and however many threads run. Each task computes a fixed tile of
// output columns for one row block with a single-threaded BLAS call, so every
// output element is computed by the same code path in every configuration.
#pragma once

#include <cstdint>
#include <vector>

namespace tnl {

struct RowBlock {
  const float* x;  // [rows, in]
  float* y;        // [rows, out]
  int64_t rows;
};

// W is [out, in], bias is [out] or null. Runs on an OpenMP team of `threads`.
void tiled_linear(const std::vector<RowBlock>& blocks, const float* w, const float* bias, int64_t in,
                  int64_t out, int threads);

}  // namespace tnl
