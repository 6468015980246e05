#include "engine/constraints/grammar_builder.h"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/constraints/grammar_analysis.h"
#include "engine/constraints/literal_factoring.h"

namespace tnl::constraints {
namespace {

using Alternative = std::vector<GrammarElement>;

constexpr uint32_t kNoRule = std::numeric_limits<uint32_t>::max();
// Expression nesting beyond this is refused (parsers bound user nesting well
// below it; this guards the recursion itself).
constexpr int kMaxLoweringDepth = 1000;
// A repetition copies its part into every level up to this many elements
// (levels far from min and max share token tables, so copies cost memory, not
// table walks); beyond, the part gets one helper rule and its own frame per
// repetition, which makes masks slower.
constexpr uint64_t kMaxInlinedRepeatElements = 100000;
// Alternations with this many options get common literal prefixes factored
// out (literal_factoring.h).
constexpr size_t kFactorFromOptions = 4;

// Sequences flattened, one-option alternations unwrapped, empties dropped.
void flatten(const GrammarExpr& e, std::vector<const GrammarExpr*>& out) {
  if (e.kind == GrammarExpr::Kind::kEmpty) return;
  if (e.kind == GrammarExpr::Kind::kSequence) {
    for (const GrammarExpr& part : e.children) flatten(part, out);
  } else if (e.kind == GrammarExpr::Kind::kAlternation && e.children.size() == 1) {
    flatten(e.children[0], out);
  } else {
    out.push_back(&e);
  }
}

// The expression as one element if it is one byte class or rule reference.
const GrammarExpr* single_part(const GrammarExpr& e) {
  std::vector<const GrammarExpr*> parts;
  flatten(e, parts);
  if (parts.size() != 1) return nullptr;
  const GrammarExpr& p = *parts[0];
  switch (p.kind) {
    case GrammarExpr::Kind::kLiteral: return p.text.size() == 1 ? &p : nullptr;
    case GrammarExpr::Kind::kBytes:
    case GrammarExpr::Kind::kRuleRef: return &p;
    case GrammarExpr::Kind::kChars: return p.chars.max_code_point() < 0x80 ? &p : nullptr;
    default: return nullptr;
  }
}

uint64_t saturate(uint64_t x) { return std::min<uint64_t>(x, uint64_t{1} << 40); }

// Elements lowering will produce (a saturating estimate, used to decide
// whether a repetition copies its part into each level).
uint64_t estimate(const GrammarExpr& e) {
  switch (e.kind) {
    case GrammarExpr::Kind::kEmpty: return 0;
    case GrammarExpr::Kind::kLiteral: return e.text.size();
    case GrammarExpr::Kind::kBytes:
    case GrammarExpr::Kind::kRuleRef: return 1;
    case GrammarExpr::Kind::kChars: return e.chars.max_code_point() < 0x80 ? 1 : 5 * e.chars.utf8_sequences().size();
    case GrammarExpr::Kind::kSequence:
    case GrammarExpr::Kind::kAlternation: {
      uint64_t sum = e.children.size();
      for (const GrammarExpr& c : e.children) sum = saturate(sum + estimate(c));
      return sum;
    }
    case GrammarExpr::Kind::kRepeat: {
      // Levels that may repeat once more each hold a copy of the part.
      const uint64_t copies = e.max == kUnbounded ? uint64_t{e.min} + 1 : uint64_t{e.max};
      const uint64_t part = estimate(e.children[0]);
      const uint64_t inlined = saturate(part * copies + 2 * (copies + 1));
      return inlined <= kMaxInlinedRepeatElements ? inlined : saturate(3 * (copies + 1) + part);
    }
  }
  return 0;
}

// Fewest bytes an expression can match, counting rule references as 0.
uint64_t min_bytes(const GrammarExpr& e) {
  switch (e.kind) {
    case GrammarExpr::Kind::kLiteral: return e.text.size();
    case GrammarExpr::Kind::kBytes:
    case GrammarExpr::Kind::kChars: return 1;
    case GrammarExpr::Kind::kSequence: {
      uint64_t sum = 0;
      for (const GrammarExpr& c : e.children) sum += min_bytes(c);
      return sum;
    }
    case GrammarExpr::Kind::kAlternation: {
      uint64_t best = e.children.empty() ? 0 : std::numeric_limits<uint64_t>::max();
      for (const GrammarExpr& c : e.children) best = std::min(best, min_bytes(c));
      return best;
    }
    case GrammarExpr::Kind::kRepeat: return e.min * min_bytes(e.children[0]);
    default: return 0;
  }
}

class Lowering {
 public:
  Lowering(const ConstraintLimits& limits, std::string_view prefix) : limits_(limits), prefix_(prefix) {}

