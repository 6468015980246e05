#include "engine/constraints/compiled_constraint.h"

#include <map>
#include <utility>
#include <vector>

#include "engine/constraints/grammar_builder.h"
#include "engine/constraints/grammar_parser.h"
#include "engine/constraints/json_grammar_rules.h"
#include "engine/constraints/json_schema_to_grammar.h"
#include "engine/constraints/regex_parser.h"
#include "engine/constraints/trie_walk.h"

namespace tnl {

using constraints::ElementKind;

const char* constraint_kind_name(ConstraintSpec::Kind kind) {
  switch (kind) {
    case ConstraintSpec::Kind::kJsonObject: return "json_object";
    case ConstraintSpec::Kind::kJsonSchema: return "json_schema";
    case ConstraintSpec::Kind::kRegex: return "regex";
    case ConstraintSpec::Kind::kGrammar: return "grammar";
  }
  return "constraint";
}

CompiledConstraint::CompiledConstraint(ConstraintSpec spec, constraints::Grammar grammar,
                                       std::shared_ptr<const TokenTrie> trie, const ConstraintLimits& limits)
    : spec_(std::move(spec)),
      limits_(limits),
      grammar_(std::move(grammar)),
      automaton_(grammar_, limits_),
      trie_(std::move(trie)),
      table_position_(grammar_.num_positions()),
      tables_(new TableSlot[grammar_.num_positions()]) {
  for (uint32_t p = 0; p < grammar_.num_positions(); ++p) table_position_[p] = p;
  // Levels of a repetition chain read the same tokens when their distances to
  // min and to max agree up to the longest token (each level reads >= 1 byte).
  const uint64_t horizon = uint64_t{trie_->max_depth()} + 1;
  for (const constraints::RepeatChain& chain : grammar_.repeat_chains) {
    std::map<std::pair<uint64_t, uint64_t>, uint32_t> first_level;
    for (uint32_t j = 0; j < chain.level_begin.size(); ++j) {
      const uint64_t to_min = chain.min > j ? std::min<uint64_t>(chain.min - j, horizon) : 0;
      const uint64_t to_max = chain.max == UINT32_MAX ? horizon : std::min<uint64_t>(chain.max - j, horizon);
      const auto [it, inserted] = first_level.emplace(std::make_pair(to_min, to_max), j);
      if (inserted) continue;
      for (uint32_t offset = 0; offset < chain.level_size; ++offset) {
        table_position_[chain.level_begin[j] + offset] = chain.level_begin[it->second] + offset;
      }
    }
  }
}

const constraints::TokenMaskTable& CompiledConstraint::table(uint32_t position) const {
  position = table_position_[position];
  TableSlot& slot = tables_[position];
  std::call_once(slot.once, [&] {
    constraints::FrameArena arena(limits_.max_stack_depth);
    constraints::TrieWalker walker;
    constraints::TrieWalkResult walk;
    // A position that is always at the bottom of the stack gets an exact table.
    const constraints::StackRef start{position, grammar_.bottom_only[position] ? constraints::kBottomFrame
                                                                               : constraints::kUnknownFrame};
    walker.walk(automaton_, *trie_, 0, {&start, 1}, arena, walk);  // may stop early: table.overflowed
    slot.table = std::make_unique<constraints::TokenMaskTable>(
        constraints::TokenMaskTable::from_walk(walk, *trie_, arena.deepest_pushed()));
    tables_built_.fetch_add(1, std::memory_order_relaxed);
    table_bytes_.fetch_add(slot.table->memory_bytes(), std::memory_order_relaxed);
  });
  return *slot.table;
}

size_t CompiledConstraint::precompute_tables(size_t max_tables) const {
  // Only rules reachable from the root: the JSON building blocks are defined
  // for every schema but used by few.
  std::vector<bool> reached(grammar_.num_rules(), false);
  std::vector<uint32_t> work = {grammar_.root_rule};
  reached[grammar_.root_rule] = true;
  size_t built = 0;
  while (!work.empty() && built < max_tables) {
    const uint32_t rule = work.back();
    work.pop_back();
    for (uint32_t a = grammar_.rule_alt_begin[rule]; a < grammar_.rule_alt_begin[rule + 1]; ++a) {
      for (uint32_t p = grammar_.alt_begin[a]; grammar_.elements[p].kind != ElementKind::kEnd; ++p) {
        const constraints::GrammarElement& e = grammar_.elements[p];
        if (e.kind == ElementKind::kBytes) {
          if (table_position_[p] != p) continue;  // shares an equivalent level's table
          if (built == max_tables) break;
          (void)table(p);
          ++built;
        } else if (!reached[e.arg]) {
          reached[e.arg] = true;
          work.push_back(e.arg);
        }
      }
    }
  }
  return built;
}

CompiledConstraint::Stats CompiledConstraint::stats() const {
  Stats s;
  s.rules = grammar_.num_rules();
  s.positions = grammar_.num_positions();
  for (const auto& e : grammar_.elements) s.terminal_positions += e.kind == ElementKind::kBytes;
  s.tables_built = tables_built_.load(std::memory_order_relaxed);
  s.table_bytes = table_bytes_.load(std::memory_order_relaxed);
  return s;
}

std::shared_ptr<const TokenTrie> build_token_trie(std::shared_ptr<const TokenVocabulary> vocabulary) {
  return std::make_shared<const TokenTrie>(std::move(vocabulary));
}

namespace {

Expected<constraints::GrammarDefinition> definition_for(const ConstraintSpec& spec, const ConstraintLimits& limits) {
  switch (spec.kind) {
    case ConstraintSpec::Kind::kJsonObject:
      return constraints::json_object_grammar();
    case ConstraintSpec::Kind::kJsonSchema:
      return constraints::json_schema_to_grammar(spec.text, limits);
    case ConstraintSpec::Kind::kRegex: {
      TNL_ASSIGN_OR_RETURN(constraints::GrammarExpr expr, constraints::parse_regex(spec.text, limits));
      constraints::GrammarDefinition definition;
      definition.rules.push_back({"root", std::move(expr), 0});
      return definition;
    }
    case ConstraintSpec::Kind::kGrammar:
      return constraints::parse_grammar(spec.text, limits);
  }
  return invalid_argument("constraint: unknown kind");
}

}  // namespace

Expected<std::shared_ptr<const CompiledConstraint>> compile_constraint(const ConstraintSpec& spec,
                                                                       std::shared_ptr<const TokenTrie> trie,
                                                                       const ConstraintLimits& limits) {
  const char* kind = constraint_kind_name(spec.kind);
  if (spec.text.size() > limits.max_spec_bytes) {
    return invalid_argument(std::string(kind) + ": the text is " + std::to_string(spec.text.size()) +
                            " bytes, more than the limit of " + std::to_string(limits.max_spec_bytes));
  }
  const int32_t eos = trie->eos_id();
  if (eos < 0 || eos >= trie->vocab_size()) {
    return failed_precondition("constraint vocabulary has no valid eos_id (" + std::to_string(eos) + ")");
  }
  TNL_ASSIGN_OR_RETURN(constraints::GrammarDefinition definition, definition_for(spec, limits));
  TNL_ASSIGN_OR_RETURN(constraints::Grammar grammar, constraints::build_grammar(definition, limits, kind));
  return std::shared_ptr<const CompiledConstraint>(
      std::make_shared<const CompiledConstraint>(spec, std::move(grammar), std::move(trie), limits));
}

Expected<std::shared_ptr<const CompiledConstraint>> compile_constraint(
    const ConstraintSpec& spec, std::shared_ptr<const TokenVocabulary> vocabulary) {
  return compile_constraint(spec, build_token_trie(std::move(vocabulary)));
}

}  // namespace tnl
