// Epsilon closures: for every position, the terminal positions reachable
// without consuming a byte, each with the return positions pushed on the way,
// plus whether the current frame can end (kPopFrame). The byte automaton only
// instantiates these lists, so it never searches the grammar at run time.
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/constraints/grammar_analysis.h"

namespace tnl::constraints {
namespace {

// Push chains as a hash-consed tree: chain 0 is "nothing pushed", chain c > 0
// is (parent chain, return position). Equal chains get equal ids, so the DFS's
// visited set can key on (position, chain).
class PushChains {
 public:
  PushChains() { nodes_.push_back({0, 0}); }
  uint32_t push(uint32_t parent, uint32_t ret) {
    const uint64_t key = (uint64_t{parent} << 32) | ret;
    auto [it, inserted] = ids_.emplace(key, static_cast<uint32_t>(nodes_.size()));
    if (inserted) nodes_.push_back({parent, ret});
    return it->second;
  }
  uint32_t parent(uint32_t chain) const { return nodes_[chain].first; }
  uint32_t top(uint32_t chain) const { return nodes_[chain].second; }
  void clear() {
    nodes_.resize(1);
    ids_.clear();
  }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> nodes_;
  std::unordered_map<uint64_t, uint32_t> ids_;
};

}  // namespace

Status compute_closures(Grammar& g, const ConstraintLimits& limits, std::string_view error_prefix) {
  const uint32_t n = g.num_positions();
  g.closure_begin.assign(n + 1, 0);
  g.closure_items.clear();
  g.closure_pushes.clear();
  // DFS steps over all positions; each step yields at most one item, and the
  // budget keeps adversarial nullable chains from running long.
  const size_t step_budget = 4 * limits.max_closure_items;
  size_t steps = 0;
  PushChains chains;
  std::unordered_set<uint64_t> visited;
  std::vector<std::pair<uint32_t, uint32_t>> work;  // (position, chain)
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> chain_storage;  // chain → pushes range
  std::vector<uint32_t> reversed;

  for (uint32_t start = 0; start < n; ++start) {
    g.closure_begin[start] = static_cast<uint32_t>(g.closure_items.size());
    const GrammarElement& first = g.elements[start];
    if (first.kind == ElementKind::kBytes && first.repeat == ElementRepeat::kOnce) {
      g.closure_items.push_back({start, 0, 0});
      continue;
    }
    if (first.kind == ElementKind::kEnd) {
      g.closure_items.push_back({kPopFrame, 0, 0});
      continue;
    }
    chains.clear();
    visited.clear();
    chain_storage.clear();
    bool pops = false;
    work.assign(1, {start, 0});
    while (!work.empty()) {
      const auto [pos, chain] = work.back();
      work.pop_back();
      if (!visited.insert((uint64_t{pos} << 32) | chain).second) continue;
      if (++steps > step_budget) {
        return invalid_argument(std::string(error_prefix) +
                                ": the grammar is too ambiguous (too many alternatives reachable without "
                                "consuming input; limit " + std::to_string(limits.max_closure_items) + ")");
      }
      const GrammarElement& e = g.elements[pos];
      if (e.kind == ElementKind::kBytes) {
        auto [it, inserted] = chain_storage.emplace(chain, std::pair<uint32_t, uint32_t>{0, 0});
        if (inserted) {
          reversed.clear();
          for (uint32_t c = chain; c != 0; c = chains.parent(c)) reversed.push_back(chains.top(c));
          // Each pop of such a stack re-enters closures this deep: keep it bounded.
          if (reversed.size() > limits.max_closure_depth) {
            return invalid_argument(std::string(error_prefix) + ": rules nest more than " +
                                    std::to_string(limits.max_closure_depth) +
                                    " calls deep before reading a character");
          }
          it->second = {static_cast<uint32_t>(g.closure_pushes.size()), static_cast<uint32_t>(reversed.size())};
          g.closure_pushes.insert(g.closure_pushes.end(), reversed.rbegin(), reversed.rend());
        }
        g.closure_items.push_back({pos, it->second.first, it->second.second});
        if (e.repeat != ElementRepeat::kOnce) work.push_back({pos + 1, chain});
      } else if (e.kind == ElementKind::kEnd) {
        if (chain == 0) {
          pops = true;
        } else {
          work.push_back({chains.top(chain), chains.parent(chain)});
        }
      } else {
        // A reference: push the return position unless it is the end of the
        // alternative (tail call: returning there would only pop again).
        const uint32_t ret = e.repeat == ElementRepeat::kStar ? pos : pos + 1;
        const bool tail = e.repeat != ElementRepeat::kStar && g.elements[ret].kind == ElementKind::kEnd;
        const uint32_t callee_chain = tail ? chain : chains.push(chain, ret);
        if (e.repeat != ElementRepeat::kOnce) work.push_back({pos + 1, chain});
        for (uint32_t a = g.rule_alt_begin[e.arg + 1]; a-- > g.rule_alt_begin[e.arg];) {
          work.push_back({g.alt_begin[a], callee_chain});
        }
      }
    }
    if (pops) g.closure_items.push_back({kPopFrame, 0, 0});
    if (g.closure_items.size() > limits.max_closure_items) {
      return invalid_argument(std::string(error_prefix) + ": the grammar is too ambiguous (more than " +
                              std::to_string(limits.max_closure_items) +
                              " precomputed closure entries); simplify nested optional parts");
    }
  }
  g.closure_begin[n] = static_cast<uint32_t>(g.closure_items.size());
  return Status::ok();
}

}  // namespace tnl::constraints