  Expected<Grammar> run(const GrammarDefinition& definition) {
    for (const RuleDefinition& rule : definition.rules) {
      auto [it, inserted] = rule_ids_.emplace(rule.name, static_cast<uint32_t>(rules_.size()));
      if (!inserted) {
        const RuleDefinition& first = definition.rules[it->second];
        std::string where = rule.line > 0 ? " (lines " + std::to_string(first.line) + " and " +
                                                 std::to_string(rule.line) + ")"
                                           : "";
        return error("rule \"" + rule.name + "\" is defined twice" + where);
      }
      rules_.push_back({rule.name, {}});
    }
    auto root = rule_ids_.find(definition.root);
    if (root == rule_ids_.end()) return error("no \"" + definition.root + "\" rule to start from");
    for (size_t r = 0; r < definition.rules.size(); ++r) {
      TNL_RETURN_IF_ERROR(lower_alternatives(definition.rules[r].body, static_cast<uint32_t>(r), kNoRule, 0));
    }
    return finish(root->second);
  }

 private:
  struct RuleDraft {
    std::string name;
    std::vector<Alternative> alternatives;
  };

  Status error(const std::string& message) const { return invalid_argument(prefix_ + ": " + message); }

  Status count_elements(uint64_t n) {
    elements_ += n;
    if (elements_ > limits_.max_grammar_elements) {
      return error("the compiled grammar is too large (more than " + std::to_string(limits_.max_grammar_elements) +
                   " elements after expanding repetitions)");
    }
    return Status::ok();
  }

  uint32_t new_rule(uint32_t owner) {
    const std::string& base = rules_[owner].name;
    std::string name = base.substr(0, base.find('@')) + "@" + std::to_string(++helper_count_);
    rules_.push_back({std::move(name), {}});
    return static_cast<uint32_t>(rules_.size() - 1);
  }

  uint32_t intern(const ByteSet& set) {
    auto [it, inserted] = byte_set_ids_.emplace(set, static_cast<uint32_t>(byte_sets_.size()));
    if (inserted) byte_sets_.push_back(set);
    return it->second;
  }

  GrammarElement bytes_element(const ByteSet& set) { return {ElementKind::kBytes, ElementRepeat::kOnce, intern(set)}; }
  static GrammarElement rule_element(uint32_t rule) { return {ElementKind::kRule, ElementRepeat::kOnce, rule}; }

  void add_alternative(uint32_t rule, Alternative alt) { rules_[rule].alternatives.push_back(std::move(alt)); }

  // Alternatives of `rule` from `body`, one per top-level option, each ending
  // with a tail call to `continuation` (kNoRule: the rule ends there).
  Status lower_alternatives(const GrammarExpr& body, uint32_t rule, uint32_t continuation, int depth) {
    std::vector<const GrammarExpr*> parts;
    flatten(body, parts);
    if (parts.size() == 1 && parts[0]->kind == GrammarExpr::Kind::kAlternation) {
      if (parts[0]->children.empty()) return error("rule \"" + rules_[rule].name + "\" has no alternatives");
      if (parts[0]->children.size() >= kFactorFromOptions) {
        const GrammarExpr factored = factor_literal_prefixes(*parts[0]);
        return lower_options(factored, rule, continuation, depth);
      }
      return lower_options(*parts[0], rule, continuation, depth);
    }
    if (parts.size() == 1 && parts[0]->kind == GrammarExpr::Kind::kChars && parts[0]->chars.max_code_point() >= 0x80) {
      // A non-ASCII character class: one alternative per UTF-8 byte pattern.
      for (const Utf8Sequence& seq : parts[0]->chars.utf8_sequences()) {
        TNL_RETURN_IF_ERROR(count_elements(seq.size() + 1));
        Alternative alt;
        for (const auto& [lo, hi] : seq) alt.push_back(bytes_element(ByteSet::range(lo, hi)));
        if (continuation != kNoRule) alt.push_back(rule_element(continuation));
        add_alternative(rule, std::move(alt));
      }
      return Status::ok();
    }
    return lower_sequence(body, rule, continuation, depth + 1);
  }

  Status lower_options(const GrammarExpr& alternation, uint32_t rule, uint32_t continuation, int depth) {
    for (const GrammarExpr& option : alternation.children) {
      TNL_RETURN_IF_ERROR(lower_sequence(option, rule, continuation, depth + 1));
    }
    return Status::ok();
  }

