// Vocabularies for tnl-constraint-bench: a real SentencePiece tokenizer's, or a
// synthetic one of any size built from corpus substrings (for sizes no shipped
// tokenizer has, e.g. 64k).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/constraints/constraint.h"
#include "engine/status.h"

namespace tnl::tools {

// Ids 0..3: <pad> <s> </s> <unk> (special, EOS = 2), then the 256 single bytes
// (byte fallback), JSON punctuation, the numbers 0..999 with and without a
// leading space, then the corpus substrings (2..16 bytes, not crossing a line)
// with the largest count × (length - 1), until `size` tokens.
std::shared_ptr<TokenVocabulary> synthetic_vocabulary(const std::vector<std::string>& corpus, int32_t size);

// The pieces of dir/tokenizer.model as bytes ("▁" → " ", "<0xAB>" → byte).
Expected<std::shared_ptr<TokenVocabulary>> tokenizer_vocabulary(const std::filesystem::path& dir);

// Greedy longest-match tokenisation over the emittable tokens.
std::vector<int32_t> greedy_tokenize(const TokenVocabulary& vocabulary, const std::string& text);

}  // namespace tnl::tools
