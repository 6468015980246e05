// ConstraintMatcher: one request's position in a compiled constraint.
//
// Single-threaded: one matcher per request, used by one thread at a time
// (fill_allowed is const but reuses scratch buffers). The CompiledConstraint it
// holds may be shared by many matchers on many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/constraints/byte_automaton.h"
#include "engine/constraints/compiled_constraint.h"
#include "engine/constraints/trie_walk.h"
#include "engine/status.h"

namespace tnl {

class ConstraintMatcher {
 public:
  explicit ConstraintMatcher(std::shared_ptr<const CompiledConstraint> compiled);

  // Words fill_allowed writes: ceil(vocab_size / 32).
  size_t mask_words() const { return compiled_->mask_words(); }
  // Writes the allowed-token mask: bit (id % 32) of word id / 32 is set iff
  // token id may come next. EOS is set iff the text so far is a complete match.
  // Requires mask.size() >= mask_words(); words past mask_words() are zeroed.
  // After EOS was accepted nothing is allowed. If the mask cannot be computed
  // (failed() afterwards) it is all zero: end the request with error().
  void fill_allowed(std::span<uint32_t> mask) const;
  // Whether one token may come next (cheaper than a mask when checking a
  // sampled token first).
  bool allows(int32_t token) const;
  // Advances by one token; INVALID_ARGUMENT (state unchanged) if it is not allowed.
  Status accept(int32_t token);
  // Undoes the last `tokens` accepted tokens (EOS included).
  Status rollback(size_t tokens);

  // A grammar so ambiguous here that more than limits.max_live_stacks parses
  // are alive puts the matcher in a failed state rather than guessing: masks
  // are empty and accept() returns error() (INVALID_ARGUMENT) until a rollback.
  bool failed() const { return !error_.is_ok(); }
  const Status& error() const { return error_; }

  bool is_accepting() const;  // the text so far is a complete match (EOS allowed)
  bool must_end() const;      // accepting and no byte can follow: only EOS is allowed
  bool is_finished() const { return finished_; }  // EOS was accepted
  size_t num_accepted() const { return history_.size(); }
  // Fewest bytes that would complete the text so far (0 when accepting).
  uint32_t min_bytes_to_accept() const;

  const CompiledConstraint& compiled() const { return *compiled_; }

 private:
  // Whether the automaton reads all of `token`'s bytes from one of `stacks`;
  // the surviving stacks are left in scratch_ when it does.
  bool reads_token(std::span<const constraints::StackRef> stacks, int32_t token) const;
  // Enters the failed state (see failed()).
  void fail_too_ambiguous() const;

  struct Checkpoint {
    std::vector<constraints::StackRef> stacks;
    size_t arena_size;
    bool finished;
  };

  std::shared_ptr<const CompiledConstraint> compiled_;
  // Frames of stacks_ and of the checkpoints; mask computation appends scratch
  // frames and truncates them again before returning.
  mutable constraints::FrameArena arena_;
  std::vector<constraints::StackRef> stacks_;
  std::vector<Checkpoint> history_;
  bool finished_ = false;
  mutable Status error_;
  mutable std::vector<constraints::StackRef> scratch_[2];
  mutable int scratch_result_ = 0;  // which scratch_ holds reads_token's survivors
  mutable constraints::TrieWalker walker_;
  mutable constraints::TrieWalkResult walk_result_;
};

}  // namespace tnl
