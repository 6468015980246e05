// The vocabulary a structured-output constraint is compiled against: every
// model id's bytes as the tokenizer emits them (engine/constraints/constraint.h,
// TokenVocabulary). Ids past the tokenizer's (a model vocabulary padded for the
// GPU) and special tokens have no bytes and are never allowed.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/constraints/constraint.h"
#include "engine/tokenizer/tokenizer.h"

namespace tnl {

std::shared_ptr<TokenVocabulary> constraint_vocabulary(const Tokenizer& tokenizer, int32_t model_vocab_size);

}  // namespace tnl
