// CompiledConstraint: a constraint's grammar, its automaton and the token
// tables of its terminal positions, for one vocabulary.
//
// Immutable once built, except that each position's TokenMaskTable is computed
// on first use under std::call_once, so concurrent matchers may share it; the
// first request to reach a position pays its trie walk (precompute_tables()
// moves all of that to compile time).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/constraints/byte_automaton.h"
#include "engine/constraints/constraint.h"
#include "engine/constraints/grammar.h"
#include "engine/constraints/token_mask_table.h"
#include "engine/constraints/token_trie.h"

namespace tnl {

class CompiledConstraint {
 public:
  CompiledConstraint(ConstraintSpec spec, constraints::Grammar grammar, std::shared_ptr<const TokenTrie> trie,
                     const ConstraintLimits& limits);
  CompiledConstraint(const CompiledConstraint&) = delete;
  CompiledConstraint& operator=(const CompiledConstraint&) = delete;

  const ConstraintSpec& spec() const { return spec_; }
  const ConstraintLimits& limits() const { return limits_; }
  const TokenTrie& trie() const { return *trie_; }
  const constraints::Grammar& grammar() const { return grammar_; }
  const constraints::ByteAutomaton& automaton() const { return automaton_; }
  size_t mask_words() const { return trie_->mask_words(); }

  // The table of a terminal position, computed on first use (thread-safe).
  const constraints::TokenMaskTable& table(uint32_t position) const;
  // Computes the tables of the positions reachable from the root now, at most
  // max_tables of them (the rest stay lazy); returns how many it built.
  size_t precompute_tables(size_t max_tables = SIZE_MAX) const;

  struct Stats {
    uint32_t rules = 0;
    uint32_t positions = 0;           // grammar elements
    uint32_t terminal_positions = 0;  // positions that can hold a table
    uint32_t tables_built = 0;
    size_t table_bytes = 0;
  };
  Stats stats() const;

 private:
  struct TableSlot {
    std::once_flag once;
    std::unique_ptr<constraints::TokenMaskTable> table;
  };

  ConstraintSpec spec_;
  ConstraintLimits limits_;
  constraints::Grammar grammar_;
  constraints::ByteAutomaton automaton_;  // refers to grammar_
  std::shared_ptr<const TokenTrie> trie_;
  // Position whose table a position uses: itself, or an equivalent level of
  // a repetition chain (grammar.h, RepeatChain).
  std::vector<uint32_t> table_position_;
  std::unique_ptr<TableSlot[]> tables_;   // one per position
  mutable std::atomic<uint32_t> tables_built_{0};
  mutable std::atomic<size_t> table_bytes_{0};
};

}  // namespace tnl
