#include "engine/constraints/grammar_analysis.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

namespace tnl::constraints {
namespace {

uint32_t saturating_add(uint32_t a, uint32_t b) { return std::min<uint64_t>(uint64_t{a} + b, kInfiniteBytes); }

// The user-visible name of a rule: helper rules "r@3" belong to "r".
std::string display_name(const Grammar& g, uint32_t rule) {
  const std::string& name = g.rule_names[rule];
  return name.substr(0, name.find('@'));
}

// Knuth's generalisation of Dijkstra to grammars: a rule's shortest expansion
// is final once popped from the queue, and an alternative's cost is known when
// all its mandatory rule references are final. O(E log R).
void compute_min_bytes(Grammar& g) {
  const uint32_t num_alts = static_cast<uint32_t>(g.alt_begin.size());
  std::vector<uint32_t> alt_rule(num_alts);
  for (uint32_t r = 0; r < g.num_rules(); ++r) {
    for (uint32_t a = g.rule_alt_begin[r]; a < g.rule_alt_begin[r + 1]; ++a) alt_rule[a] = r;
  }
  std::vector<uint32_t> partial(num_alts, 0), pending(num_alts, 0);
  std::vector<std::vector<uint32_t>> uses(g.num_rules());  // alternatives with a mandatory reference, per use
  for (uint32_t a = 0; a < num_alts; ++a) {
    for (uint32_t p = g.alt_begin[a]; g.elements[p].kind != ElementKind::kEnd; ++p) {
      const GrammarElement& e = g.elements[p];
      if (e.repeat != ElementRepeat::kOnce) continue;
      if (e.kind == ElementKind::kBytes) {
        partial[a] = saturating_add(partial[a], 1);
      } else {
        ++pending[a];
        uses[e.arg].push_back(a);
      }
    }
  }
  using Entry = std::pair<uint32_t, uint32_t>;  // (cost, rule)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  for (uint32_t a = 0; a < num_alts; ++a) {
    if (pending[a] == 0) queue.push({partial[a], alt_rule[a]});
  }
  g.rule_min_bytes.assign(g.num_rules(), kInfiniteBytes);
  std::vector<bool> done(g.num_rules(), false);
  while (!queue.empty()) {
    const auto [cost, rule] = queue.top();
    queue.pop();
    if (done[rule]) continue;
    done[rule] = true;
    g.rule_min_bytes[rule] = cost;
    for (uint32_t a : uses[rule]) {
      partial[a] = saturating_add(partial[a], cost);
      if (--pending[a] == 0) queue.push({partial[a], alt_rule[a]});
    }
  }
  // Per position, backwards over each alternative (the start alternative too).
  g.min_bytes_to_end.assign(g.num_positions(), 0);
  for (uint32_t p = g.num_positions(); p-- > 0;) {
    const GrammarElement& e = g.elements[p];
    if (e.kind == ElementKind::kEnd) continue;
    uint32_t here = 0;
    if (e.repeat == ElementRepeat::kOnce) here = e.kind == ElementKind::kBytes ? 1 : g.rule_min_bytes[e.arg];
    g.min_bytes_to_end[p] = saturating_add(here, g.min_bytes_to_end[p + 1]);
  }
}

bool element_nullable(const Grammar& g, const GrammarElement& e) {
  if (e.repeat != ElementRepeat::kOnce) return true;
  return e.kind == ElementKind::kRule && g.rule_min_bytes[e.arg] == 0;
}

struct LeftEdge {
  uint32_t from, to;
  bool pushes;  // a return frame is pushed (not a tail call)
};

std::vector<LeftEdge> left_edges(const Grammar& g) {
  std::vector<LeftEdge> edges;
  for (uint32_t r = 0; r < g.num_rules(); ++r) {
    for (uint32_t a = g.rule_alt_begin[r]; a < g.rule_alt_begin[r + 1]; ++a) {
      for (uint32_t p = g.alt_begin[a]; g.elements[p].kind != ElementKind::kEnd; ++p) {
        const GrammarElement& e = g.elements[p];
        if (e.kind == ElementKind::kRule) {
          const bool tail = e.repeat != ElementRepeat::kStar && g.elements[p + 1].kind == ElementKind::kEnd;
          edges.push_back({r, e.arg, !tail});
        }
        if (!element_nullable(g, e)) break;
      }
    }
  }
  return edges;
}

// Strongly connected components of the left-reachability graph (iterative Tarjan).
std::vector<uint32_t> components(uint32_t n, const std::vector<LeftEdge>& edges) {
  std::vector<uint32_t> first(n + 1, 0), targets(edges.size());
  for (const LeftEdge& e : edges) ++first[e.from + 1];
  for (uint32_t i = 0; i < n; ++i) first[i + 1] += first[i];
  std::vector<uint32_t> fill(first.begin(), first.end() - 1);
  for (const LeftEdge& e : edges) targets[fill[e.from]++] = e.to;

  constexpr uint32_t kUnvisited = ~0u;
  std::vector<uint32_t> index(n, kUnvisited), low(n, 0), component(n, kUnvisited), stack;
  std::vector<bool> on_stack(n, false);
  std::vector<std::pair<uint32_t, uint32_t>> calls;  // (node, next edge)
  uint32_t counter = 0, next_component = 0;
  for (uint32_t root = 0; root < n; ++root) {
    if (index[root] != kUnvisited) continue;
    calls.push_back({root, first[root]});
    index[root] = low[root] = counter++;
    stack.push_back(root);
    on_stack[root] = true;
    while (!calls.empty()) {
      auto& [v, edge] = calls.back();
      if (edge < first[v + 1]) {
        const uint32_t w = targets[edge++];
        if (index[w] == kUnvisited) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = true;
          calls.push_back({w, first[w]});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      const uint32_t done = v;
      calls.pop_back();
      if (!calls.empty()) low[calls.back().first] = std::min(low[calls.back().first], low[done]);
      if (low[done] == index[done]) {
        uint32_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          component[w] = next_component;
        } while (w != done);
        ++next_component;
      }
    }
  }
  return component;
}

// Rules entered with a return frame below them: the targets of non-tail
// references, and everything those reach by tail calls. The others run only on
// the empty stack.
void compute_bottom_only(Grammar& g) {
  std::vector<bool> pushed(g.num_rules(), false);
  std::vector<uint32_t> work;
  auto mark = [&](uint32_t rule) {
    if (!pushed[rule]) {
      pushed[rule] = true;
      work.push_back(rule);
    }
  };
  auto is_tail = [&](uint32_t p) {
    return g.elements[p].repeat != ElementRepeat::kStar && g.elements[p + 1].kind == ElementKind::kEnd;
  };
  for (uint32_t p = 0; p < g.num_positions(); ++p) {
    if (g.elements[p].kind == ElementKind::kRule && !is_tail(p)) mark(g.elements[p].arg);
  }
  while (!work.empty()) {
    const uint32_t rule = work.back();
    work.pop_back();
    for (uint32_t a = g.rule_alt_begin[rule]; a < g.rule_alt_begin[rule + 1]; ++a) {
      for (uint32_t p = g.alt_begin[a]; g.elements[p].kind != ElementKind::kEnd; ++p) {
        if (g.elements[p].kind == ElementKind::kRule && is_tail(p)) mark(g.elements[p].arg);
      }
    }
  }
  g.bottom_only.assign(g.num_positions(), false);
  for (uint32_t r = 0; r < g.num_rules(); ++r) {
    if (pushed[r]) continue;
    for (uint32_t a = g.rule_alt_begin[r]; a < g.rule_alt_begin[r + 1]; ++a) {
      for (uint32_t p = g.alt_begin[a]; g.elements[p].kind != ElementKind::kEnd; ++p) g.bottom_only[p] = true;
    }
  }
}

}  // namespace

Status analyze_grammar(Grammar& g, std::string_view error_prefix) {
  const std::string prefix = std::string(error_prefix) + ": ";
  compute_min_bytes(g);
  for (uint32_t r = 0; r < g.num_rules(); ++r) {
    if (g.rule_min_bytes[r] >= kInfiniteBytes) {
      return invalid_argument(prefix + "rule \"" + display_name(g, r) +
                              "\" can never finish (every alternative needs itself again)");
    }
  }
  const std::vector<LeftEdge> edges = left_edges(g);
  const std::vector<uint32_t> component = components(g.num_rules(), edges);
  for (const LeftEdge& e : edges) {
    if (!e.pushes || component[e.from] != component[e.to]) continue;
    std::string through = display_name(g, e.from) == display_name(g, e.to)
                              ? ""
                              : " (through \"" + display_name(g, e.to) + "\")";
    return invalid_argument(prefix + "rule \"" + display_name(g, e.from) + "\" is left-recursive" + through +
                            "; rewrite it with repetition, e.g. expr ::= term (\"+\" term)*");
  }
  compute_bottom_only(g);
  return Status::ok();
}

}  // namespace tnl::constraints
