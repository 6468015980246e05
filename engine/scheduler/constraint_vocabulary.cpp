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
    v->bytes.push_back(special ? std::string() : tokenizer.piece_text(id));
    v->special.push_back(special);
  }
  return v;
}

}  // namespace tnl
