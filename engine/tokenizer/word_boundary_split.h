// Cutting a text into parts that a word-separable SentencePiece model encodes
// independently (see Tokenizer::word_separable): each cut sits at a single ASCII
// space between an ASCII non-space character and an ASCII letter or digit, where
// no normalizer rule, merge or piece of such a model reaches across.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace tnl {

enum class WordSplit {
  kNone,       // the model is not word-separable: never cut
  kDropSpace,  // the model adds "▁" before every text (add_dummy_prefix): a part starts after the space
  kKeepSpace,  // the model escapes the space itself: a part starts at the space
};

// Whether text[i] is a safe space: "x y" with x visible ASCII and y an ASCII
// letter or digit. Inline: scans call it for every space of long texts.
inline bool safe_space(std::string_view text, size_t i) {
  if (i == 0 || i + 1 >= text.size() || text[i] != ' ') return false;
  const char before = text[i - 1], after = text[i + 1];
  return before > ' ' && before < 0x7f &&
         ((after >= '0' && after <= '9') || (after >= 'a' && after <= 'z') || (after >= 'A' && after <= 'Z'));
}

// Where the part after the safe space text[space] begins: past the space
// (kDropSpace) or at it (kKeepSpace).
inline size_t part_start_after(size_t space, WordSplit mode) { return mode == WordSplit::kDropSpace ? space + 1 : space; }

// At most `parts` parts, cut at safe spaces near equal shares of the text;
// fewer when a share has no safe space (then it stays with its neighbour).
// One part, the whole text, for kNone or parts ≤ 1.
std::vector<std::string_view> split_at_word_boundaries(std::string_view text, WordSplit mode, size_t parts);

}  // namespace tnl
