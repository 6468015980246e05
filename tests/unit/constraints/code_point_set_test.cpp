// CodePointSet: range algebra, and UTF-8 byte patterns that match exactly the
// encodings of the set's members (checked code point by code point).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/constraints/code_point_set.h"
#include "engine/constraints/utf8_text.h"

namespace tnl::constraints {
namespace {

int matching_sequences(const std::vector<Utf8Sequence>& sequences, const std::string& bytes) {
  int count = 0;
  for (const Utf8Sequence& seq : sequences) {
    if (seq.size() != bytes.size()) continue;
    bool match = true;
    for (size_t i = 0; i < seq.size() && match; ++i) {
      const auto b = static_cast<uint8_t>(bytes[i]);
      match = seq[i].first <= b && b <= seq[i].second;
    }
    count += match;
  }
  return count;
}

TEST(CodePointSet, RangesMergeAndComplementSkipsSurrogates) {
  CodePointSet s;
  s.add_range('a', 'f');
  s.add_range('d', 'k');
  s.add('l');
  s.add_range('x', 'z');
  ASSERT_EQ(s.ranges().size(), 2u);
  EXPECT_EQ(s.ranges()[0], std::make_pair(uint32_t{'a'}, uint32_t{'l'}));
  EXPECT_TRUE(s.contains('k'));
  EXPECT_FALSE(s.contains('m'));
  const CodePointSet c = s.complement();
  EXPECT_FALSE(c.contains('a'));
  EXPECT_TRUE(c.contains('m'));
  EXPECT_FALSE(c.contains(0xD800));
  EXPECT_FALSE(c.contains(0xDFFF));
  EXPECT_TRUE(c.contains(0xE000));
  EXPECT_TRUE(c.contains(0x10FFFF));
  EXPECT_EQ(CodePointSet::all().minus(CodePointSet::range(0, 0x7F)).ranges().front().first, 0x80u);
  EXPECT_EQ(s.minus(CodePointSet::range('c', 'y')).ranges(),
            (std::vector<std::pair<uint32_t, uint32_t>>{{'a', 'b'}, {'z', 'z'}}));
}

TEST(CodePointSet, Utf8SequencesMatchExactlyTheMembers) {
  std::mt19937 rng(5);
  std::vector<CodePointSet> sets = {CodePointSet::all(), CodePointSet::range(0x7F, 0x80),
                                    CodePointSet::range(0x7FF, 0x10000), CodePointSet::range(0xD000, 0xE100),
                                    CodePointSet::range(0x3B1, 0x3C9), CodePointSet::range('a', 'z').complement()};
  for (int i = 0; i < 20; ++i) {
    CodePointSet s;
    for (int k = 0; k < 4; ++k) {
      const uint32_t lo = rng() % 0x110000;
      s.add_range(lo, lo + rng() % (1u << (rng() % 20)));
    }
    sets.push_back(s);
  }
  std::vector<uint32_t> probes;
  for (uint32_t b : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu, 0xD7FFu, 0xE000u}) {
    for (int d = -2; d <= 2; ++d) probes.push_back(b + d);
  }
  for (int i = 0; i < 4000; ++i) probes.push_back(rng() % 0x110000);
  for (const CodePointSet& s : sets) {
    const auto sequences = s.utf8_sequences();
    for (const auto& [lo, hi] : s.ranges()) {
      probes.push_back(lo);
      probes.push_back(hi);
    }
    for (uint32_t cp : probes) {
      if (cp > kMaxCodePoint || (cp >= kSurrogateFirst && cp <= kSurrogateLast)) continue;
      std::string bytes;
      append_utf8(bytes, cp);
      EXPECT_EQ(matching_sequences(sequences, bytes), s.contains(cp) ? 1 : 0) << std::hex << cp;
    }
  }
}

TEST(Utf8Text, DecodeRoundTripsAndRejectsInvalid) {
  for (uint32_t cp : {0x24u, 0xA2u, 0x939u, 0x20ACu, 0xD55Cu, 0x10348u, 0x10FFFFu}) {
    std::string bytes;
    append_utf8(bytes, cp);
    size_t pos = 0;
    EXPECT_EQ(decode_utf8(bytes, &pos), cp);
    EXPECT_EQ(pos, bytes.size());
  }
  for (std::string bad : {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"}) {
    size_t pos = 0;
    EXPECT_FALSE(decode_utf8(bad, &pos).has_value());
    EXPECT_EQ(pos, 0u);
  }
}

}  // namespace
}  // namespace tnl::constraints
