// TensorBlock: a rectangle of a checkpoint tensor, which is viewed as a matrix
// [shape[0], numel / shape[0]] (a bias [n] is [n, 1]; LRPE's θ [H, 1, e] is [H, e]).
// Tensor-parallel ranks read only their blocks from the memory-mapped file.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/checkpoint/checkpoint.h"

namespace tnl {

struct TensorBlock {
  int64_t row_begin = 0;
  int64_t rows = 0;
  int64_t col_begin = 0;
  int64_t cols = -1;  // -1: every column

  static TensorBlock whole_rows(int64_t row_begin, int64_t rows) { return {row_begin, rows, 0, -1}; }
};

int64_t tensor_matrix_cols(const TensorView& t);  // numel / shape[0]
// The block with cols = -1 resolved against `t`.
TensorBlock resolve_block(const TensorView& t, TensorBlock block);
// The block as fp32, row-major [rows, cols]. Precondition: inside the tensor.
std::vector<float> block_to_f32(const TensorView& t, TensorBlock block);
// Several blocks of one tensor, stacked row-wise (same column range each).
std::vector<float> blocks_to_f32(const TensorView& t, const std::vector<TensorBlock>& blocks);

}  // namespace tnl
