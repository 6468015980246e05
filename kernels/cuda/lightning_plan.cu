// Host-side plan of a Lightning prefill launch: cuts sequences into segments so
// that num_segments · H · (e / EV) CTAs fill the chip (model-spec §5.3 allows any
// split: a segment continues from the state its predecessor leaves).
#include <algorithm>
#include <array>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/lightning_tile.cuh"

namespace tnl::cuda {
namespace {
constexpr int64_t kLightningUncutTokens = 1024;  // see launchers.h

// The segment length for a sequence of n tokens cut into pieces of `segment`:
// `segment` itself, unless the last piece is a short tail that the others can take
// at little cost: then the blocks are spread evenly over one piece fewer. Every
// piece but the last goes through the states pass (K and V read once more), so a
// tail costs a whole extra piece of that traffic: at 32k tokens, four sequences,
// 16 heads, pieces of 249, 249 and 14 blocks read 97% of K and V twice, two of 256
// blocks half. Spread only where each piece grows by at most an eighth: a CTA walks
// its piece's blocks in series, and short prompts' few-block pieces would lengthen
// by half (measured on the H100 in docs/architecture.md).
int64_t spread_tail(int64_t n, int64_t segment, int64_t align) {
  const int64_t pieces = detail::ceil_div(n, segment);
  if (pieces < 2) return segment;
  const int64_t blocks = detail::ceil_div(n, align), piece_blocks = segment / align;
  const int64_t tail_blocks = blocks - (pieces - 1) * piece_blocks;
  const int64_t growth = detail::ceil_div(tail_blocks, pieces - 1);
  if (8 * growth > piece_blocks) return segment;
  return detail::ceil_div(blocks, pieces - 1) * align;
}

// The states pass's parts of every cut sequence (LightningPlan::parts) and the
// sequences' multi entries. `cut`: per cut sequence, its seq, first segment and count.
void plan_state_parts(LightningPlan& plan, const std::vector<std::array<int32_t, 3>>& cut, int64_t heads,
                      int64_t sms, int32_t state_parts, int64_t align) {
  int64_t nonlast = 0;
  for (const auto& c : cut) nonlast += c[2] - 1;
  int64_t per = state_parts, min_part = align;
  if (state_parts <= 0) {  // chosen: one CTA a part and head (the warpgroup pass takes a whole head)
    const int64_t ctas = std::max<int64_t>(1, nonlast * heads);
    per = ctas < sms ? std::min<int64_t>(kLightningMaxStateParts, sms / ctas) : 1;
    min_part = kLightningMinSegment;
  }
  for (const auto& [seq, first, count] : cut) {
    const int32_t first_part = plan.num_parts;
    for (int32_t j = first; j < first + count - 1; ++j) {
      const int64_t begin = plan.segments[4 * j], len = plan.segments[4 * j + 1];
      const int64_t part = std::max(min_part, detail::ceil_div(detail::ceil_div(len, per), align) * align);
      for (int64_t off = 0; off < len; off += part) {
        plan.parts.insert(plan.parts.end(), {int32_t(begin + off), int32_t(std::min(part, len - off)), seq, 0});
        ++plan.num_parts;
      }
    }
    plan.multi.insert(plan.multi.end(), {seq, first, count, first_part, plan.num_parts - first_part});
    ++plan.num_multi;
  }
}
}  // namespace

LightningPlan plan_lightning(const std::vector<int32_t>& seq_lens, int64_t heads, int64_t e, int64_t target_ctas,
                             int32_t max_segment, int32_t state_parts) {
  constexpr int64_t kAlign = 64;  // segments start on block boundaries of every tile shape
  const int64_t slices = e / detail::lightning_slice(e);
  int64_t total = 0;
  int32_t max_len = 0;
  for (int32_t n : seq_lens) {
    total += n;
    max_len = std::max(max_len, n);
  }
  int64_t segment = INT32_MAX;
  const int64_t sms = target_ctas / 2;
  const int narrow = max_segment == 0 ? detail::lightning_narrow_slice(e) : 0;  // 0: none
  const int64_t seqs = int64_t(seq_lens.size());
  // Whole sequences in narrow CTAs: only where the wide ones would be fewer than
  // the SMs and the narrow ones fill them (the case measured).
  const bool uncut_narrow = narrow && seqs * heads * slices < sms && seqs * heads * (e / narrow) >= sms &&
                            max_len <= kLightningUncutTokens;
  if (!uncut_narrow && seqs * heads * slices < target_ctas && target_ctas > 0) {
    const int64_t want = detail::ceil_div(total * heads * slices, target_ctas);
    segment = std::max<int64_t>(kLightningMinSegment, detail::ceil_div(want, kAlign) * kAlign);
  }
  if (max_segment > 0) segment = std::min<int64_t>(segment, detail::ceil_div(max_segment, kAlign) * kAlign);

  LightningPlan plan;
  std::vector<std::array<int32_t, 3>> cut_seqs;  // seq, first segment, count
  int64_t begin = 0;
  for (size_t s = 0; s < seq_lens.size(); ++s) {
    const int64_t n = seq_lens[s];
    const int64_t cut = max_segment > 0 ? segment : spread_tail(n, segment, kAlign);
    const int32_t first = plan.num_segments;
    int64_t count = 0;
    for (int64_t off = 0; off < n || (n == 0 && off == 0); off += cut) {
      const int64_t len = std::min<int64_t>(cut, n - off);
      int32_t flags = 0;
      if (off == 0) flags |= LightningPlan::kFirst;
      if (off + len >= n) flags |= LightningPlan::kLast;
      plan.segments.insert(plan.segments.end(), {int32_t(begin + off), int32_t(len), int32_t(s), flags});
      plan.max_segment_len = std::max<int32_t>(plan.max_segment_len, int32_t(len));
      ++plan.num_segments;
      ++count;
      if (n == 0) break;
    }
    if (count > 1) cut_seqs.push_back({int32_t(s), first, int32_t(count)});
    begin += n;
  }
  plan_state_parts(plan, cut_seqs, heads, sms, state_parts, kAlign);
  if (narrow && int64_t(plan.num_segments) * heads * slices < sms) plan.slice_columns = narrow;
  return plan;
}

namespace {
// The most cut pieces (segments beyond each sequence's first) any step of at most
// max_tokens tokens takes: a cutting segment is at least kLightningMinSegment and at
// least total · heads · slices / target_ctas tokens, so all sequences together
// take at most min(max_tokens / kLightningMinSegment, target_ctas / (heads · slices)).
int64_t max_cut_pieces(int64_t max_tokens, int64_t heads, int64_t e, int64_t target_ctas) {
  const int64_t slices = e / detail::lightning_slice(e);
  return std::max<int64_t>(
      0, std::min(max_tokens / kLightningMinSegment, target_ctas / std::max<int64_t>(1, heads * slices)));
}
}  // namespace

int64_t lightning_max_segments(int64_t max_tokens, int64_t max_seqs, int64_t heads, int64_t e, int64_t target_ctas) {
  // A sequence of n tokens takes ⌈n / segment⌉ ≤ n / segment + 1 segments.
  return max_cut_pieces(max_tokens, heads, e, target_ctas) + max_seqs;
}

int64_t lightning_max_parts(int64_t max_tokens, int64_t heads, int64_t e, int64_t target_ctas) {
  // Non-last segments number at most the cut pieces; chosen parts split them only
  // while parts · heads stays within the SMs (target_ctas / 2).
  return std::max(max_cut_pieces(max_tokens, heads, e, target_ctas), target_ctas / 2 / std::max<int64_t>(1, heads));
}

int64_t lightning_scratch_floats(const LightningPlan& plan, int64_t heads, int64_t ek, int64_t e) {
  return plan.num_multi ? int64_t(plan.num_segments + plan.num_parts) * heads * ek * e : 0;
}

}  // namespace tnl::cuda
