// The only translation unit that includes SentencePiece (see tokenizer.h).
#include "engine/tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <latch>
#include <system_error>
#include <thread>

#include "engine/tokenizer/tokenizer_config.h"
#include "engine/tokenizer/word_memo.h"

namespace tnl {
namespace {

constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // SentencePiece's "▁": one input space

// A piece's text with each "▁" as the space it stands for ("▁the" → " the").
std::string with_spaces(std::string_view piece) {
  std::string text;
  text.reserve(piece.size());
  for (size_t at = 0; at < piece.size();) {
    const bool mark = piece.substr(at, kSpaceMark.size()) == kSpaceMark;
    text += mark ? ' ' : piece[at];
    at += mark ? kSpaceMark.size() : 1;
  }
  return text;
}

// One SentencePiece call. Encode fails only on an unloaded model, which load()
// rules out; it is const and safe to call from several threads at once.
std::vector<int> encode_whole(const sentencepiece::SentencePieceProcessor& processor, std::string_view text) {
  std::vector<int> ids;
  processor.Encode(text, &ids).IgnoreError();
  return ids;
}

}  // namespace

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
  // Threads that encode a long text's parts (max_parts_ − 1 of them; the caller
  // encodes too; word-separable models only, null otherwise). Owned here and
  // joined by the destructor; started at load so that no request pays for
  // starting a thread.
  std::unique_ptr<boost::asio::thread_pool> part_pool;
  // Words encoded before (word-separable models only; null otherwise).
  std::unique_ptr<WordMemo> words;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() {
  if (impl_->part_pool) impl_->part_pool->join();
}

Expected<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::filesystem::path& dir) {
  const std::filesystem::path model_path = dir / "tokenizer.model";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec)) {
    return not_found(model_path.string() + ": no such file (a checkpoint needs its SentencePiece model)");
  }
  TNL_ASSIGN_OR_RETURN(TokenizerConfig config, load_tokenizer_config(dir / "tokenizer_config.json"));

  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  const auto loaded = tokenizer->impl_->processor.Load(model_path.string());
  if (!loaded.ok()) {
    return invalid_argument(model_path.string() + ": not a SentencePiece model (" +
                            std::string(loaded.message()) + ")");
  }
  tokenizer->add_bos_ = config.add_bos_token;
  tokenizer->add_eos_ = config.add_eos_token;
  tokenizer->max_bytes_per_token_ = tokenizer->measure_max_bytes_per_token();
  tokenizer->word_split_ = tokenizer->detect_word_split();
  tokenizer->max_parts_ = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxParts);
  // A model that is not word-separable is never cut: no memo, no part pool.
  if (tokenizer->word_split_ != WordSplit::kNone) tokenizer->impl_->words = std::make_unique<WordMemo>(kMemoWords);
  if (tokenizer->word_split_ != WordSplit::kNone && tokenizer->max_parts_ > 1) {
    tokenizer->impl_->part_pool = std::make_unique<boost::asio::thread_pool>(tokenizer->max_parts_ - 1);
  }
  tokenizer->build_following_texts();
  return tokenizer;
}

int64_t Tokenizer::measure_max_bytes_per_token() const {
  const sentencepiece::SentencePieceProcessor& p = impl_->processor;
  int64_t longest = 1;
  for (int32_t id = 0; id < p.GetPieceSize(); ++id) {
    if (p.IsByte(id) || p.IsControl(id) || p.IsUnknown(id)) continue;
    longest = std::max(longest, int64_t(with_spaces(p.IdToPiece(id)).size()));
  }
  // A normalizer that changes text (collapses spaces, folds full-width letters)
  // lets one token cover more input bytes than its piece has: probe for one.
  const std::string probe = "a  \t\n   b\xef\xbc\xa1 \xef\xac\x81";  // runs of blanks, "Ａ", "ﬁ"
  std::string round_trip;
  std::vector<int> ids;
  p.Encode(probe, &ids).IgnoreError();
  p.Decode(ids, &round_trip).IgnoreError();
  return round_trip == probe ? longest : longest * 8;
}

