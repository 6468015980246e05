#include "engine/tokenizer/prompt_token_cache.h"

#include <algorithm>
#include <utility>

#include "engine/tokenizer/word_boundary_split.h"

namespace tnl {
namespace {

// Texts shorter than this are encoded and not kept: too cheap to be worth a slot.
constexpr size_t kMinKeepBytes = 256;

// FNV-1a, 64 bits, continued from `h` over `bytes`: the running hash of a
// text's beginning.
constexpr uint64_t kFnvOffset = 14695981039346656037ull;
uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (const char c : bytes) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

}  // namespace

PromptTokenCache::PromptTokenCache(const Tokenizer& tokenizer, size_t max_bytes)
    : tokenizer_(tokenizer), max_bytes_(tokenizer.word_separable() ? max_bytes : 0) {}

std::vector<int32_t> PromptTokenCache::encode(std::string_view text) {
  return tokenizer_.with_special_tokens(encode_plain(text));
}

std::vector<int32_t> PromptTokenCache::encode_plain(std::string_view text) {
  if (max_bytes_ == 0 || text.size() < kMinKeepBytes) return tokenizer_.encode_plain(text);
  Reuse reuse = find(text);
  const size_t tail_begin = reuse.found ? part_start_after(reuse.space, tokenizer_.word_split()) : 0;
  std::vector<Tokenizer::PlainCut> tail_cuts;
  std::vector<int32_t> tail = tokenizer_.encode_plain_with_cuts(text.substr(tail_begin), &tail_cuts);
  std::vector<int32_t> ids = std::move(reuse.ids);
  std::vector<Tokenizer::PlainCut> cuts = std::move(reuse.cuts);
  if (reuse.found) cuts.push_back({reuse.space, ids.size()});
  for (const Tokenizer::PlainCut& c : tail_cuts) cuts.push_back({tail_begin + c.space, ids.size() + c.ids});
  ids.insert(ids.end(), tail.begin(), tail.end());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.encoded_bytes += text.size() - tail_begin;
  }
  if (!cuts.empty()) keep(text, ids, std::move(cuts), reuse.spaces);
  return ids;
}

PromptTokenCache::Reuse PromptTokenCache::find(std::string_view text) {
  // The running hash at every safe space, outside the lock (spaces found by
  // memchr: most bytes are not spaces).
  Reuse reuse;
  std::vector<SpaceHash>& spaces = reuse.spaces;
  spaces.reserve(text.size() / 6);
  uint64_t h = kFnvOffset;
  size_t hashed = 0;
  for (size_t i = text.find(' ', 1); i != std::string_view::npos && i + 1 < text.size(); i = text.find(' ', i + 1)) {
    if (!safe_space(text, i)) continue;
    h = fnv1a(h, text.substr(hashed, i - hashed));
    hashed = i;
    spaces.push_back({i, h});
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.lookups;
  for (auto s = spaces.rbegin(); s != spaces.rend(); ++s) {
    const auto [first, last] = index_.equal_range(s->hash);
    for (auto it = first; it != last; ++it) {
      const auto [entry, cut_index] = it->second;
      const Tokenizer::PlainCut& cut = entry->cuts[cut_index];
      if (cut.space != s->space || entry->text.compare(0, cut.space, text.substr(0, cut.space)) != 0) continue;
      reuse.found = true;
      reuse.space = cut.space;
      reuse.ids.assign(entry->ids.begin(), entry->ids.begin() + ptrdiff_t(cut.ids));
      reuse.cuts.assign(entry->cuts.begin(), entry->cuts.begin() + ptrdiff_t(cut_index));
      entries_.splice(entries_.begin(), entries_, entry);  // most recently used
      ++stats_.hits;
      stats_.reused_bytes += part_start_after(cut.space, tokenizer_.word_split());
      return reuse;
    }
  }
  return reuse;
}

void PromptTokenCache::keep(std::string_view text, std::vector<int32_t> ids, std::vector<Tokenizer::PlainCut> cuts,
                            const std::vector<SpaceHash>& spaces) {
  Entry e;
  e.text.assign(text);
  e.ids = std::move(ids);
  e.cuts = std::move(cuts);
  // Cuts are safe spaces of the text, so find() hashed up to each already; a cut
  // it did not see (none expected) continues the hash from the space before it.
  uint64_t h = kFnvOffset;
  size_t hashed = 0;
  auto known = spaces.begin();
  for (const Tokenizer::PlainCut& c : e.cuts) {
    for (; known != spaces.end() && known->space <= c.space; ++known) {  // cuts ascend, so these are past `hashed`
      h = known->hash;
      hashed = known->space;
    }
    h = fnv1a(h, text.substr(hashed, c.space - hashed));
    hashed = c.space;
    e.cut_hashes.push_back(h);
  }
  if (e.bytes() > max_bytes_) return;
  std::lock_guard<std::mutex> lock(mu_);
  // The same text kept already (its last cut indexes it): only refresh it.
  const auto [first, last] = index_.equal_range(e.cut_hashes.back());
  for (auto it = first; it != last; ++it) {
    if (it->second.first->text == e.text) {
      entries_.splice(entries_.begin(), entries_, it->second.first);
      return;
    }
  }
  bytes_ += e.bytes();
  entries_.push_front(std::move(e));
  const EntryList::iterator added = entries_.begin();
  for (size_t k = 0; k < added->cuts.size(); ++k) index_.emplace(added->cut_hashes[k], std::make_pair(added, k));
  while (bytes_ > max_bytes_ && !entries_.empty()) drop_locked(std::prev(entries_.end()));
}

void PromptTokenCache::drop_locked(EntryList::iterator it) {
  for (const uint64_t h : it->cut_hashes) {
    const auto [first, last] = index_.equal_range(h);
    for (auto i = first; i != last;) i = i->second.first == it ? index_.erase(i) : std::next(i);
  }
  bytes_ -= it->bytes();
  entries_.erase(it);
}

PromptTokenCache::Stats PromptTokenCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  s.bytes = bytes_;
  return s;
}

}  // namespace tnl
