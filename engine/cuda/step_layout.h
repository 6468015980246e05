// StepLayout: how a StepPlan's tokens sit in the CUDA backend's buffers.
//
// Rows are ordered decode chunks first (one token each, the fused decode kernel
// reads rows [0, num_decode)), then prefill chunks (Lightning Attention over rows
// [num_decode, N)). Every int array the kernels need is packed into one vector,
// uploaded with a single copy per step; the offsets below index into it.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/backend.h"
#include "kernels/cuda/launchers.h"

namespace tnl {

struct StepLayout {
  int64_t num_tokens = 0;          // N
  int64_t num_decode = 0;          // rows [0, num_decode) are one-token chunks
  int64_t num_prefill_tokens = 0;  // N − num_decode
  int64_t num_logit_rows = 0;      // R: rows the host wants, and the last rows of sampled chunks
  int64_t num_host_rows = 0;       // the first of the R rows: those of chunks whose logits go to the host
  std::vector<int32_t> row_begin;  // per plan chunk, as StepOutput::row_begin (within the host rows)
  std::vector<int32_t> sample_row; // per plan chunk with `sample`: its last row among the R logits rows, else -1
  cuda::LightningPlan plan;        // segments of the prefill chunks
  std::vector<int32_t> ints;       // packed arrays; offsets:
  int64_t tokens = 0;              //   [N] token ids
  int64_t positions = 0;           //   [N] absolute positions
  int64_t token_slots = 0;         //   [N] state slot of each row
  int64_t logit_rows = 0;          //   [R] rows whose logits are wanted: the host's, then the device's
  int64_t segments = 0;            //   plan.segments
  int64_t multi = 0;               //   plan.multi
  int64_t parts = 0;               //   plan.parts
  int64_t seq_slot = 0;            //   [prefill chunks] slot
  int64_t seq_fresh = 0;           //   [prefill chunks] 1: start from a zero state
};

// Rows a decode graph runs past a plan's own: one-token rows at position 1 of
// `slot` (the scratch slot), each with a logits row, placed after the plan's
// decode rows. The graph of a batch-size bucket runs the bucket's rows whatever
// the plan holds; padding here spares copying the plan to pad it.
struct DecodePadding {
  int64_t rows = 0;
  int32_t slot = 0;
};

// row_begin and sample_row have one entry per plan chunk (none for padding).
StepLayout make_step_layout(const StepPlan& plan, int64_t heads, int64_t head_dim, int64_t target_ctas,
                            DecodePadding padding = {});

}  // namespace tnl