WordSplit Tokenizer::detect_word_split() const {
  const sentencepiece::SentencePieceProcessor& p = impl_->processor;
  // Unigram models (the only ones with n-best) pick among segmentations by float
  // scores summed over the whole text: cutting could change a near tie.
  std::vector<std::vector<int>> nbest;
  if (p.NBestEncode("ab", 2, &nbest).ok()) return WordSplit::kNone;
  for (int32_t id = 0; id < p.GetPieceSize(); ++id) {
    if (p.IsByte(id) || p.IsControl(id) || p.IsUnknown(id)) continue;
    if (p.IdToPiece(id).find(kSpaceMark, 1) != std::string::npos) return WordSplit::kNone;  // a piece spans a space
  }
  auto joined_pieces = [&](std::string_view text) {
    std::vector<std::string> pieces;
    p.Encode(text, &pieces).IgnoreError();
    std::string joined;
    for (const std::string& s : pieces) joined += s;
    return joined;
  };
  WordSplit mode = WordSplit::kNone;
  if (joined_pieces("zq").rfind(kSpaceMark, 0) == 0) {
    mode = WordSplit::kDropSpace;  // "y" → "▁y": the space before y comes back by itself
  } else if (joined_pieces(" zq").rfind(kSpaceMark, 0) == 0 && joined_pieces(" zq").size() == kSpaceMark.size() + 2) {
    mode = WordSplit::kKeepSpace;  // " y" → "▁y"
  }
  if (mode == WordSplit::kNone) return mode;
  // Self-check on text of every kind, cut at every safe space it has.
  const std::string_view probe =
      "The 3 keepers said: \"no,  not\ttoday\" (twice) -- 42% of 17 ships; caf\xc3\xa9 x2 Stra\xc3\x9f" "e A1 b2\n"
      "c3 \xe4\xbb\x8a\xe5\xa4\xa9 ok. Then, at 08:45 a ship came in, and we all went home. \xf0\x9f\x98\x8a done";
  const std::vector<std::string_view> parts = split_at_word_boundaries(probe, mode, probe.size());
  std::vector<int> cut;
  for (std::string_view part : parts) {
    const std::vector<int> ids = encode_whole(p, part);
    cut.insert(cut.end(), ids.begin(), ids.end());
  }
  return parts.size() > 1 && cut == encode_whole(p, probe) ? mode : WordSplit::kNone;
}

void Tokenizer::build_following_texts() {
  const sentencepiece::SentencePieceProcessor& p = impl_->processor;
  constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD
  const size_t n = size_t(p.GetPieceSize());
  following_text_.assign(n, std::string());
  int32_t anchor = -1;  // a piece with visible text, to decode the others after
  for (size_t id = 0; id < n; ++id) {
    const int i = int(id);
    if (p.IsByte(i) || p.IsControl(i) || p.IsUnknown(i)) continue;
    std::string text = with_spaces(p.IdToPiece(i));
    if (text.ends_with(kReplacement)) continue;
    following_text_[id] = std::move(text);
    if (anchor < 0 && has_visible_text(i)) anchor = i;
  }
  // Check the rule against SentencePiece itself: decoding (anchor, id) must give
  // the anchor's text then exactly following_text(id), for every id.
  bool agrees = anchor >= 0;
  std::string first;
  if (agrees) p.Decode(std::vector<int>{anchor}, &first).IgnoreError();
  for (size_t id = 0; agrees && id < n; ++id) {
    if (following_text_[id].empty()) continue;
    std::string both;
    p.Decode(std::vector<int>{anchor, int(id)}, &both).IgnoreError();
    agrees = both == first + following_text_[id];
  }
  if (!agrees) following_text_.clear();
}

std::vector<int32_t> Tokenizer::encode_parts(const std::vector<std::string_view>& parts,
                                             std::vector<size_t>* counts) const {
  std::vector<std::vector<int>> encoded(parts.size());
  if (parts.size() == 1 || !impl_->part_pool) {
    for (size_t i = 0; i < parts.size(); ++i) encoded[i] = encode_by_words(parts[i]);
  } else {
    // The caller and up to parts − 1 pool threads take parts in order until none
    // is left, so the caller never idles while a part waits for a busy pool. A
    // helper that starts after the last part was taken finds nothing to do; the
    // job is shared so that it outlives the call for such a helper.
    struct Job {
      explicit Job(size_t n) : parts(n), left(ptrdiff_t(n)) {}
      const size_t parts;
      std::atomic<size_t> next{0};
      std::latch left;  // parts not yet encoded
    };
    auto job = std::make_shared<Job>(parts.size());
    const auto work = [this, job, &parts, &encoded] {
      for (size_t i; (i = job->next.fetch_add(1)) < job->parts;) {
        encoded[i] = encode_by_words(parts[i]);
        job->left.count_down();
      }
    };
    // Helpers touch `parts` and `encoded` only for a part they took, and every
    // part is done before the wait below returns.
    const size_t helpers = std::min(parts.size(), max_parts_) - 1;
    for (size_t h = 0; h < helpers; ++h) boost::asio::post(*impl_->part_pool, work);
    work();
    job->left.wait();
  }
  std::vector<int32_t> ids;
  size_t total = 0;
  for (const std::vector<int>& part : encoded) total += part.size();
  ids.reserve(total);
  if (counts) counts->clear();
  for (const std::vector<int>& part : encoded) {
    ids.insert(ids.end(), part.begin(), part.end());
    if (counts) counts->push_back(part.size());
  }
  return ids;
}

