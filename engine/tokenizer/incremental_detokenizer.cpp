// Streaming detokenization by the prefix/read offset technique (as in Hugging
// Face TGI and vLLM): decode a short window of ids with and without the new
// ids and emit the difference. Decoding a window, rather than one piece at a
// time, lets SentencePiece apply its own rules (the dropped leading "▁" of a
// text, byte-fallback pieces joined into UTF-8) consistently on both sides, so
// the difference is exactly the new text. An ordinary piece that follows visible,
// fully emitted text adds Tokenizer::following_text (checked against
// SentencePiece at load): that common case skips the two decodes.
//
// Invariants:
//  * ids_[prefix_offset_, read_offset_) is context whose text was emitted;
//    ids_[read_offset_, end) has not been emitted yet.
//  * read_offset_ only moves to a point where the decoded text ends in a
//    complete character, so the text of [prefix_offset_, read_offset_) is a
//    byte prefix of the text of [prefix_offset_, end) and the cut between them
//    falls on a character boundary: every emitted piece is valid UTF-8.
#include <algorithm>
#include <string_view>

#include "engine/tokenizer/tokenizer.h"

namespace tnl {
namespace {

// Prompt ids kept as context: enough for the first generated piece to see
// that it follows a word (so "▁world" decodes to " world").
constexpr size_t kPromptContextIds = 4;
// More byte pieces than one UTF-8 character can have (4): if the text still
// ends in U+FFFD, the bytes are invalid rather than incomplete; emit them.
constexpr size_t kMaxHeldIds = 4;
// Emitted ids kept before the vector is compacted (bounds memory per stream).
constexpr size_t kCompactAfterIds = 1024;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool is_utf8_continuation(uint8_t byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer,
                                               const std::vector<int32_t>& prompt_ids)
    : tokenizer_(tokenizer) {
  size_t begin = prompt_ids.size() - std::min(prompt_ids.size(), kPromptContextIds);
  // Do not start the context inside a byte-fallback character: its lone
  // continuation bytes would decode to U+FFFD.
  while (begin > 0) {
    const auto byte = tokenizer_.byte_value(prompt_ids[begin]);
    if (!byte || !is_utf8_continuation(*byte)) break;
    --begin;
  }
  ids_.assign(prompt_ids.begin() + static_cast<std::ptrdiff_t>(begin), prompt_ids.end());
  prefix_offset_ = 0;
  read_offset_ = ids_.size();
}

std::string IncrementalDetokenizer::decode_range(size_t begin, size_t end) {
  window_.assign(ids_.begin() + static_cast<std::ptrdiff_t>(begin),
                 ids_.begin() + static_cast<std::ptrdiff_t>(end));
  return tokenizer_.decode(window_);
}

// Whether appending `id` adds exactly tokenizer.following_text(id): nothing is
// held back and the context already decodes to visible text (so the new piece is
// not at the start of the text, where SentencePiece drops a leading space).
bool IncrementalDetokenizer::appends_plainly(int32_t id) const {
  if (read_offset_ != ids_.size() || tokenizer_.following_text(id) == nullptr) return false;
  for (size_t i = prefix_offset_; i < read_offset_; ++i) {
    if (tokenizer_.has_visible_text(ids_[i])) return true;
  }
  return false;
}

void IncrementalDetokenizer::advance() {
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (prefix_offset_ >= kCompactAfterIds) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (appends_plainly(id)) {  // the common case, without decoding the window twice
    ids_.push_back(id);
    advance();
    return *tokenizer_.following_text(id);
  }
  ids_.push_back(id);
  const std::string prefix_text = decode_range(prefix_offset_, read_offset_);
  const std::string new_text = decode_range(prefix_offset_, ids_.size());

  const bool incomplete = new_text.ends_with(kReplacementChar) &&
                          ids_.size() - read_offset_ < kMaxHeldIds;
  if (new_text.size() <= prefix_text.size() || incomplete) return {};

  std::string emitted = new_text.substr(prefix_text.size());
  advance();
  return emitted;
}

std::string IncrementalDetokenizer::flush() {
  if (read_offset_ == ids_.size()) return {};
  const std::string prefix_text = decode_range(prefix_offset_, read_offset_);
  const std::string new_text = decode_range(prefix_offset_, ids_.size());
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size()) return {};
  return new_text.substr(prefix_text.size());
}

}  // namespace tnl
