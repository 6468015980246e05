// ShardLayout: which part of the model one tensor-parallel rank holds
// (model-spec §7, Megatron style). Rank r of T holds heads [r·H/T, (r+1)·H/T):
// their rows of the q, k, v and u blocks of qkvu_proj (four contiguous blocks in
// the checkpoint, not interleaved per head), their θ, their λ by global head
// index, their decode state and their columns of out_proj; rows [r·G/T, …) of
// SGLU l1 and l2 and those columns of l3; vocabulary rows [r·V', (r+1)·V') of the
// embedding and the output matrix, V' = ⌈V/T⌉, the last shard padded with zero
// rows. The biases that follow a reduction (out_proj, l3) live on rank 0 only,
// so that the all-reduce adds them once.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/checkpoint/tensor_block.h"
#include "engine/model_config.h"
#include "engine/status.h"

namespace tnl {

// H and G must divide by T; the vocabulary need not (it is padded).
Status check_tensor_parallel(const ModelConfig& config, int32_t size);

struct ShardLayout {
  ModelConfig global;  // the checkpoint's model
  ModelConfig local;   // this rank's shapes: H/T heads, D/T, G/T, V' vocabulary rows
  int32_t rank = 0;
  int32_t size = 1;

  // Precondition: check_tensor_parallel(global, size) is OK.
  static ShardLayout make(const ModelConfig& global, int32_t rank, int32_t size);
  static ShardLayout whole(const ModelConfig& global) { return make(global, 0, 1); }
  bool sharded() const { return size > 1; }

  int64_t head_begin() const { return rank * local.num_heads; }
  int64_t vocab_begin() const { return rank * local.vocab_size; }
  // Rows of the vocabulary this rank holds that exist (the rest of V' is padding).
  int64_t vocab_rows() const;

  // Blocks of each checkpoint tensor this rank reads (weights; a bias uses the
  // same rows with its single column).
  std::vector<TensorBlock> qkvu_rows() const;  // q, k, v, u rows of this rank's heads
  TensorBlock theta_rows() const;              // θ [H, e]
  TensorBlock glu_rows() const;                // l1, l2 [G, d]
  TensorBlock out_proj_cols() const;           // out_proj [d, D]
  TensorBlock l3_cols() const;                 // l3 [d, G]
  TensorBlock vocab_block() const;             // embedding, lm_head [V, d]
  bool holds_reduced_biases() const { return rank == 0; }  // out_proj and l3 biases

  std::vector<double> decay_rates(int64_t layer) const;  // this rank's heads' s, by global index
};

}  // namespace tnl
