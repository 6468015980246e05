#include "engine/parallel/shard_layout.h"

#include <algorithm>

namespace tnl {

Status check_tensor_parallel(const ModelConfig& c, int32_t size) {
  if (size < 1) return invalid_argument("--tensor-parallel-size must be at least 1, got " + std::to_string(size));
  if (c.num_heads % size != 0) {
    return invalid_argument("--tensor-parallel-size " + std::to_string(size) + " does not divide the model's " +
                            std::to_string(c.num_heads) + " attention heads: choose a divisor of " +
                            std::to_string(c.num_heads));
  }
  if (c.glu_dim % size != 0) {
    return invalid_argument("--tensor-parallel-size " + std::to_string(size) + " does not divide the model's SGLU " +
                            "width " + std::to_string(c.glu_dim) + ": choose a divisor of " +
                            std::to_string(c.glu_dim));
  }
  return Status::ok();
}

ShardLayout ShardLayout::make(const ModelConfig& global, int32_t rank, int32_t size) {
  ShardLayout s;
  s.global = global;
  s.rank = rank;
  s.size = size;
  s.local = global;
  s.local.num_heads = global.num_heads / size;
  s.local.hidden_dim = global.hidden_dim / size;
  s.local.glu_dim = global.glu_dim / size;
  s.local.vocab_size = (global.vocab_size + size - 1) / size;
  return s;
}

int64_t ShardLayout::vocab_rows() const {
  return std::clamp<int64_t>(global.vocab_size - vocab_begin(), 0, local.vocab_size);
}

std::vector<TensorBlock> ShardLayout::qkvu_rows() const {
  const int64_t D = global.hidden_dim, Dl = local.hidden_dim, first = rank * Dl;
  return {TensorBlock::whole_rows(first, Dl), TensorBlock::whole_rows(D + first, Dl),
          TensorBlock::whole_rows(2 * D + first, Dl), TensorBlock::whole_rows(3 * D + first, Dl)};
}

TensorBlock ShardLayout::theta_rows() const { return TensorBlock::whole_rows(head_begin(), local.num_heads); }
TensorBlock ShardLayout::glu_rows() const { return TensorBlock::whole_rows(rank * local.glu_dim, local.glu_dim); }
TensorBlock ShardLayout::out_proj_cols() const {
  return {0, global.dim, rank * local.hidden_dim, local.hidden_dim};
}
TensorBlock ShardLayout::l3_cols() const { return {0, global.dim, rank * local.glu_dim, local.glu_dim}; }
TensorBlock ShardLayout::vocab_block() const { return TensorBlock::whole_rows(vocab_begin(), vocab_rows()); }

std::vector<double> ShardLayout::decay_rates(int64_t layer) const {
  const std::vector<double> all = tnl::decay_rates(global, layer);
  return {all.begin() + head_begin(), all.begin() + head_begin() + local.num_heads};
}

}  // namespace tnl
