// PromptTokenCache: encodes a text that extends (or shares a long beginning with)
// a text encoded before by reusing that text's ids and encoding only the rest.
// A conversation resends its whole history every turn; without this, the front
// end re-encodes thousands of tokens per turn (milliseconds of BPE merging) that
// the prefix state cache then does not even compute.
//
// Exactness: the ids are those of Tokenizer::encode of the whole text. Reuse
// happens only at a safe space (word_boundary_split.h) of a word-separable
// tokenizer, where the ids before and after it are independent; the prefix up to
// that space is compared byte for byte. For a tokenizer that is not
// word-separable every text is encoded whole.
//
// Lookup: each kept text is indexed by a hash of its beginning up to each of its
// cuts (Tokenizer::encode_plain_with_cuts: the parts' boundaries and the last
// safe space). A new text is hashed once, left to right; at each of its safe
// spaces the running hash is looked up, and the longest verified match wins.
// Texts are evicted least recently used past `max_bytes` (text + ids).
//
// Threads: thread-safe. The index is guarded by one mutex, held only for
// lookups and inserts; encoding runs outside it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace tnl {

class PromptTokenCache {
 public:
  // `tokenizer` outlives this. max_bytes 0: no reuse (every text encoded whole).
  PromptTokenCache(const Tokenizer& tokenizer, size_t max_bytes);

  // As Tokenizer::encode(text) (BOS/EOS as the tokenizer config says).
  std::vector<int32_t> encode(std::string_view text);
  // As Tokenizer::encode_plain(text).
  std::vector<int32_t> encode_plain(std::string_view text);

  const Tokenizer& tokenizer() const { return tokenizer_; }

  struct Stats {
    uint64_t lookups = 0;
    uint64_t hits = 0;           // texts that reused a kept text's ids
    uint64_t reused_bytes = 0;   // text bytes not encoded again thanks to them
    uint64_t encoded_bytes = 0;  // text bytes encoded
    size_t entries = 0;
    size_t bytes = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    std::string text;
    std::vector<int32_t> ids;
    std::vector<Tokenizer::PlainCut> cuts;
    std::vector<uint64_t> cut_hashes;  // prefix_hash(text[0, cut.space)) per cut
    size_t bytes() const { return text.size() + ids.size() * sizeof(int32_t) + cuts.size() * 32; }
  };
  using EntryList = std::list<Entry>;  // most recently used first

  // The running hash of a text's beginning at each of its safe spaces, ascending.
  struct SpaceHash {
    size_t space;
    uint64_t hash;  // of text[0, space)
  };
  struct Reuse {
    std::vector<int32_t> ids;  // of text[0, space)
    size_t space = 0;
    std::vector<Tokenizer::PlainCut> cuts;  // those of the kept text before `space`
    bool found = false;
    std::vector<SpaceHash> spaces;  // of the whole text: keep() takes its cuts' hashes from them
  };
  Reuse find(std::string_view text);
  void keep(std::string_view text, std::vector<int32_t> ids, std::vector<Tokenizer::PlainCut> cuts,
            const std::vector<SpaceHash>& spaces);
  void drop_locked(EntryList::iterator it);

  const Tokenizer& tokenizer_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  // Guarded by mu_:
  EntryList entries_;
  std::unordered_multimap<uint64_t, std::pair<EntryList::iterator, size_t>> index_;  // hash → (entry, cut)
  size_t bytes_ = 0;
  Stats stats_;
};

}  // namespace tnl
