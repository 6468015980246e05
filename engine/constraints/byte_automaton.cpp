#include "engine/constraints/byte_automaton.h"

#include <algorithm>

namespace tnl::constraints {
namespace {

constexpr uint64_t kBottomHash = 0x243f6a8885a308d3ull;
constexpr uint64_t kUnknownHash = 0x13198a2e03707344ull;

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x7f4a7c159e3779b9ull + (a << 6) + (a >> 2));
  h ^= h >> 31;
  return h * 0xbf58476d1ce4e5b9ull;
}

}  // namespace

FrameArena::FrameArena(uint32_t max_depth) : max_depth_(max_depth) {
  frames_.push_back({0, kBottomFrame, 0, kBottomHash});
  frames_.push_back({0, kUnknownFrame, 0, kUnknownHash});
  recent_.fill(kNoFrame);
}

uint32_t FrameArena::push(uint32_t return_position, uint32_t parent) {
  const Frame& below = frames_[parent];
  if (below.depth + 1 > max_depth_) return kNoFrame;
  const uint64_t key = mix(return_position, parent);
  uint32_t& slot = recent_[key & (recent_.size() - 1)];
  if (slot < frames_.size() && frames_[slot].return_position == return_position && frames_[slot].parent == parent) {
    return slot;
  }
  const uint32_t id = static_cast<uint32_t>(frames_.size());
  deepest_pushed_ = std::max(deepest_pushed_, below.depth + 1);
  frames_.push_back({return_position, parent, below.depth + 1, mix(return_position, below.hash)});
  slot = id;
  return id;
}

bool FrameArena::same_stack(uint32_t a, uint32_t b) const {
  while (a != b) {
    if (a <= kUnknownFrame || b <= kUnknownFrame) return false;
    const Frame& fa = frames_[a];
    const Frame& fb = frames_[b];
    if (fa.hash != fb.hash || fa.return_position != fb.return_position || fa.depth != fb.depth) return false;
    a = fa.parent;
    b = fb.parent;
  }
  return true;
}

ByteAutomaton::ByteAutomaton(const Grammar& grammar, const ConstraintLimits& limits)
    : grammar_(grammar), max_live_stacks_(limits.max_live_stacks) {}

void ByteAutomaton::start(FrameArena& arena, std::vector<StackRef>& out) const {
  const size_t begin = out.size();
  enter(grammar_.start_position, kBottomFrame, arena, out);
  dedup(out, begin, arena);  // closures are bounded at compile time; the start never overflows in practice
}

uint32_t ByteAutomaton::enter(uint32_t position, uint32_t frame, FrameArena& arena, std::vector<StackRef>& out) const {
  uint32_t flags = 0;
  // Pops walk down the stack, so this loop ends within depth(frame) rounds.
  for (;;) {
    const GrammarElement& e = grammar_.elements[position];
    if (e.kind == ElementKind::kBytes && e.repeat == ElementRepeat::kOnce) {
      out.push_back({position, frame});
      return flags;
    }
    bool pops = false;
    for (const ClosureItem& item : grammar_.closure(position)) {
      if (item.position == kPopFrame) {
        pops = true;
        continue;
      }
      uint32_t f = frame;
      for (uint32_t ret : grammar_.pushes(item)) {
        f = arena.push(ret, f);
        if (f == kNoFrame) break;
      }
      if (f != kNoFrame) out.push_back({item.position, f});
    }
    if (!pops) return flags;
    flags |= kPopped;
    if (frame == kBottomFrame) {
      out.push_back({kAcceptPosition, kBottomFrame});
      return flags;
    }
    if (frame == kUnknownFrame) return flags | kEscaped;
    const Frame popped = arena.frame(frame);
    position = popped.return_position;
    frame = popped.parent;
  }
}

