#include "engine/checkpoint/tensor_block.h"

#include <cassert>

namespace tnl {

int64_t tensor_matrix_cols(const TensorView& t) { return t.shape.empty() || t.shape[0] == 0 ? 0 : t.numel() / t.shape[0]; }

TensorBlock resolve_block(const TensorView& t, TensorBlock block) {
  const int64_t cols = tensor_matrix_cols(t);
  if (block.cols < 0) block.cols = cols - block.col_begin;
  assert(block.row_begin >= 0 && block.row_begin + block.rows <= (t.shape.empty() ? 0 : t.shape[0]));
  assert(block.col_begin >= 0 && block.col_begin + block.cols <= cols);
  return block;
}

std::vector<float> block_to_f32(const TensorView& t, TensorBlock block) {
  block = resolve_block(t, block);
  const int64_t cols = tensor_matrix_cols(t), esize = dtype_size(t.dtype);
  std::vector<float> out(size_t(block.rows * block.cols));
  for (int64_t r = 0; r < block.rows; ++r) {
    const std::byte* src = t.data + ((block.row_begin + r) * cols + block.col_begin) * esize;
    convert_to_f32(t.dtype, src, block.cols, out.data() + r * block.cols);
  }
  return out;
}

std::vector<float> blocks_to_f32(const TensorView& t, const std::vector<TensorBlock>& blocks) {
  std::vector<float> out;
  for (const TensorBlock& b : blocks) {
    const std::vector<float> part = block_to_f32(t, b);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace tnl
