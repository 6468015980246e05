// Grammar: the flat form the byte automaton runs on.
//
// Every alternative of every rule is a run of elements closed by a kEnd
// element; a *position* is an index into `elements`. A kBytes element matches
// one byte of byte_sets[arg]; a kRule element matches rule `arg`. Repetition of
// a single element is a flag (kOptional: zero or one, kStar: zero or more), so
// "a space here or not" and "digits" stay inside their rule instead of becoming
// helper rules.
//
// Analysis (grammar_analysis.cpp, grammar_closure.cpp) adds, per position, the
// epsilon closure: which terminal positions can match the next byte from here,
// and which return positions are pushed on the way. With those precomputed, the
// automaton never searches the grammar while reading bytes.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "engine/constraints/byte_set.h"

namespace tnl::constraints {

enum class ElementKind : uint8_t { kBytes, kRule, kEnd };
enum class ElementRepeat : uint8_t { kOnce, kOptional, kStar };

struct GrammarElement {
  ElementKind kind = ElementKind::kEnd;
  ElementRepeat repeat = ElementRepeat::kOnce;
  uint32_t arg = 0;  // kBytes: index into byte_sets; kRule: rule index
};

// A closure item with this position means "the current frame's alternative ends
// here": the automaton pops the frame and continues at its return position.
inline constexpr uint32_t kPopFrame = std::numeric_limits<uint32_t>::max();
inline constexpr uint32_t kInfiniteBytes = 1u << 30;  // saturating "no finite expansion"

struct ClosureItem {
  uint32_t position;    // a kBytes element, or kPopFrame
  uint32_t push_begin;  // return positions to push, outermost first: closure_pushes[push_begin, +push_count)
  uint32_t push_count;
};

// A repetition lowered to levels (grammar_builder.h): level j is the rule
// whose elements start at level_begin[j], all levels level_size elements with
// the same layout, and the part read per level takes at least one byte. Two
// levels whose distances to min and to max agree up to the longest token have
// the same token tables, which lets CompiledConstraint share them.
struct RepeatChain {
  std::vector<uint32_t> level_begin;
  uint32_t min;
  uint32_t max;  // kUnbounded-style: UINT32_MAX for no maximum
  uint32_t level_size = 0;
};

struct Grammar {
  std::vector<GrammarElement> elements;
  std::vector<uint32_t> alt_begin;       // first element of each alternative
  std::vector<uint32_t> rule_alt_begin;  // rule r owns alternatives [rule_alt_begin[r], rule_alt_begin[r+1])
  std::vector<ByteSet> byte_sets;
  std::vector<std::string> rule_names;   // generated helper rules are named "<rule>@<n>"
  uint32_t root_rule = 0;
  // The automaton starts at this position (a synthetic `root kEnd` alternative)
  // with an empty stack.
  uint32_t start_position = 0;
  std::vector<RepeatChain> repeat_chains;

  // --- filled by analyze_grammar / compute_closures ---
  std::vector<uint32_t> rule_min_bytes;    // fewest bytes any expansion of the rule has
  std::vector<uint32_t> min_bytes_to_end;  // per position: fewest bytes to finish its alternative
  std::vector<uint32_t> closure_begin;     // per position, size elements+1: items [closure_begin[p], closure_begin[p+1])
  std::vector<ClosureItem> closure_items;
  std::vector<uint32_t> closure_pushes;
  // Per position: its rule is only ever entered by tail calls from the start,
  // so a stack with it on top always has the empty stack below (kBottomFrame).
  std::vector<bool> bottom_only;

  uint32_t num_positions() const { return static_cast<uint32_t>(elements.size()); }
  uint32_t num_rules() const { return static_cast<uint32_t>(rule_names.size()); }
  const ByteSet& bytes_at(uint32_t position) const { return byte_sets[elements[position].arg]; }
  std::span<const ClosureItem> closure(uint32_t position) const {
    return {closure_items.data() + closure_begin[position], closure_begin[position + 1] - closure_begin[position]};
  }
  std::span<const uint32_t> pushes(const ClosureItem& item) const {
    return {closure_pushes.data() + item.push_begin, item.push_count};
  }
};

}  // namespace tnl::constraints
