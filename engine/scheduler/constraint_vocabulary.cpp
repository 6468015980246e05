#include "engine/scheduler/constraint_vocabulary.h"

#include <algorithm>

namespace tnl {

std::shared_ptr<TokenVocabulary> constraint_vocabulary(const Tokenizer& tokenizer, int32_t model_vocab_size) {
  auto v = std::make_shared<TokenVocabulary>();
  v->eos_id = tokenizer.eos_id();
  const int32_t size = std::max(model_vocab_size, tokenizer.vocab_size());
  v->bytes.reserve(size_t(size));
  v->special.reserve(size_t(size));
  for (int32_t id = 0; id < size; ++id) {
    if (id >= tokenizer.vocab_size()) {  // padding of the model's vocabulary
      v->bytes.emplace_back();
      v->special.push_back(true);
      continue;
    }
    if (auto byte = tokenizer.byte_value(id)) {  // byte-fallback piece "<0xAB>"
      v->bytes.emplace_back(1, static_cast<char>(*byte));
      v->special.push_back(false);
      continue;
    }
    // Special tokens (bos, pad, unk, control) decode to nothing.
    const bool special = tokenizer.decode({id}).empty();
    const std::string piece = tokenizer.piece(id);
    std::string bytes;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xe2\x96\x81") == 0) {  // SentencePiece's "▁" is a space
        bytes.push_back(' ');
        i += 3;
      } else {
        bytes.push_back(piece[i++]);
      }
    }
    v->bytes.push_back(special ? std::string() : std::move(bytes));
    v->special.push_back(special);
  }
  return v;
}

}  // namespace tnl
