// CodePointSet: a set of Unicode scalar values kept as sorted, disjoint,
// non-adjacent inclusive ranges. Character classes of regexes and grammars are
// sets of code points; the automaton works on bytes, so utf8_sequences() turns
// a set into the byte-range sequences of its UTF-8 encodings.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tnl::constraints {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;
inline constexpr uint32_t kSurrogateFirst = 0xD800;
inline constexpr uint32_t kSurrogateLast = 0xDFFF;

// One UTF-8 encoding pattern: byte i of the encoding lies in ranges[i] (inclusive).
using Utf8Sequence = std::vector<std::pair<uint8_t, uint8_t>>;

class CodePointSet {
 public:
  CodePointSet() = default;
  static CodePointSet single(uint32_t cp) { return range(cp, cp); }
  static CodePointSet range(uint32_t lo, uint32_t hi) {
    CodePointSet s;
    s.add_range(lo, hi);
    return s;
  }
  // Every scalar value: 0..0x10FFFF without the surrogates.
  static CodePointSet all();

  void add(uint32_t cp) { add_range(cp, cp); }
  void add_range(uint32_t lo, uint32_t hi);  // ignores empty ranges, clamps to kMaxCodePoint
  void add_set(const CodePointSet& other);
  // The scalar values not in this set.
  CodePointSet complement() const;
  CodePointSet minus(const CodePointSet& other) const;
  bool contains(uint32_t cp) const;
  bool empty() const { return ranges_.empty(); }
  // Largest member; 0 for the empty set.
  uint32_t max_code_point() const { return ranges_.empty() ? 0 : ranges_.back().second; }
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return ranges_; }
  // The UTF-8 byte patterns of the set's members (surrogates never included);
  // the patterns are disjoint and together match exactly the encodings.
  std::vector<Utf8Sequence> utf8_sequences() const;

  friend bool operator==(const CodePointSet&, const CodePointSet&) = default;
  friend bool operator<(const CodePointSet& a, const CodePointSet& b) { return a.ranges_ < b.ranges_; }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
};

// Appends the UTF-8 encoding of a scalar value (cp <= 0x10FFFF, not a surrogate).
void append_utf8(std::string& out, uint32_t cp);

}  // namespace tnl::constraints
