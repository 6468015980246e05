// The byte-level pushdown automaton over a Grammar.
//
// A parse stack is a StackRef: the terminal position whose byte set matches the
// next byte, plus a frame id naming the return positions below it. Frames live
// in a FrameArena and are shared between stacks (a persistent linked list);
// the automaton keeps a *set* of stacks (the grammar may be ambiguous), deduped
// structurally after every byte so the set stays bounded by the distinct stacks.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar.h"

namespace tnl::constraints {

inline constexpr uint32_t kBottomFrame = 0;   // the empty stack: popping it means the root finished
inline constexpr uint32_t kUnknownFrame = 1;  // frames below a token table's start: popping it "escapes"
inline constexpr uint32_t kNoFrame = std::numeric_limits<uint32_t>::max();
inline constexpr uint32_t kAcceptPosition = std::numeric_limits<uint32_t>::max() - 1;  // the root finished

// What happened while reading a byte (bit flags returned by advance()).
inline constexpr uint32_t kEscaped = 1;   // a path popped kUnknownFrame
inline constexpr uint32_t kOverflow = 2;  // more than max_live_stacks distinct stacks: the result is cut and
                                          // callers must fail rather than use it (grammar too ambiguous)

struct StackRef {
  uint32_t position;  // a kBytes element, or kAcceptPosition
  uint32_t frame;
};

struct Frame {
  uint32_t return_position;
  uint32_t parent;
  uint32_t depth;  // frames in the stack including this one (kBottomFrame / kUnknownFrame: 0)
  uint64_t hash;   // structural: equal stacks have equal hashes
};

// Append-only storage of frames with truncation: a caller marks size(), explores,
// and truncates back, which is how mask computation stays free of side effects.
class FrameArena {
 public:
  explicit FrameArena(uint32_t max_depth);
  // The frame (return_position, parent); kNoFrame when it would exceed max_depth.
  uint32_t push(uint32_t return_position, uint32_t parent);
  const Frame& frame(uint32_t id) const { return frames_[id]; }
  uint32_t depth(uint32_t id) const { return frames_[id].depth; }
  uint64_t hash(uint32_t id) const { return frames_[id].hash; }
  size_t size() const { return frames_.size(); }
  void truncate(size_t size) { frames_.resize(size); }
  // Whether frames a and b hold the same return positions all the way down.
  bool same_stack(uint32_t a, uint32_t b) const;
  uint32_t max_depth() const { return max_depth_; }
  // Deepest frame pushed since construction or the last reset (frames kept or not).
  uint32_t deepest_pushed() const { return deepest_pushed_; }
  void reset_deepest_pushed() { deepest_pushed_ = 0; }

 private:
  std::vector<Frame> frames_;
  uint32_t max_depth_;
  uint32_t deepest_pushed_ = 0;
  // Direct-mapped memo of recent pushes, so stacks built along different
  // closure items share frames; validated on use, so truncation needs no reset.
  std::array<uint32_t, 1024> recent_{};
};

class ByteAutomaton {
 public:
  ByteAutomaton(const Grammar& grammar, const ConstraintLimits& limits);

  const Grammar& grammar() const { return grammar_; }
  // The stacks before any byte (from the start position on kBottomFrame).
  void start(FrameArena& arena, std::vector<StackRef>& out) const;
  // Stacks after popping `frame`: where it returns to (the root finished when
  // it is kBottomFrame), appended to out and deduped. Returns kOverflow or 0.
  uint32_t pop_frame(uint32_t frame, FrameArena& arena, std::vector<StackRef>& out) const;
  // Appends to `out` the stacks reached from `from` by reading `byte`, deduped;
  // returns kEscaped / kOverflow flags. `from` must not alias `out`.
  uint32_t advance(std::span<const StackRef> from, uint8_t byte, FrameArena& arena, std::vector<StackRef>& out) const;
  // Fewest bytes that complete the text from these stacks (0 when accepting).
  uint32_t min_bytes_to_accept(std::span<const StackRef> stacks, const FrameArena& arena) const;
  static bool is_accepting(std::span<const StackRef> stacks);

 private:
  // Stacks to continue from `position` (about to be matched) on `frame`,
  // appended to out. Returns kEscaped if a path popped kUnknownFrame, plus
  // kPopped if any frame was popped (which can repeat a stack).
  static constexpr uint32_t kPopped = 4;
  uint32_t enter(uint32_t position, uint32_t frame, FrameArena& arena, std::vector<StackRef>& out) const;
  // Removes repeated stacks from out[begin, end); returns kOverflow when more
  // than max_live_stacks remain (then cuts them to that many).
  uint32_t dedup(std::vector<StackRef>& out, size_t begin, const FrameArena& arena) const;

  const Grammar& grammar_;
  uint32_t max_live_stacks_;
};

}  // namespace tnl::constraints
