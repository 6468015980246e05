#include "engine/constraints/literal_factoring.h"

#include <algorithm>
#include <string>
#include <vector>

namespace tnl::constraints {
namespace {

struct Option {
  std::string lead;                       // the option's leading literal
  std::vector<const GrammarExpr*> rest;   // what follows it
};

void flatten(const GrammarExpr& e, std::vector<const GrammarExpr*>& out) {
  if (e.kind == GrammarExpr::Kind::kEmpty) return;
  if (e.kind == GrammarExpr::Kind::kSequence) {
    for (const GrammarExpr& part : e.children) flatten(part, out);
  } else {
    out.push_back(&e);
  }
}

GrammarExpr option_tail(const Option& option, size_t from) {
  std::vector<GrammarExpr> parts;
  if (from < option.lead.size()) parts.push_back(expr_literal(option.lead.substr(from)));
  for (const GrammarExpr* p : option.rest) parts.push_back(*p);
  return expr_sequence(std::move(parts));
}

// Options [begin, end) sorted by lead, all sharing lead[0, depth).
GrammarExpr build(const std::vector<Option>& options, size_t begin, size_t end, size_t depth) {
  std::vector<GrammarExpr> alternatives;
  size_t i = begin;
  for (; i < end && options[i].lead.size() == depth; ++i) alternatives.push_back(option_tail(options[i], depth));
  while (i < end) {
    size_t group_end = i + 1;
    while (group_end < end && options[group_end].lead[depth] == options[i].lead[depth]) ++group_end;
    if (group_end - i == 1) {
      alternatives.push_back(option_tail(options[i], depth));
    } else {
      // Sorted: the first and last options' common prefix is the group's.
      const std::string& first = options[i].lead;
      const std::string& last = options[group_end - 1].lead;
      size_t common = depth + 1;
      while (common < first.size() && common < last.size() && first[common] == last[common]) ++common;
      alternatives.push_back(expr_sequence({expr_literal(first.substr(depth, common - depth)),
                                            build(options, i, group_end, common)}));
    }
    i = group_end;
  }
  return expr_alternation(std::move(alternatives));
}

}  // namespace

GrammarExpr factor_literal_prefixes(const GrammarExpr& alternation) {
  std::vector<Option> led;
  std::vector<GrammarExpr> others;
  for (const GrammarExpr& option : alternation.children) {
    std::vector<const GrammarExpr*> parts;
    flatten(option, parts);
    if (parts.empty() || parts[0]->kind != GrammarExpr::Kind::kLiteral) {
      others.push_back(option);
      continue;
    }
    led.push_back({parts[0]->text, std::vector<const GrammarExpr*>(parts.begin() + 1, parts.end())});
  }
  std::stable_sort(led.begin(), led.end(), [](const Option& a, const Option& b) { return a.lead < b.lead; });
  GrammarExpr factored = build(led, 0, led.size(), 0);
  if (factored.kind == GrammarExpr::Kind::kAlternation) {
    for (GrammarExpr& o : factored.children) others.push_back(std::move(o));
  } else if (!led.empty()) {
    others.push_back(std::move(factored));
  }
  GrammarExpr result;
  result.kind = GrammarExpr::Kind::kAlternation;
  result.children = std::move(others);
  return result;
}

}  // namespace tnl::constraints
