// ByteSet: a set of byte values (0..255), the alphabet of the byte-level automaton.
#pragma once

#include <cstdint>
#include <functional>

namespace tnl::constraints {

struct ByteSet {
  uint64_t words[4] = {0, 0, 0, 0};

  static ByteSet single(uint8_t b) {
    ByteSet s;
    s.add(b);
    return s;
  }
  static ByteSet range(uint8_t lo, uint8_t hi) {
    ByteSet s;
    s.add_range(lo, hi);
    return s;
  }
  void add(uint8_t b) { words[b >> 6] |= uint64_t{1} << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) add(static_cast<uint8_t>(b));
  }
  void remove(uint8_t b) { words[b >> 6] &= ~(uint64_t{1} << (b & 63)); }
  bool contains(uint8_t b) const { return (words[b >> 6] >> (b & 63)) & 1; }
  bool empty() const { return (words[0] | words[1] | words[2] | words[3]) == 0; }
  ByteSet& operator|=(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) words[i] |= o.words[i];
    return *this;
  }
  friend bool operator==(const ByteSet&, const ByteSet&) = default;
};

struct ByteSetHash {
  size_t operator()(const ByteSet& s) const {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint64_t w : s.words) h = (h ^ w) * 0x100000001b3ull + (h >> 29);
    return static_cast<size_t>(h);
  }
};

}  // namespace tnl::constraints
