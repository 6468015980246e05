#include "engine/constraints/grammar_builder.h"

#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/constraints/grammar_analysis.h"

namespace tnl::constraints {
namespace {

using Alternative = std::vector<GrammarElement>;

// Lowered expression nesting beyond this is refused (parsers bound user nesting
// well below it; this guards the recursion itself).
constexpr int kMaxLoweringDepth = 1000;

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
      TNL_RETURN_IF_ERROR(lower_body(static_cast<uint32_t>(r), definition.rules[r].body, 0));
    }
    return finish(root->second);
  }

 private:
  Status error(const std::string& message) const { return invalid_argument(prefix_ + ": " + message); }

  Status count_elements(size_t n) {
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

  // Rule `rule` gets one alternative per top-level option of `body`.
  Status lower_body(uint32_t rule, const GrammarExpr& body, int depth) {
    if (body.kind == GrammarExpr::Kind::kAlternation) {
      if (body.children.empty()) return error("rule \"" + rules_[rule].name + "\" has no alternatives");
      for (const GrammarExpr& option : body.children) {
        Alternative alt;
        TNL_RETURN_IF_ERROR(append(option, rule, alt, depth + 1));
        rules_[rule].alternatives.push_back(std::move(alt));
      }
      return Status::ok();
    }
    Alternative alt;
    TNL_RETURN_IF_ERROR(append(body, rule, alt, depth + 1));
    rules_[rule].alternatives.push_back(std::move(alt));
    return Status::ok();
  }

  Status append(const GrammarExpr& expr, uint32_t owner, Alternative& out, int depth) {
    if (depth > kMaxLoweringDepth) return error("expression nested too deeply");
    switch (expr.kind) {
      case GrammarExpr::Kind::kEmpty:
        return Status::ok();
      case GrammarExpr::Kind::kLiteral:
        TNL_RETURN_IF_ERROR(count_elements(expr.text.size()));
        for (char c : expr.text) out.push_back(bytes_element(ByteSet::single(static_cast<uint8_t>(c))));
        return Status::ok();
      case GrammarExpr::Kind::kBytes:
        if (expr.bytes.empty()) return error("empty byte class matches nothing");
        TNL_RETURN_IF_ERROR(count_elements(1));
        out.push_back(bytes_element(expr.bytes));
        return Status::ok();
      case GrammarExpr::Kind::kChars:
        return append_chars(expr.chars, owner, out);
      case GrammarExpr::Kind::kRuleRef: {
        auto it = rule_ids_.find(expr.text);
        if (it == rule_ids_.end()) {
          return error("undefined rule \"" + expr.text + "\"" +
                       (expr.line > 0 ? " (line " + std::to_string(expr.line) + ")" : ""));
        }
        TNL_RETURN_IF_ERROR(count_elements(1));
        out.push_back(rule_element(it->second));
        return Status::ok();
      }
      case GrammarExpr::Kind::kSequence:
        for (const GrammarExpr& part : expr.children) TNL_RETURN_IF_ERROR(append(part, owner, out, depth + 1));
        return Status::ok();
      case GrammarExpr::Kind::kAlternation: {
        const uint32_t helper = new_rule(owner);
        TNL_RETURN_IF_ERROR(lower_body(helper, expr, depth + 1));
        TNL_RETURN_IF_ERROR(count_elements(1));
        out.push_back(rule_element(helper));
        return Status::ok();
      }
      case GrammarExpr::Kind::kRepeat:
        return append_repeat(expr, owner, out, depth);
    }
    return Status::ok();
  }

  Status append_chars(const CodePointSet& chars, uint32_t owner, Alternative& out) {
    if (chars.empty()) return error("empty character class matches nothing");
    TNL_RETURN_IF_ERROR(count_elements(1));
    if (chars.max_code_point() < 0x80) {
      ByteSet set;
      for (const auto& [lo, hi] : chars.ranges()) set.add_range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi));
      out.push_back(bytes_element(set));
      return Status::ok();
    }
    auto cached = char_rules_.find(chars);
    if (cached != char_rules_.end()) {
      out.push_back(rule_element(cached->second));
      return Status::ok();
    }
    const uint32_t helper = new_rule(owner);
    for (const Utf8Sequence& seq : chars.utf8_sequences()) {
      TNL_RETURN_IF_ERROR(count_elements(seq.size()));
      Alternative alt;
      for (const auto& [lo, hi] : seq) alt.push_back(bytes_element(ByteSet::range(lo, hi)));
      rules_[helper].alternatives.push_back(std::move(alt));
    }
    char_rules_.emplace(chars, helper);
    out.push_back(rule_element(helper));
    return Status::ok();
  }

  Status append_repeat(const GrammarExpr& expr, uint32_t owner, Alternative& out, int depth) {
    const uint32_t min = expr.min;
    const uint32_t max = expr.max;
    if (min > limits_.max_repeat_bound || (max != kUnbounded && max > limits_.max_repeat_bound)) {
      return error("repetition bound " + std::to_string(max != kUnbounded && max > min ? max : min) +
                   " exceeds the limit " + std::to_string(limits_.max_repeat_bound));
    }
    if (max < min) return error("repetition {" + std::to_string(min) + "," + std::to_string(max) + "} has max < min");
    if (max == 0) return Status::ok();
    // The repeated unit as one element: itself when the body lowers to one
    // element, else a helper rule holding the body.
    Alternative body;
    TNL_RETURN_IF_ERROR(append(expr.children.at(0), owner, body, depth + 1));
    if (body.empty()) return Status::ok();  // repeating the empty string
    GrammarElement unit;
    if (body.size() == 1 && body[0].repeat == ElementRepeat::kOnce) {
      unit = body[0];
    } else {
      const uint32_t helper = new_rule(owner);
      rules_[helper].alternatives.push_back(std::move(body));
      unit = rule_element(helper);
    }
    TNL_RETURN_IF_ERROR(count_elements(min + 1));
    for (uint32_t i = 0; i < min; ++i) out.push_back(unit);
    if (max == kUnbounded) {
      out.push_back({unit.kind, ElementRepeat::kStar, unit.arg});
      return Status::ok();
    }
    const uint32_t optional = max - min;
    if (optional == 0) return Status::ok();
    if (optional == 1) {
      out.push_back({unit.kind, ElementRepeat::kOptional, unit.arg});
      return Status::ok();
    }
    // chain_k ::= unit chain_{k-1}?   (chain_1 ::= unit): up to `optional`
    // more units, one stack per position, the optional tail in tail position.
    TNL_RETURN_IF_ERROR(count_elements(3 * optional));
    uint32_t chain = new_rule(owner);
    rules_[chain].alternatives.push_back({unit});
    for (uint32_t k = 2; k <= optional; ++k) {
      const uint32_t next = new_rule(owner);
      rules_[next].alternatives.push_back({unit, {ElementKind::kRule, ElementRepeat::kOptional, chain}});
      chain = next;
    }
    out.push_back({ElementKind::kRule, ElementRepeat::kOptional, chain});
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
    for (RuleDraft& rule : rules_) {
      for (Alternative& alt : rule.alternatives) {
        g.alt_begin.push_back(static_cast<uint32_t>(g.elements.size()));
        g.elements.insert(g.elements.end(), alt.begin(), alt.end());
        g.elements.push_back({ElementKind::kEnd, ElementRepeat::kOnce, 0});
      }
      g.rule_alt_begin.push_back(static_cast<uint32_t>(g.alt_begin.size()));
      g.rule_names.push_back(std::move(rule.name));
    }
    TNL_RETURN_IF_ERROR(analyze_grammar(g, prefix_));
    TNL_RETURN_IF_ERROR(compute_closures(g, limits_, prefix_));
    return g;
  }

  struct RuleDraft {
    std::string name;
    std::vector<Alternative> alternatives;
  };

  const ConstraintLimits& limits_;
  std::string prefix_;
  std::vector<RuleDraft> rules_;
  std::unordered_map<std::string, uint32_t> rule_ids_;
  std::map<CodePointSet, uint32_t> char_rules_;
  std::unordered_map<ByteSet, uint32_t, ByteSetHash> byte_set_ids_;
  std::vector<ByteSet> byte_sets_;
  size_t elements_ = 0;
  uint32_t helper_count_ = 0;
};

}  // namespace

Expected<Grammar> build_grammar(const GrammarDefinition& definition, const ConstraintLimits& limits,
                                std::string_view error_prefix) {
  return Lowering(limits, error_prefix).run(definition);
}

}  // namespace tnl::constraints
