// tnl-constraint-bench: CPU cost of structured-output masks.
//
// Compiles a nested JSON schema (or any --kind/--schema/--document) for a vocabulary (synthetic at --vocab-size
// from corpus substrings, or a real tokenizer's with --tokenizer), then replays
// a realistic generation: a valid document for the schema, tokenised greedily,
// computing the allowed-token mask before each token (fill_allowed) and
// accepting it. Prints compile time, per-step mask time (median / p90 / p99 /
// max) for the first request (token tables built on first use) and for later
// requests (tables cached), and the time to build every table up front.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/constraints/compiled_constraint.h"
#include "engine/constraints/constraint.h"
#include "engine/constraints/constraint_matcher.h"
#include "tools/constraint_bench/bench_vocabulary.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// An order record: nested objects, an array of objects with a nested array,
// enums, numbers, a uuid, a pattern, optional and nullable fields.
constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "string", "format": "uuid"},
    "customer": {"type": "object", "properties": {
      "name": {"type": "string"},
      "email": {"type": "string"},
      "address": {"type": "object", "properties": {
        "street": {"type": "string"}, "city": {"type": "string"},
        "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
        "country": {"enum": ["US", "CA", "GB", "DE", "FR"]}},
        "required": ["street", "city", "country"]}},
      "required": ["name", "address"]},
    "items": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
      "sku": {"type": "string"}, "quantity": {"type": "integer"}, "price": {"type": "number"},
      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5}},
      "required": ["sku", "quantity", "price"]}},
    "status": {"enum": ["pending", "shipped", "delivered"]},
    "notes": {"type": ["string", "null"]},
    "gift": {"type": "boolean"}
  },
  "required": ["id", "customer", "items", "status"]
})";

// A document the schema accepts (compact, as the whitespace policy allows).
constexpr const char* kDocument =
    R"({"id": "3f2b8c1e-9a4d-4e7b-8c21-5d6f7a8b9c0d", "customer": {"name": "Margaret Hamilton", )"
    R"("email": "margaret@example.com", "address": {"street": "1 Main Street", "city": "Boston", )"
    R"("zip": "02134", "country": "US"}}, "items": [{"sku": "BOOK-0042", "quantity": 2, "price": 19.99, )"
    R"("tags": ["history", "science", "paperback"]}, {"sku": "PEN-7", "quantity": 10, "price": 1.5}], )"
    R"("status": "shipped", "notes": "The committee said that the report on the state of the county would )"
    R"(be published next week, and that the members of the board were in favor of the new plan for the )"
    R"(city schools. \"Leave it at the front door\", she wrote.", "gift": false})";

