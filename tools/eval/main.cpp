// tnl-eval: perplexity of a text file. The file is one sequence: BOS (per the
// tokenizer config), then the whole text. With --json it prints exactly
//   {"tokens": [ids], "logprobs": [log p(tokens[i+1] | tokens[..i])], "perplexity": x}
// (other tools drive this interface: keep it).
//
// The sequence is prefilled in chunks that continue the state (model-spec §5.3),
// each asking for every row of logits, so memory stays bounded for long files.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/sampling/sampler.h"
#include "tools/common/backend_flags.h"
#include "tools/common/load_model.h"
#include "tools/common/stderr_logging.h"

namespace {

int fail(const tnl::Status& s) {
  std::fprintf(stderr, "tnl-eval: %s\n", s.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tnl-eval: perplexity of a text file under a TransNormerLLM checkpoint"};
  std::string model_dir, file;
  bool json_out = false;
  int64_t chunk_tokens = 512;
  tnl::BackendOptions backend_options;
  backend_options.max_slots = 1;
  app.add_option("--model", model_dir, "Checkpoint directory")->required();
  app.add_option("--file", file, "Text file to score")->required()->check(CLI::ExistingFile);
  app.add_flag("--json", json_out, "Print {\"tokens\", \"logprobs\", \"perplexity\"} as one JSON object");
  app.add_option("--chunk", chunk_tokens, "Tokens per prefill step")->check(CLI::PositiveNumber)->capture_default_str();
  tnl::tools::add_backend_flags(app, &backend_options);
  CLI11_PARSE(app, argc, argv);
  tnl::tools::log_to_stderr();

  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();

  auto loaded = tnl::tools::load_model(model_dir, backend_options);
  if (!loaded) return fail(loaded.status());
  tnl::Backend& model = *loaded->backend;

  const std::vector<int32_t> tokens = loaded->tokenizer->encode(text.str());
  if (tokens.size() < 2) return fail(tnl::invalid_argument(file + ": fewer than two tokens, nothing to score"));
  if (tnl::Status s = tnl::tools::check_ids_in_vocabulary(tokens, model.config()); !s) return fail(s);

  // logprobs[i] = log p(tokens[i+1] | tokens[0..i]); row r of a chunk at p predicts tokens[p+r+1].
  std::vector<double> logprobs;
  logprobs.reserve(tokens.size() - 1);
  tnl::StepOutput out;
  const int64_t n = int64_t(tokens.size());
  for (int64_t p = 0; p < n - 1; p += chunk_tokens) {
    const int64_t m = std::min(chunk_tokens, n - 1 - p);  // the last token predicts nothing
    tnl::StepPlan plan;
    plan.chunks.push_back({0, p, std::vector<int32_t>(tokens.begin() + p, tokens.begin() + p + m), tnl::LogitsMode::kAll});
    if (tnl::Status s = model.run_step(plan, &out); !s) return fail(s);
    for (int64_t r = 0; r < m; ++r) {
      const std::vector<float> lp = tnl::log_softmax(out.row(r));
      logprobs.push_back(lp[tokens[p + r + 1]]);
    }
  }
  double nll = 0.0;
  for (double lp : logprobs) nll -= lp;
  const double perplexity = std::exp(nll / double(logprobs.size()));

  if (json_out) {
    nlohmann::json j;
    j["tokens"] = tokens;
    j["logprobs"] = logprobs;
    j["perplexity"] = perplexity;
    std::cout << j.dump() << "\n";
  } else {
    std::printf("%s: %zu tokens, perplexity %.4f (%s backend)\n", file.c_str(), tokens.size(), perplexity,
                model.name().c_str());
  }
  return 0;
}
