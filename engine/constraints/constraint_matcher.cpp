#include "engine/constraints/constraint_matcher.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace tnl {

using constraints::kAcceptPosition;
using constraints::StackRef;

ConstraintMatcher::ConstraintMatcher(std::shared_ptr<const CompiledConstraint> compiled)
    : compiled_(std::move(compiled)), arena_(compiled_->limits().max_stack_depth) {
  compiled_->automaton().start(arena_, stacks_);
}

void ConstraintMatcher::fail_too_ambiguous() const {
  error_ = invalid_argument("constraint: the " + std::string(constraint_kind_name(compiled_->spec().kind)) +
                            " is too ambiguous here (more than " +
                            std::to_string(compiled_->limits().max_live_stacks) + " parses at once); simplify it");
}

bool ConstraintMatcher::reads_token(std::span<const StackRef> stacks, int32_t token) const {
  const std::string& bytes = compiled_->trie().vocabulary().bytes[token];
  const constraints::ByteAutomaton& automaton = compiled_->automaton();
  std::span<const StackRef> current = stacks;
  int next = 0;
  for (char c : bytes) {
    std::vector<StackRef>& out = scratch_[next];
    out.clear();
    if (automaton.advance(current, static_cast<uint8_t>(c), arena_, out) & constraints::kOverflow) {
      fail_too_ambiguous();
      return false;
    }
    if (out.empty()) return false;
    current = out;
    scratch_result_ = next;
    next ^= 1;
  }
  return true;
}

void ConstraintMatcher::fill_allowed(std::span<uint32_t> mask) const {
  assert(mask.size() >= mask_words());
  std::fill(mask.begin(), mask.end(), 0u);
  if (finished_ || failed()) return;
  const TokenTrie& trie = compiled_->trie();
  const constraints::ByteAutomaton& automaton = compiled_->automaton();
  const uint32_t max_depth = compiled_->limits().max_stack_depth;
  const size_t arena_mark = arena_.size();
  bool overflowed = false;
  for (const StackRef& s : stacks_) {
    if (s.position == kAcceptPosition) {
      constraints::set_token_bit(mask, trie.eos_id());
      continue;
    }
    const constraints::TokenMaskTable& table = compiled_->table(s.position);
    if (table.overflowed) {
      overflowed = true;
      break;
    }
    if (arena_.depth(s.frame) + table.max_frame_depth > max_depth) {
      // Near the depth limit the table may allow paths the limit cuts: walk
      // the trie with the real stack instead (rare: deep nesting only).
      walk_result_ = {};
      walker_.walk(automaton, trie, 0, {&s, 1}, arena_, walk_result_);
      if ((overflowed = walk_result_.overflowed)) break;
      for (int32_t t : walk_result_.accepted) constraints::set_token_bit(mask, t);
      continue;
    }
    table.add_accepted(mask);
    if (!table.escapes()) continue;
    if (s.frame == constraints::kBottomFrame) {
      // Leaving the rule ends the text here: only tokens that end there fit.
      for (int32_t t : table.ends_at_escape) constraints::set_token_bit(mask, t);
      continue;
    }
    // Tokens that leave the rule continue where this stack's frame returns.
    std::vector<StackRef>& after_pop = scratch_[0];
    after_pop.clear();
    if ((overflowed = automaton.pop_frame(s.frame, arena_, after_pop) & constraints::kOverflow)) break;
    if (!after_pop.empty()) {
      for (int32_t t : table.ends_at_escape) constraints::set_token_bit(mask, t);
      walk_result_ = {};
      for (uint32_t node : table.escape_subtrees) {
        walker_.walk(automaton, trie, node, after_pop, arena_, walk_result_);
        if (walk_result_.overflowed) break;
      }
      if ((overflowed = walk_result_.overflowed)) break;
      for (int32_t t : walk_result_.accepted) constraints::set_token_bit(mask, t);
    }
    arena_.truncate(arena_mark);
  }
  arena_.truncate(arena_mark);
  if (overflowed) {
    fail_too_ambiguous();
    std::fill(mask.begin(), mask.end(), 0u);
  }
}

bool ConstraintMatcher::allows(int32_t token) const {
  if (finished_ || failed()) return false;
  if (token == compiled_->trie().eos_id()) return is_accepting();
  if (!compiled_->trie().in_trie(token)) return false;
  const size_t arena_mark = arena_.size();
  const bool ok = reads_token(stacks_, token);
  arena_.truncate(arena_mark);
  return ok;
}

Status ConstraintMatcher::accept(int32_t token) {
  const TokenTrie& trie = compiled_->trie();
  if (failed()) return error_;
  if (finished_) return invalid_argument("constraint: token " + std::to_string(token) + " after the end of output");
  if (token == trie.eos_id()) {
    if (!is_accepting()) return invalid_argument("constraint: end of output before the text is a complete match");
    history_.push_back({stacks_, arena_.size(), finished_});
    finished_ = true;
    return Status::ok();
  }
  if (!trie.in_trie(token)) {
    return invalid_argument("constraint: token " + std::to_string(token) + " can never be emitted");
  }
  const size_t arena_mark = arena_.size();
  if (!reads_token(stacks_, token)) {
    arena_.truncate(arena_mark);
    if (failed()) return error_;
    return invalid_argument("constraint: token " + std::to_string(token) + " is not allowed here");
  }
  history_.push_back({std::move(stacks_), arena_mark, finished_});
  stacks_ = scratch_[scratch_result_];
  return Status::ok();
}

Status ConstraintMatcher::rollback(size_t tokens) {
  if (tokens > history_.size()) {
    return out_of_range("constraint: cannot roll back " + std::to_string(tokens) + " tokens, only " +
                        std::to_string(history_.size()) + " accepted");
  }
  for (size_t i = 0; i < tokens; ++i) {
    Checkpoint& c = history_.back();
    stacks_ = std::move(c.stacks);
    arena_.truncate(c.arena_size);
    finished_ = c.finished;
    history_.pop_back();
  }
  if (tokens > 0) error_ = Status::ok();  // a failure belonged to the state rolled back from
  return Status::ok();
}

bool ConstraintMatcher::is_accepting() const {
  return !finished_ && constraints::ByteAutomaton::is_accepting(stacks_);
}

bool ConstraintMatcher::must_end() const {
  return !finished_ && stacks_.size() == 1 && stacks_[0].position == kAcceptPosition;
}

uint32_t ConstraintMatcher::min_bytes_to_accept() const {
  return compiled_->automaton().min_bytes_to_accept(stacks_, arena_);
}

}  // namespace tnl