struct Percentiles {
  double median, p90, p99, max, mean;
};

Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))]; };
  double sum = 0;
  for (double x : v) sum += x;
  return {at(0.5), at(0.9), at(0.99), v.back(), sum / v.size()};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int fail(const std::string& message) {
  std::fprintf(stderr, "tnl-constraint-bench: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tnl-constraint-bench: per-step token-mask time of a nested JSON schema constraint"};
  int32_t vocab_size = 64000;
  std::string tokenizer_dir, schema_file, document_file;
  std::vector<std::string> corpus = {"tests/data/tokenizer_corpus.txt", "tests/data/heldout_slice.txt"};
  int repeats = 5;
  bool trace = false;
  app.add_option("--vocab-size", vocab_size, "Synthetic vocabulary size")->check(CLI::Range(300, 1 << 20))->capture_default_str();
  app.add_option("--tokenizer", tokenizer_dir, "Use this checkpoint directory's tokenizer.model instead");
  app.add_option("--corpus", corpus, "Text files whose substrings make the synthetic vocabulary")->capture_default_str();
  std::string kind_name = "json_schema";
  app.add_option("--kind", kind_name, "Constraint kind of --schema: json_schema, regex or grammar")
      ->check(CLI::IsMember({"json_schema", "regex", "grammar"}))->capture_default_str();
  app.add_option("--schema", schema_file, "Constraint file: a JSON schema, regex or GBNF grammar (default: a nested order record schema)");
  app.add_option("--document", document_file, "A text the constraint accepts (required with --schema)");
  app.add_option("--repeats", repeats, "Warm requests replayed after the first")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--trace", trace, "Print each step's mask time and token (last warm request)");
  CLI11_PARSE(app, argc, argv);

  std::shared_ptr<tnl::TokenVocabulary> vocabulary;
  auto start = Clock::now();
  if (!tokenizer_dir.empty()) {
    auto loaded = tnl::tools::tokenizer_vocabulary(tokenizer_dir);
    if (!loaded) return fail(loaded.status().to_string());
    vocabulary = *loaded;
    std::printf("vocabulary: %d tokens from %s/tokenizer.model\n", vocabulary->size(), tokenizer_dir.c_str());
  } else {
    std::vector<std::string> texts;
    for (const std::string& path : corpus) {
      texts.push_back(read_file(path));
      if (texts.back().empty()) return fail("cannot read corpus file " + path + " (run from the repository root)");
    }
    vocabulary = tnl::tools::synthetic_vocabulary(texts, vocab_size);
    std::printf("vocabulary: %d tokens, SYNTHETIC (byte fallback + JSON punctuation + numbers + frequent corpus "
                "substrings; no real tokenizer of this size is shipped)\n", vocabulary->size());
  }
  const std::string schema = schema_file.empty() ? kSchema : read_file(schema_file);
  const std::string document = document_file.empty() ? kDocument : read_file(document_file);
  if (!schema_file.empty() && document_file.empty()) return fail("--schema needs --document");
  if (schema_file.empty() && kind_name != "json_schema") return fail("--kind needs --schema");

  start = Clock::now();
  auto trie = tnl::build_token_trie(vocabulary);
  std::printf("token trie: %u nodes, built in %.1f ms\n", trie->num_nodes(), ms_since(start));
  const std::vector<int32_t> tokens = tnl::tools::greedy_tokenize(*vocabulary, document);
  if (tokens.empty()) return fail("the document cannot be tokenised with this vocabulary");
  std::printf("generation: %zu tokens (%zu bytes) of a valid document, then EOS\n", tokens.size(), document.size());

  const tnl::ConstraintSpec::Kind kind = kind_name == "regex"     ? tnl::ConstraintSpec::Kind::kRegex
                                         : kind_name == "grammar" ? tnl::ConstraintSpec::Kind::kGrammar
                                                                  : tnl::ConstraintSpec::Kind::kJsonSchema;
  const tnl::ConstraintSpec spec{kind, schema};
  start = Clock::now();
  auto compiled = tnl::compile_constraint(spec, trie);
  const double compile_ms = ms_since(start);
  if (!compiled) return fail(compiled.status().to_string());
  const auto shape = (*compiled)->stats();
  std::printf("compile: %.2f ms (%u rules, %u positions, %u terminal positions)\n", compile_ms, shape.rules,
              shape.positions, shape.terminal_positions);

  // One request: mask before every token and before EOS, each timed.
  auto replay = [&](const std::shared_ptr<const tnl::CompiledConstraint>& c, std::vector<double>* step_ms,
                    double* allowed_mean) -> bool {
    tnl::ConstraintMatcher matcher(c);
    std::vector<uint32_t> mask(matcher.mask_words());
    double allowed_total = 0;
    for (size_t i = 0; i <= tokens.size(); ++i) {
      const auto t0 = Clock::now();
      matcher.fill_allowed(mask);
      step_ms->push_back(ms_since(t0));
      for (uint32_t w : mask) allowed_total += __builtin_popcount(w);
      const int32_t token = i < tokens.size() ? tokens[i] : vocabulary->eos_id;
      if (!((mask[token >> 5] >> (token & 31)) & 1) || !matcher.accept(token).is_ok()) {
        std::fprintf(stderr, "token %zu (\"%s\") refused\n", i, vocabulary->bytes[token].c_str());
        return false;
      }
    }
    *allowed_mean = allowed_total / step_ms->size();
    return true;
  };
  auto report = [](const char* label, const std::vector<double>& ms) {
    const Percentiles p = percentiles(ms);
    std::printf("%-34s median %.3f ms  p90 %.3f  p99 %.3f  max %.3f  mean %.3f  (%zu steps)\n", label, p.median,
                p.p90, p.p99, p.max, p.mean, ms.size());
  };

  std::vector<double> cold, warm;
  double allowed_mean = 0;
  if (!replay(*compiled, &cold, &allowed_mean)) return fail("the document was refused (schema and document disagree?)");
  report("first request (tables built lazily):", cold);
  for (int r = 0; r < repeats; ++r) {
    if (!replay(*compiled, &warm, &allowed_mean)) return fail("refused on a warm run");
  }
  report("later requests (tables cached):", warm);
  if (trace) {
    for (size_t i = 0; i <= tokens.size(); ++i) {
      const double step = warm[warm.size() - tokens.size() - 1 + i];
      std::printf("  step %3zu  %8.3f ms  then \"%s\"\n", i, step,
                  i < tokens.size() ? vocabulary->bytes[tokens[i]].c_str() : "<eos>");
    }
  }
  std::printf("allowed tokens per step: %.0f on average of %d\n", allowed_mean, vocabulary->size());
  const auto used = (*compiled)->stats();
  std::printf("tables built by the replay: %u (%.1f MiB)\n", used.tables_built, used.table_bytes / 1048576.0);

  auto eager = tnl::compile_constraint(spec, trie);
  start = Clock::now();
  (*eager)->precompute_tables();
  const auto all = (*eager)->stats();
  std::printf("building all %u tables up front: %.1f ms (%.1f MiB)\n", all.tables_built, ms_since(start),
              all.table_bytes / 1048576.0);
  std::vector<double> eager_steps;
  if (!replay(*eager, &eager_steps, &allowed_mean)) return fail("refused after precompute");
  report("request after precompute_tables():", eager_steps);
  return 0;
}