  // One alternative of `rule`: `expr` then `continuation`. At the first part
  // that needs a helper, the alternative tail-calls the helper, and what
  // follows the part becomes a new rule the helper tail-calls in turn.
  Status lower_sequence(const GrammarExpr& expr, uint32_t rule, uint32_t continuation, int depth) {
    if (depth > kMaxLoweringDepth) return error("expression nested too deeply");
    std::vector<const GrammarExpr*> parts;
    flatten(expr, parts);
    Alternative current;
    uint32_t target = rule;
    for (size_t i = 0; i < parts.size(); ++i) {
      const GrammarExpr& part = *parts[i];
      TNL_ASSIGN_OR_RETURN(bool appended, append_simple(part, current));
      if (appended) continue;
      const uint32_t helper = new_rule(rule);
      const bool last = i + 1 == parts.size();
      const uint32_t next = last ? continuation : new_rule(rule);
      TNL_RETURN_IF_ERROR(count_elements(1));
      current.push_back(rule_element(helper));
      add_alternative(target, std::move(current));
      current.clear();
      TNL_RETURN_IF_ERROR(lower_group(part, helper, next, depth + 1));
      if (last) return Status::ok();
      target = next;
    }
    if (continuation != kNoRule) {
      TNL_RETURN_IF_ERROR(count_elements(1));
      current.push_back(rule_element(continuation));
    }
    add_alternative(target, std::move(current));
    return Status::ok();
  }

  Expected<GrammarElement> element_of(const GrammarExpr& part) {
    switch (part.kind) {
      case GrammarExpr::Kind::kLiteral: return bytes_element(ByteSet::single(static_cast<uint8_t>(part.text[0])));
      case GrammarExpr::Kind::kBytes:
        if (part.bytes.empty()) return error("empty byte class matches nothing");
        return bytes_element(part.bytes);
      case GrammarExpr::Kind::kChars: {
        if (part.chars.empty()) return error("empty character class matches nothing");
        ByteSet set;
        for (const auto& [lo, hi] : part.chars.ranges()) set.add_range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi));
        return bytes_element(set);
      }
      default: {
        auto it = rule_ids_.find(part.text);
        if (it == rule_ids_.end()) {
          return error("undefined rule \"" + part.text + "\"" +
                       (part.line > 0 ? " (line " + std::to_string(part.line) + ")" : ""));
        }
        return rule_element(it->second);
      }
    }
  }

  Status check_bounds(const GrammarExpr& repeat) const {
    const uint32_t min = repeat.min, max = repeat.max;
    if (min > limits_.max_repeat_bound || (max != kUnbounded && max > limits_.max_repeat_bound)) {
      return error("repetition bound " + std::to_string(max != kUnbounded && max > min ? max : min) +
                   " exceeds the limit " + std::to_string(limits_.max_repeat_bound));
    }
    if (max < min) return error("repetition {" + std::to_string(min) + "," + std::to_string(max) + "} has max < min");
    return Status::ok();
  }

  // Appends a part that needs no helper rule; false if it needs one.
  Expected<bool> append_simple(const GrammarExpr& part, Alternative& out) {
    switch (part.kind) {
      case GrammarExpr::Kind::kLiteral:
        TNL_RETURN_IF_ERROR(count_elements(part.text.size()));
        for (char c : part.text) out.push_back(bytes_element(ByteSet::single(static_cast<uint8_t>(c))));
        return true;
      case GrammarExpr::Kind::kChars:
        if (part.chars.max_code_point() >= 0x80) return false;
        [[fallthrough]];
      case GrammarExpr::Kind::kBytes:
      case GrammarExpr::Kind::kRuleRef: {
        TNL_ASSIGN_OR_RETURN(GrammarElement e, element_of(part));
        TNL_RETURN_IF_ERROR(count_elements(1));
        out.push_back(e);
        return true;
      }
      case GrammarExpr::Kind::kRepeat: {
        TNL_RETURN_IF_ERROR(check_bounds(part));
        std::vector<const GrammarExpr*> body;
        flatten(part.children.at(0), body);
        if (part.max == 0 || body.empty()) return true;  // matches only the empty string
        const GrammarExpr* unit = single_part(part.children[0]);
        if (unit == nullptr || (part.max != kUnbounded && part.max - part.min > 1)) return false;
        TNL_ASSIGN_OR_RETURN(GrammarElement e, element_of(*unit));
        TNL_RETURN_IF_ERROR(count_elements(part.min + 1));
        for (uint32_t i = 0; i < part.min; ++i) out.push_back(e);
        if (part.max == kUnbounded) out.push_back({e.kind, ElementRepeat::kStar, e.arg});
        if (part.max == part.min + 1) out.push_back({e.kind, ElementRepeat::kOptional, e.arg});
        return true;
      }
      default:
        return false;
    }
  }

  // Fills `helper` with alternatives matching `part` and then tail-calling `continuation`.
  Status lower_group(const GrammarExpr& part, uint32_t helper, uint32_t continuation, int depth) {
    if (part.kind == GrammarExpr::Kind::kRepeat) return lower_repeat(part, helper, continuation, depth);
    return lower_alternatives(part, helper, continuation, depth);  // an alternation or a non-ASCII class
  }

