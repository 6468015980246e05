// Tokenizer: SentencePiece model + tokenizer_config.json of a checkpoint.
//
// The SentencePiece header is included only in tokenizer.cpp: it clashes with
// Abseil's absl::string_view (pulled in by gRPC), see shared/device.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "engine/tokenizer/word_boundary_split.h"

namespace tnl {

class Tokenizer {
 public:
  // Loads dir/tokenizer.model and the optional dir/tokenizer_config.json
  // (add_bos_token default true, add_eos_token default false).
  static Expected<std::unique_ptr<Tokenizer>> load(const std::filesystem::path& dir);
  ~Tokenizer();

  // Text → ids, with BOS/EOS as the tokenizer config says.
  std::vector<int32_t> encode(std::string_view text) const;
  // encode_plain's ids with BOS/EOS added as the tokenizer config says (what
  // encode() returns for the same text).
  std::vector<int32_t> with_special_tokens(const std::vector<int32_t>& body) const;
  // Text → ids without special tokens. A long text (≥ 2 × kMinPartBytes) of a
  // word-separable model is cut at word boundaries into parts of at least
  // kMinPartBytes, encoded at once by the caller and the tokenizer's own pool of
  // threads: the same ids as one SentencePiece call, in a fraction of the time
  // (BPE merging costs ~2 µs a token on one core, so a conversation turn's new
  // 500 tokens would cost a millisecond).
  std::vector<int32_t> encode_plain(std::string_view text) const;
  // encode_plain with the text cut into at most `parts` parts whatever its
  // length (one part when the model is not word-separable): for tests.
  std::vector<int32_t> encode_plain_in_parts(std::string_view text, size_t parts) const;
  // One SentencePiece call over the whole text: no parts, no word memo. The
  // reference the cut encodings are tested against.
  std::vector<int32_t> encode_plain_uncut(std::string_view text) const;
  // encode_plain, and where its ids may be cut: a PlainCut says that ids[0, ids)
  // are the ids of text[0, space) and that text[space] is a safe space (the text
  // after it encodes as a part of its own: word_boundary_split.h). The cuts are
  // the parts' boundaries and the text's last safe space, in text order, so that
  // a text extending this one needs little of it encoded again (PromptTokenCache).
  // None for a model that is not word-separable.
  struct PlainCut {
    size_t space = 0;
    size_t ids = 0;
  };
  std::vector<int32_t> encode_plain_with_cuts(std::string_view text, std::vector<PlainCut>* cuts) const;
  WordSplit word_split() const { return word_split_; }
  // Whether encoding may be cut at word boundaries (WordSplit): a BPE (not
  // unigram) model whose pieces never hold "▁" past their first character, whose
  // normaliser turns " x" into "▁x" (with or without the dummy prefix), and that
  // passed a self-check on mixed text at load.
  bool word_separable() const { return word_split_ != WordSplit::kNone; }
  // Parts are this long at least (SentencePiece's fixed cost per call is a few
  // µs; a part of 256 bytes is ~50 tokens, ~100 µs of merging), and at most
  // kMaxParts (the caller and kMaxParts − 1 pool threads).
  static constexpr size_t kMinPartBytes = 256;
  static constexpr size_t kMaxParts = 16;
  // Within a part, a word-separable model's words (between safe spaces) are
  // looked up in a memo of this many words (WordMemo) and encoded one by one
  // when new: the same ids, without merging common words again and again.
  static constexpr size_t kMemoWords = size_t(1) << 17;
  // Ids → text (special tokens dropped; byte-fallback pieces joined into UTF-8;
  // ids outside [0, vocab_size) dropped, e.g. from a model whose embedding
  // table is padded past the tokenizer's vocabulary). Bytes that do not form
  // UTF-8 come out as U+FFFD, so the result is always valid UTF-8.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The piece text of one id, as SentencePiece spells it (e.g. "▁the", "<0xE4>").
  std::string piece(int32_t id) const;
  // The piece with each "▁" as the space it stands for ("▁the" → " the"); empty
  // outside the vocabulary.
  std::string piece_text(int32_t id) const;
  // The byte a byte-fallback piece ("<0xE4>") stands for; nullopt for other ids.
  std::optional<uint8_t> byte_value(int32_t id) const;
  // The text an ordinary piece adds when it follows visible text ("▁the" → " the"):
  // what decode appends for it there, checked against SentencePiece at load.
  // nullptr for byte, control and unknown pieces, pieces ending in U+FFFD, and
  // every id when the check failed (a denormaliser, other rules): then only
  // decode() knows. Lets IncrementalDetokenizer skip SentencePiece per token.
  const std::string* following_text(int32_t id) const {
    const bool known = id >= 0 && size_t(id) < following_text_.size() && !following_text_[size_t(id)].empty();
    return known ? &following_text_[size_t(id)] : nullptr;
  }
  // Whether the id has a following_text with a character other than a space
  // (text after it is never at the start of the decoded text).
  bool has_visible_text(int32_t id) const {
    const std::string* text = following_text(id);
    return text != nullptr && text->find_first_not_of(' ') != std::string::npos;
  }
  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  // At most this many bytes of input text become one token: the longest piece
  // (a byte-fallback piece covers 1 byte, "▁" counts as one space), times 8 when
  // the model's normalizer does not keep text as is (whitespace runs collapse,
  // NFKC folds characters). So a text of B bytes is at least B / max_bytes_per_token()
  // tokens: a cheap bound that refuses a huge prompt before tokenizing it.
  int64_t max_bytes_per_token() const { return max_bytes_per_token_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }

