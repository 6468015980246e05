#include "engine/tokenizer/word_boundary_split.h"

#include <algorithm>

namespace tnl {
std::vector<std::string_view> split_at_word_boundaries(std::string_view text, WordSplit mode, size_t parts) {
  if (mode == WordSplit::kNone || parts <= 1 || text.size() < 3) return {text};
  std::vector<std::string_view> out;
  size_t begin = 0;  // start of the current part
  for (size_t k = 1; k < parts; ++k) {
    // The first safe space at or after this share's end (and past the current part's start).
    size_t i = std::max(text.size() * k / parts, begin + 1);
    while (i < text.size() && !safe_space(text, i)) ++i;
    if (i >= text.size()) break;
    out.push_back(text.substr(begin, i - begin));
    begin = part_start_after(i, mode);
  }
  out.push_back(text.substr(begin));
  return out;
}

}  // namespace tnl