  // Levels L_0 (= first) .. : L_j = "j repetitions done"; it may repeat once
  // more (into L_{j+1}, or itself for the last level of an unbounded
  // repetition) and may leave (into `continuation`) once j >= min.
  Status lower_repeat(const GrammarExpr& part, uint32_t first, uint32_t continuation, int depth) {
    const GrammarExpr& body = part.children[0];
    const uint32_t min = part.min;
    const uint64_t levels = part.max == kUnbounded ? uint64_t{min} + 1 : uint64_t{part.max} + 1;
    const uint64_t repeating_levels = part.max == kUnbounded ? levels : levels - 1;
    const GrammarExpr* unit = single_part(body);
    const bool copies = unit == nullptr && saturate(estimate(body) * repeating_levels) <= kMaxInlinedRepeatElements;
    GrammarElement unit_element;
    if (unit != nullptr) {
      TNL_ASSIGN_OR_RETURN(unit_element, element_of(*unit));
    } else if (!copies) {
      const uint32_t unit_rule = new_rule(first);  // the part once, in its own frame
      TNL_RETURN_IF_ERROR(lower_alternatives(body, unit_rule, kNoRule, depth + 1));
      unit_element = rule_element(unit_rule);
    }
    RepeatChainDraft chain{{first}, min, part.max, min_bytes(body) >= 1};
    for (uint64_t j = 1; j < levels; ++j) chain.levels.push_back(new_rule(first));
    for (uint64_t j = 0; j < levels; ++j) {
      const uint32_t level = chain.levels[j];
      const uint32_t next = j + 1 < levels ? chain.levels[j + 1] : level;
      if (part.max == kUnbounded || j < part.max) {
        if (copies) {
          TNL_RETURN_IF_ERROR(lower_alternatives(body, level, next, depth + 1));
        } else {
          TNL_RETURN_IF_ERROR(count_elements(2));
          add_alternative(level, {unit_element, rule_element(next)});
        }
      }
      if (j >= min) {
        TNL_RETURN_IF_ERROR(count_elements(1));
        add_alternative(level, continuation != kNoRule ? Alternative{rule_element(continuation)} : Alternative{});
      }
    }
    if (chain.aliasable && levels > 1) chains_.push_back(std::move(chain));
    return Status::ok();
  }

  Expected<Grammar> finish(uint32_t root) {
    Grammar g;
    g.root_rule = root;
    g.byte_sets = std::move(byte_sets_);
    // Positions 0 and 1: the synthetic start alternative `root kEnd`.
    g.start_position = 0;
    g.elements.push_back(rule_element(root));
    g.elements.push_back({ElementKind::kEnd, ElementRepeat::kOnce, 0});
    g.rule_alt_begin.push_back(0);
    std::vector<uint32_t> rule_begin;  // first position of each rule
    for (RuleDraft& rule : rules_) {
      rule_begin.push_back(static_cast<uint32_t>(g.elements.size()));
      for (Alternative& alt : rule.alternatives) {
        g.alt_begin.push_back(static_cast<uint32_t>(g.elements.size()));
        g.elements.insert(g.elements.end(), alt.begin(), alt.end());
        g.elements.push_back({ElementKind::kEnd, ElementRepeat::kOnce, 0});
      }
      g.rule_alt_begin.push_back(static_cast<uint32_t>(g.alt_begin.size()));
      g.rule_names.push_back(std::move(rule.name));
    }
    rule_begin.push_back(static_cast<uint32_t>(g.elements.size()));
    for (const RepeatChainDraft& draft : chains_) {
      RepeatChain chain{{}, draft.min, draft.max};
      for (uint32_t level : draft.levels) chain.level_begin.push_back(rule_begin[level]);
      chain.level_size = rule_begin[draft.levels[0] + 1] - rule_begin[draft.levels[0]];
      g.repeat_chains.push_back(std::move(chain));
    }
    TNL_RETURN_IF_ERROR(analyze_grammar(g, prefix_));
    TNL_RETURN_IF_ERROR(compute_closures(g, limits_, prefix_));
    return g;
  }

  struct RepeatChainDraft {
    std::vector<uint32_t> levels;  // rule per level
    uint32_t min, max;
    bool aliasable;  // each repetition reads at least one byte
  };

  const ConstraintLimits& limits_;
  std::string prefix_;
  std::vector<RuleDraft> rules_;
  std::unordered_map<std::string, uint32_t> rule_ids_;
  std::unordered_map<ByteSet, uint32_t, ByteSetHash> byte_set_ids_;
  std::vector<ByteSet> byte_sets_;
  std::vector<RepeatChainDraft> chains_;
  uint64_t elements_ = 0;
  uint32_t helper_count_ = 0;
};

}  // namespace

Expected<Grammar> build_grammar(const GrammarDefinition& definition, const ConstraintLimits& limits,
                                std::string_view error_prefix) {
  return Lowering(limits, error_prefix).run(definition);
}

}  // namespace tnl::constraints