 private:
  struct Impl;
  Tokenizer();
  int64_t measure_max_bytes_per_token() const;
  WordSplit detect_word_split() const;
  void build_following_texts();  // following_text_, checked against SentencePiece
  // The parts' ids, concatenated; `counts`, when given, gets each part's number of ids.
  std::vector<int32_t> encode_parts(const std::vector<std::string_view>& parts,
                                    std::vector<size_t>* counts = nullptr) const;
  std::vector<int> encode_by_words(std::string_view part) const;  // one part, its words through the memo
  std::unique_ptr<Impl> impl_;
  bool add_bos_ = true;
  bool add_eos_ = false;
  int64_t max_bytes_per_token_ = 1;
  WordSplit word_split_ = WordSplit::kNone;
  size_t max_parts_ = 1;  // threads one encode_plain may use: the caller and the part pool (Impl)
  std::vector<std::string> following_text_;  // per id; empty: none (or every id, when the load check failed)
};

// Turns a stream of generated ids into text pieces that never split a UTF-8
// character: byte-fallback pieces of a CJK character or an emoji come out whole.
// Seeded with the prompt's last ids so the first generated word keeps its space.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, const std::vector<int32_t>& prompt_ids);
  // Adds one id; returns the newly completed text (possibly empty).
  std::string push(int32_t id);
  // Text held back at the end of the stream (an incomplete UTF-8 tail), flushed
  // as is: undecodable bytes come out as U+FFFD.
  std::string flush();
  // Whether push(id) would return exactly tokenizer.following_text(id): nothing is
  // held back and the text so far is visible (push's fast path). After such a push
  // the next id appends plainly iff this one has_visible_text and the next has a
  // following_text.
  bool appends_plainly(int32_t id) const;

 private:
  // Decodes ids_[begin, end) (through window_, reused so push does not allocate
  // in the steady state beyond the returned text).
  std::string decode_range(size_t begin, size_t end);
  void advance();  // the pending ids were emitted: they become the context

  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids_[prefix_offset_, read_offset_) already emitted, kept as context
  size_t read_offset_ = 0;    // ids_[read_offset_, end) not yet emitted
  std::vector<int32_t> window_;
};

}  // namespace tnl
