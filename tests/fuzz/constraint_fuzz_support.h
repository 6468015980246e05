// Shared body of the constraint fuzzers: compile the input as one constraint
// kind over a small vocabulary, then walk a few tokens checking the matcher's
// guarantees. Built with ASan and UBSan; any broken guarantee aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/constraints/compiled_constraint.h"
#include "engine/constraints/constraint.h"
#include "engine/constraints/constraint_matcher.h"

namespace tnl::fuzz {

// <pad> <s> </s> (EOS = 2), the 256 single bytes, and multi-byte pieces.
inline std::shared_ptr<const TokenTrie> fuzz_trie() {
  static const std::shared_ptr<const TokenTrie> trie = [] {
    auto v = std::make_shared<TokenVocabulary>();
    v->bytes = {"<pad>", "<s>", "</s>"};
    v->special = {true, true, true};
    v->eos_id = 2;
    for (int b = 0; b < 256; ++b) v->bytes.push_back(std::string(1, static_cast<char>(b)));
    for (const char* p : {"{\"", "\":", "\": ", "\", \"", "\"}", "},", "[{", "}]", "true", "false", "null", "12",
                          "0.", "e+", "-1", "\\n", "\\u00", "\\\"", "é", "日本", "😀", "\xe6\x97", " the", "ab",
                          "abc", "aa", "((", "))", "()", "  ", "\n\n", "x1", "zz"}) {
      v->bytes.push_back(p);
    }
    v->special.resize(v->bytes.size(), false);
    return build_token_trie(v);
  }();
  return trie;
}

inline bool bit(const std::vector<uint32_t>& mask, int32_t t) { return (mask[t >> 5] >> (t & 31)) & 1; }

// Compiles `text` as `kind`; on success walks up to 12 tokens chosen from the
// mask by the input bytes, checking at each step that the mask matches
// allows() on every token, that EOS is set exactly when accepting, and that
// every masked-in token is accepted. A matcher that failed (grammar too
// ambiguous) must allow nothing.
inline void fuzz_constraint(ConstraintSpec::Kind kind, const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // Smaller size limits than the defaults keep each input fast under ASan;
  // the logic under test is the same.
  ConstraintLimits limits;
  limits.max_grammar_elements = 50000;
  limits.max_closure_items = 100000;
  limits.max_repeat_bound = 2000;
  auto compiled = compile_constraint({kind, text}, fuzz_trie(), limits);
  if (!compiled) {
    if (compiled.status().code() != StatusCode::kInvalidArgument || compiled.status().message().empty()) std::abort();
    return;
  }
  ConstraintMatcher matcher(*compiled);
  const int32_t vocab = fuzz_trie()->vocab_size();
  std::vector<uint32_t> mask(matcher.mask_words());
  uint32_t choice = 0x9e3779b9u;
  for (size_t i = 0; i < size; ++i) choice = choice * 31 + data[i];
  for (int step = 0; step < 12; ++step) {
    matcher.fill_allowed(mask);
    if (matcher.failed()) {
      // Too ambiguous: the mask must be empty and accept must refuse.
      for (uint32_t w : mask) {
        if (w != 0) std::abort();
      }
      if (matcher.accept(2).is_ok() || matcher.error().code() != StatusCode::kInvalidArgument) std::abort();
      return;
    }
    std::vector<int32_t> allowed;
    for (int32_t t = 0; t < vocab; ++t) {
      const bool allows = matcher.allows(t);
      if (matcher.failed()) return;  // the direct run outgrew the stack bound first
      if (bit(mask, t) != allows) std::abort();  // tables and direct run disagree
      if (bit(mask, t)) allowed.push_back(t);
    }
    if (bit(mask, 2) != matcher.is_accepting()) std::abort();
    if (allowed.empty()) return;  // possible only at the stack-depth limit
    choice = choice * 1103515245u + 12345u;
    const int32_t token = allowed[(choice >> 8) % allowed.size()];
    if (!matcher.accept(token).is_ok()) std::abort();
    if (token == 2) {
      matcher.fill_allowed(mask);
      for (uint32_t w : mask) {
        if (w != 0) std::abort();  // nothing after EOS
      }
      return;
    }
  }
  if (!matcher.rollback(matcher.num_accepted()).is_ok()) std::abort();
}

}  // namespace tnl::fuzz
