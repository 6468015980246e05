#include "engine/cuda/step_layout.h"

namespace tnl {

StepLayout make_step_layout(const StepPlan& plan, int64_t heads, int64_t head_dim, int64_t target_ctas,
                            DecodePadding padding) {
  StepLayout s;
  std::vector<size_t> order;  // plan chunk indices, decode chunks first
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    if (plan.chunks[i].tokens.size() == 1) order.push_back(i);
  }
  s.num_decode = int64_t(order.size());
  std::vector<int32_t> seq_lens, seq_slot, seq_fresh;
  for (size_t i = 0; i < plan.chunks.size(); ++i) {
    const SequenceChunk& c = plan.chunks[i];
    if (c.tokens.size() == 1) continue;
    order.push_back(i);
    seq_lens.push_back(int32_t(c.tokens.size()));
    seq_slot.push_back(c.slot);
    seq_fresh.push_back(c.start_pos == 0 ? 1 : 0);
  }

  std::vector<int32_t> tokens, positions, slots;
  std::vector<int64_t> first_row(plan.chunks.size());
  const auto place = [&](size_t i) {
    const SequenceChunk& c = plan.chunks[i];
    first_row[i] = int64_t(tokens.size());
    for (size_t r = 0; r < c.tokens.size(); ++r) {
      tokens.push_back(c.tokens[r]);
      positions.push_back(int32_t(c.start_pos + int64_t(r)));
      slots.push_back(c.slot);
    }
  };
  // Rows: the plan's decode chunks, the padding rows, then the prefill chunks.
  const size_t decode_chunks = size_t(s.num_decode);
  for (size_t k = 0; k < decode_chunks; ++k) place(order[k]);
  const int64_t first_padding_row = int64_t(tokens.size());
  for (int64_t p = 0; p < padding.rows; ++p) {
    tokens.push_back(0);
    positions.push_back(1);
    slots.push_back(padding.slot);
  }
  s.num_decode += padding.rows;
  for (size_t k = decode_chunks; k < order.size(); ++k) place(order[k]);
  s.num_tokens = int64_t(tokens.size());
  s.num_prefill_tokens = s.num_tokens - s.num_decode;

  // Logits rows: first those the host wants (in chunk order: StepOutput's rows are
  // the first num_host_rows, copied in one piece), then the last rows of chunks
  // sampled on the device alone, then the padding rows.
  std::vector<int32_t> logit_rows;
  s.row_begin.assign(plan.chunks.size(), -1);
  s.sample_row.assign(plan.chunks.size(), -1);
  for (const bool host : {true, false}) {
    for (size_t i = 0; i < plan.chunks.size(); ++i) {
      const SequenceChunk& c = plan.chunks[i];
      if ((c.logits != LogitsMode::kNone) != host || (!host && !c.sample)) continue;
      if (host) s.row_begin[i] = int32_t(logit_rows.size());
      const int64_t m = int64_t(c.tokens.size());
      for (int64_t r = c.logits == LogitsMode::kAll ? 0 : m - 1; r < m; ++r) {
        logit_rows.push_back(int32_t(first_row[i] + r));
      }
      if (c.sample) s.sample_row[i] = int32_t(logit_rows.size()) - 1;
    }
    if (host) s.num_host_rows = int64_t(logit_rows.size());
  }
  for (int64_t p = 0; p < padding.rows; ++p) logit_rows.push_back(int32_t(first_padding_row + p));
  s.num_logit_rows = int64_t(logit_rows.size());
  if (!seq_lens.empty()) s.plan = cuda::plan_lightning(seq_lens, heads, head_dim, target_ctas);

  auto append = [&](const std::vector<int32_t>& v) {
    const int64_t at = int64_t(s.ints.size());
    s.ints.insert(s.ints.end(), v.begin(), v.end());
    return at;
  };
  s.tokens = append(tokens);
  s.positions = append(positions);
  s.token_slots = append(slots);
  s.logit_rows = append(logit_rows);
  s.segments = append(s.plan.segments);
  s.multi = append(s.plan.multi);
  s.parts = append(s.plan.parts);
  s.seq_slot = append(seq_slot);
  s.seq_fresh = append(seq_fresh);
  s.ints.push_back(0);  // never empty: every offset is a valid device address
  return s;
}

}  // namespace tnl
