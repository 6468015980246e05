#include "engine/constraints/code_point_set.h"

#include <algorithm>

namespace tnl::constraints {

CodePointSet CodePointSet::all() {
  CodePointSet s;
  s.add_range(0, kSurrogateFirst - 1);
  s.add_range(kSurrogateLast + 1, kMaxCodePoint);
  return s;
}

void CodePointSet::add_range(uint32_t lo, uint32_t hi) {
  hi = std::min(hi, kMaxCodePoint);
  if (lo > hi) return;
  // Invariant kept: ranges_ sorted by start, disjoint and not touching.
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), std::make_pair(lo, lo));
  if (it != ranges_.begin() && std::prev(it)->second + 1 >= lo) --it;
  auto last = it;
  while (last != ranges_.end() && last->first <= hi + 1) {
    lo = std::min(lo, last->first);
    hi = std::max(hi, last->second);
    ++last;
  }
  it = ranges_.erase(it, last);
  ranges_.insert(it, {lo, hi});
}

void CodePointSet::add_set(const CodePointSet& other) {
  for (const auto& [lo, hi] : other.ranges_) add_range(lo, hi);
}

CodePointSet CodePointSet::complement() const {
  CodePointSet out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges_) {
    if (lo > next) out.add_range(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.add_range(next, kMaxCodePoint);
  // Surrogates are not scalar values: never part of a set we encode.
  CodePointSet result;
  for (const auto& [lo, hi] : out.ranges_) {
    if (hi < kSurrogateFirst || lo > kSurrogateLast) {
      result.ranges_.push_back({lo, hi});
      continue;
    }
    if (lo < kSurrogateFirst) result.ranges_.push_back({lo, kSurrogateFirst - 1});
    if (hi > kSurrogateLast) result.ranges_.push_back({kSurrogateLast + 1, hi});
  }
  return result;
}

CodePointSet CodePointSet::minus(const CodePointSet& other) const {
  CodePointSet out;
  for (const auto& [lo, hi] : ranges_) {
    uint32_t start = lo;
    for (const auto& [olo, ohi] : other.ranges_) {
      if (ohi < start || olo > hi) continue;
      if (olo > start) out.ranges_.push_back({start, olo - 1});
      if (ohi >= hi) {
        start = hi + 1;
        break;
      }
      start = ohi + 1;
    }
    if (start <= hi && start >= lo) out.ranges_.push_back({start, hi});
  }
  return out;
}

bool CodePointSet::contains(uint32_t cp) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(cp, kMaxCodePoint + 1));
  if (it == ranges_.begin()) return false;
  --it;
  return it->first <= cp && cp <= it->second;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Splits [lo, hi] until each piece's encodings form a product of byte ranges:
// same encoded length, and at every continuation byte either the higher bytes
// agree or the lower bytes cover their full range.
void split_to_sequences(uint32_t lo, uint32_t hi, std::vector<Utf8Sequence>& out) {
  if (lo <= kSurrogateLast && hi >= kSurrogateFirst) {
    if (lo < kSurrogateFirst) split_to_sequences(lo, kSurrogateFirst - 1, out);
    if (hi > kSurrogateLast) split_to_sequences(kSurrogateLast + 1, hi, out);
    return;
  }
  for (uint32_t bound : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= bound && hi > bound) {
      split_to_sequences(lo, bound, out);
      split_to_sequences(bound + 1, hi, out);
      return;
    }
  }
  if (hi < 0x80) {
    out.push_back({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}});
    return;
  }
  const int length = hi < 0x800 ? 2 : hi < 0x10000 ? 3 : 4;
  for (int i = 1; i < length; ++i) {
    const uint32_t low_mask = (1u << (6 * i)) - 1;
    if ((lo & ~low_mask) == (hi & ~low_mask)) continue;
    if ((lo & low_mask) != 0) {
      split_to_sequences(lo, lo | low_mask, out);
      split_to_sequences((lo | low_mask) + 1, hi, out);
      return;
    }
    if ((hi & low_mask) != low_mask) {
      split_to_sequences(lo, (hi & ~low_mask) - 1, out);
      split_to_sequences(hi & ~low_mask, hi, out);
      return;
    }
  }
  std::string a, b;
  append_utf8(a, lo);
  append_utf8(b, hi);
  Utf8Sequence seq;
  for (size_t k = 0; k < a.size(); ++k) {
    seq.push_back({static_cast<uint8_t>(a[k]), static_cast<uint8_t>(b[k])});
  }
  out.push_back(std::move(seq));
}

}  // namespace

std::vector<Utf8Sequence> CodePointSet::utf8_sequences() const {
  std::vector<Utf8Sequence> out;
  for (const auto& [lo, hi] : ranges_) split_to_sequences(lo, hi, out);
  return out;
}

}  // namespace tnl::constraints