std::vector<int> Tokenizer::encode_by_words(std::string_view text) const {
  const sentencepiece::SentencePieceProcessor& processor = impl_->processor;
  WordMemo* memo = impl_->words.get();
  if (memo == nullptr) return encode_whole(processor, text);
  std::vector<int> ids;
  // As many parts as bytes: a cut at every safe space, i.e. one part a word.
  for (const std::string_view word : split_at_word_boundaries(text, word_split_, text.size())) {
    if (memo->append(word, &ids)) continue;
    const std::vector<int> fresh = encode_whole(processor, word);
    ids.insert(ids.end(), fresh.begin(), fresh.end());
    memo->add(word, fresh);
  }
  return ids;
}

std::vector<int32_t> Tokenizer::encode_plain_uncut(std::string_view text) const {
  return encode_whole(impl_->processor, text);
}

std::vector<int32_t> Tokenizer::encode_plain_with_cuts(std::string_view text, std::vector<PlainCut>* cuts) const {
  cuts->clear();
  if (word_split_ == WordSplit::kNone) return encode_plain(text);
  const size_t n = std::min(max_parts_, text.size() / kMinPartBytes);
  std::vector<std::string_view> parts = split_at_word_boundaries(text, word_split_, n);
  // One more cut at the last safe space (when the last part has one past its start).
  const std::string_view last = parts.back();
  const size_t last_begin = size_t(last.data() - text.data());
  for (size_t i = text.size(); i-- > last_begin + 1;) {
    if (!safe_space(text, i)) continue;
    parts.back() = text.substr(last_begin, i - last_begin);
    parts.push_back(text.substr(part_start_after(i, word_split_)));
    break;
  }
  std::vector<size_t> counts;
  std::vector<int32_t> ids = encode_parts(parts, &counts);
  size_t before = 0;
  for (size_t k = 0; k + 1 < parts.size(); ++k) {
    before += counts[k];
    const size_t next_begin = size_t(parts[k + 1].data() - text.data());
    cuts->push_back({word_split_ == WordSplit::kDropSpace ? next_begin - 1 : next_begin, before});
  }
  return ids;
}

std::vector<int32_t> Tokenizer::encode_plain(std::string_view text) const {
  const size_t parts = std::min(max_parts_, text.size() / kMinPartBytes);
  return encode_parts(split_at_word_boundaries(text, word_split_, parts));
}

std::vector<int32_t> Tokenizer::encode_plain_in_parts(std::string_view text, size_t parts) const {
  return encode_parts(split_at_word_boundaries(text, word_split_, parts));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const { return with_special_tokens(encode_plain(text)); }

std::vector<int32_t> Tokenizer::with_special_tokens(const std::vector<int32_t>& body) const {
  std::vector<int32_t> ids;
  ids.reserve(body.size() + 2);
  // A model without BOS/EOS reports id -1: nothing to add then.
  if (add_bos_ && bos_id() >= 0) ids.push_back(bos_id());
  ids.insert(ids.end(), body.begin(), body.end());
  if (add_eos_ && eos_id() >= 0) ids.push_back(eos_id());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int32_t vocab = vocab_size();
  const auto in_vocab = [vocab](int32_t id) { return id >= 0 && id < vocab; };
  std::string text;
  // SentencePiece rejects the whole call on one unknown id; drop those instead.
  if (std::all_of(ids.begin(), ids.end(), in_vocab)) {
    impl_->processor.Decode(ids, &text).IgnoreError();
  } else {
    std::vector<int> known;
    known.reserve(ids.size());
    std::copy_if(ids.begin(), ids.end(), std::back_inserter(known), in_vocab);
    impl_->processor.Decode(known, &text).IgnoreError();
  }
  return text;
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->processor.IdToPiece(id);
}

std::string Tokenizer::piece_text(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return with_spaces(impl_->processor.IdToPiece(id));
}

std::optional<uint8_t> Tokenizer::byte_value(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !impl_->processor.IsByte(id)) return std::nullopt;
  // Byte pieces are spelled "<0xAB>" by SentencePiece.
  const std::string text = impl_->processor.IdToPiece(id);
  if (text.size() != 6) return std::nullopt;
  return static_cast<uint8_t>(std::stoi(text.substr(3, 2), nullptr, 16));
}

int32_t Tokenizer::vocab_size() const { return impl_->processor.GetPieceSize(); }
int32_t Tokenizer::bos_id() const { return impl_->processor.bos_id(); }
int32_t Tokenizer::eos_id() const { return impl_->processor.eos_id(); }

}  // namespace tnl