uint32_t ByteAutomaton::pop_frame(uint32_t frame, FrameArena& arena, std::vector<StackRef>& out) const {
  if (frame == kBottomFrame) {
    out.push_back({kAcceptPosition, kBottomFrame});
    return 0;
  }
  const size_t begin = out.size();
  const Frame popped = arena.frame(frame);
  enter(popped.return_position, popped.parent, arena, out);
  return dedup(out, begin, arena);
}

uint32_t ByteAutomaton::advance(std::span<const StackRef> from, uint8_t byte, FrameArena& arena,
                                std::vector<StackRef>& out) const {
  uint32_t flags = 0;
  const size_t begin = out.size();
  int sources = 0;
  // Dedup along the way once the raw output is several times the bound, so
  // an ambiguous grammar cannot build a huge set before failing.
  const size_t dedup_at = 8 * size_t{max_live_stacks_};
  for (const StackRef& s : from) {
    if (s.position == kAcceptPosition || !grammar_.bytes_at(s.position).contains(byte)) continue;
    ++sources;
    const bool stays = grammar_.elements[s.position].repeat == ElementRepeat::kStar;
    flags |= enter(stays ? s.position : s.position + 1, s.frame, arena, out);
    if (out.size() - begin > dedup_at && (dedup(out, begin, arena) & kOverflow)) {
      return (flags & kEscaped) | kOverflow;
    }
  }
  // One source without pops yields distinct stacks (its closure items are
  // distinct), so only merges and pops need deduping.
  if (sources > 1 || (flags & kPopped)) return (flags & kEscaped) | dedup(out, begin, arena);
  if (out.size() - begin > max_live_stacks_) {
    out.resize(begin + max_live_stacks_);
    flags |= kOverflow;
  }
  return flags & (kEscaped | kOverflow);
}

uint32_t ByteAutomaton::dedup(std::vector<StackRef>& out, size_t begin, const FrameArena& arena) const {
  const size_t n = out.size() - begin;
  if (n > 1) {
    auto same = [&](const StackRef& a, const StackRef& b) {
      return a.position == b.position && arena.same_stack(a.frame, b.frame);
    };
    size_t kept = begin + 1;
    if (n <= 16) {
      for (size_t i = begin + 1; i < out.size(); ++i) {
        bool duplicate = false;
        for (size_t j = begin; j < kept && !duplicate; ++j) duplicate = same(out[i], out[j]);
        if (!duplicate) out[kept++] = out[i];
      }
    } else {
      std::sort(out.begin() + begin, out.end(), [&](const StackRef& a, const StackRef& b) {
        if (a.position != b.position) return a.position < b.position;
        return arena.hash(a.frame) < arena.hash(b.frame);
      });
      // Equal stacks are adjacent up to hash collisions between different
      // stacks of one position, which at worst keeps a duplicate.
      for (size_t i = begin + 1; i < out.size(); ++i) {
        if (!same(out[i], out[kept - 1])) out[kept++] = out[i];
      }
    }
    out.resize(kept);
  }
  if (out.size() - begin <= max_live_stacks_) return 0;
  out.resize(begin + max_live_stacks_);
  return kOverflow;
}

uint32_t ByteAutomaton::min_bytes_to_accept(std::span<const StackRef> stacks, const FrameArena& arena) const {
  uint32_t best = kInfiniteBytes;
  for (const StackRef& s : stacks) {
    if (s.position == kAcceptPosition) return 0;
    uint64_t cost = grammar_.min_bytes_to_end[s.position];
    for (uint32_t f = s.frame; f > kUnknownFrame; f = arena.frame(f).parent) {
      cost += grammar_.min_bytes_to_end[arena.frame(f).return_position];
    }
    best = static_cast<uint32_t>(std::min<uint64_t>(best, cost));
  }
  return best;
}

bool ByteAutomaton::is_accepting(std::span<const StackRef> stacks) {
  for (const StackRef& s : stacks) {
    if (s.position == kAcceptPosition) return true;
  }
  return false;
}

}  // namespace tnl::constraints
