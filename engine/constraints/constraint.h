// Structured output: compiling a response-format constraint (JSON object, JSON
// Schema, regex, GBNF grammar) into an automaton over the tokenizer's vocabulary.
//
//   auto vocab = std::make_shared<TokenVocabulary>(...);     // built by the engine from its tokenizer
//   auto compiled = compile_constraint({ConstraintSpec::Kind::kRegex, "[0-9]+"}, vocab);
//   ConstraintMatcher matcher(*compiled);                    // one per request, see constraint_matcher.h
//
// Thread safety: a CompiledConstraint is immutable after compile_constraint
// returns (its per-position token tables are filled on first use behind
// std::call_once), so one compiled constraint serves any number of requests on
// any threads. See docs/constraints.md for what each kind supports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/status.h"

namespace tnl {

// Each token id's bytes as the model emits them (SentencePiece piece with "▁" →
// " ", "<0xAB>" → byte 0xAB). Special tokens (bos/pad/unk/control) are marked
// not emittable; eos_id is allowed exactly where the constraint may end. Tokens
// with no bytes are never allowed (they would let a model loop without output).
struct TokenVocabulary {
  std::vector<std::string> bytes;
  std::vector<bool> special;  // same size as bytes (missing entries count as false)
  int32_t eos_id = -1;

  int32_t size() const { return static_cast<int32_t>(bytes.size()); }
};

struct ConstraintSpec {
  enum class Kind { kJsonObject, kJsonSchema, kRegex, kGrammar };
  Kind kind = Kind::kJsonObject;
  // kJsonSchema: the schema document (OpenAI's json_schema.schema); kRegex: the
  // pattern; kGrammar: GBNF text with a `root` rule; kJsonObject: ignored.
  std::string text;
};

const char* constraint_kind_name(ConstraintSpec::Kind kind);  // "json_object", "json_schema", ...

// Resource bounds. Exceeding any at compile time is an INVALID_ARGUMENT naming
// the limit; max_stack_depth and max_live_stacks bound generation (see
// docs/constraints.md for what happens when a path reaches them).
struct ConstraintLimits {
  size_t max_spec_bytes = 256 * 1024;      // schema / regex / grammar text
  int max_schema_depth = 64;               // nested schemas (properties, items, anyOf, ...)
  int max_syntax_nesting = 200;            // nested ( ) in regexes and grammars
  uint32_t max_repeat_bound = 10000;       // m, n in {m,n}; minLength, maxItems, ...
  size_t max_grammar_elements = 200000;    // elements of the lowered grammar
  size_t max_closure_items = 1000000;      // precomputed epsilon-closure entries
  uint32_t max_closure_depth = 128;        // rule calls entered before reading the next byte
  uint32_t max_stack_depth = 512;          // frames of the pushdown automaton
  uint32_t max_live_stacks = 1024;         // parallel parse stacks kept per byte
};

class CompiledConstraint;
class TokenTrie;

// The vocabulary's token trie (build once per vocabulary and share it; it is
// immutable). Costs about 20 ms for a 64k vocabulary.
std::shared_ptr<const TokenTrie> build_token_trie(std::shared_ptr<const TokenVocabulary> vocabulary);

// Compiles a constraint. Errors are INVALID_ARGUMENT with a message naming the
// problem, e.g. `json_schema: unsupported keyword "patternProperties" at
// /properties/a`, `regex: unbalanced ')' at offset 7`, `grammar: undefined rule
// "value" (line 3)`.
Expected<std::shared_ptr<const CompiledConstraint>> compile_constraint(
    const ConstraintSpec& spec, std::shared_ptr<const TokenTrie> trie, const ConstraintLimits& limits = {});
// Convenience overload: builds the trie each call (use ConstraintCache or the
// overload above when compiling more than once per vocabulary).
Expected<std::shared_ptr<const CompiledConstraint>> compile_constraint(
    const ConstraintSpec& spec, std::shared_ptr<const TokenVocabulary> vocabulary);

}  // namespace tnl
