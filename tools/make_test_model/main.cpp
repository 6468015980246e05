// tnl-make-test-model: writes a checkpoint directory with random weights for a
// given config (test fixtures, benchmarks, serving smoke tests), optionally with
// a SentencePiece BPE tokenizer trained on a text corpus by Debian's spm_train.
//
//   tnl-make-test-model --out DIR [--config FILE.json | size flags] [--seed S]
//                       [--dtype f32|bf16|f16] [--tokenizer-corpus FILE]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/model_config.h"
#include "engine/status.h"

extern char** environ;

namespace tnl {
namespace {

namespace fs = std::filesystem;

// Vocabulary asked of spm_train when --vocab is not given: 256 byte pieces + 4
// specials + the corpus's common characters + merges; a few KB of text fills it.
constexpr int64_t kDefaultTokenizerVocab = 512;

struct Options {
  fs::path out;
  std::string config_file;
  int64_t layers = 4, dim = 64, heads = 4, hidden = -1, glu = -1, vocab = -1;
  std::string lrpe;  // "1,0,0,0"; empty: LRPE on layer 0 only, like the released models
  std::string act = "silu";
  bool bias = false, untied = false, no_scale_embedding = false;
  uint64_t seed = 0;
  std::string dtype = "f32";
  std::string tokenizer_corpus;
};

Expected<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return internal_error(path.string() + ": write failed");
  return Status::ok();
}

Expected<std::vector<bool>> parse_lrpe_list(const std::string& text, int64_t layers) {
  std::vector<bool> on;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item != "0" && item != "1") return invalid_argument("--lrpe: entries must be 0 or 1, got \"" + item + "\"");
    on.push_back(item == "1");
  }
  if (static_cast<int64_t>(on.size()) != layers) {
    return invalid_argument("--lrpe has " + std::to_string(on.size()) + " entries, --layers is " +
                            std::to_string(layers));
  }
  return on;
}

Expected<ModelConfig> config_from_options(const Options& o) {
  if (!o.config_file.empty()) {
    TNL_ASSIGN_OR_RETURN(std::string text, read_text(o.config_file));
    return parse_model_config(text, o.config_file);
  }
  const std::vector<std::string> known = {"silu", "swish", "1+elu", "relu", "elu", "sigmoid", "identity"};
  if (std::find(known.begin(), known.end(), o.act) == known.end()) {
    return invalid_argument("--act: unknown activation \"" + o.act + "\"");
  }
  ModelConfig c;
  c.vocab_size = o.vocab > 0 ? o.vocab : kDefaultTokenizerVocab;
  c.dim = o.dim;
  c.num_layers = o.layers;
  c.num_heads = o.heads;
  c.hidden_dim = o.hidden > 0 ? o.hidden : o.dim;
  c.glu_dim = o.glu > 0 ? o.glu : o.dim;
  c.activation = parse_activation(o.act);
  if (o.lrpe.empty()) {
    c.lrpe_layers.assign(std::max<int64_t>(o.layers, 0), false);
    if (!c.lrpe_layers.empty()) c.lrpe_layers[0] = true;
  } else {
    TNL_ASSIGN_OR_RETURN(c.lrpe_layers, parse_lrpe_list(o.lrpe, o.layers));
  }
  c.scale_embedding = !o.no_scale_embedding;
  c.bias = o.bias;
  c.tie_word_embeddings = !o.untied;
  // Validate exactly as a checkpoint's config.json would be.
  return parse_model_config(model_config_to_json(c), "the command-line model config");
}

// Runs argv[0] from PATH and waits; no shell, so paths need no quoting.
// quiet: its stdout and stderr go to /dev/null.
Status run_program(const std::vector<std::string>& args, bool quiet) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    return unavailable(args[0] + ": cannot start (" + std::string(std::strerror(err)) +
                       "); install Debian's sentencepiece package");
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return internal_error(args[0] + ": waitpid failed");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return internal_error(args[0] + " failed (exit status " + std::to_string(WEXITSTATUS(status)) + ")");
  }
  return Status::ok();
}

// Trains out/tokenizer.model (BPE, byte fallback, pad 0 / bos 1 / eos 2 / unk 3)
// and writes tokenizer_config.json. Returns the number of pieces, which becomes V.
// Identity normalisation and kept whitespace make decode(encode(text)) == text.
Expected<int64_t> train_tokenizer(const fs::path& corpus, const fs::path& out, int64_t vocab) {
  if (!fs::is_regular_file(corpus)) return not_found(corpus.string() + ": tokenizer corpus not found");
  if (vocab <= 256 + 4) {
    return invalid_argument("--vocab " + std::to_string(vocab) +
                            " is too small for a tokenizer: byte fallback alone takes 256 + 4 special pieces");
  }
  const fs::path prefix = out / "tokenizer";
  // spm_train needs a piece for every character its coverage keeps, and fails
  // when they do not fit in the vocabulary. The rarest characters (mostly CJK in
  // a small corpus) are fine as byte-fallback pieces, so lower the coverage
  // until they fit; only the last attempt reports spm_train's own error.
  const char* const coverages[] = {"0.9995", "0.995", "0.99", "0.98"};  // spm_train accepts ≥ 0.98
  Status trained;
  for (const char* coverage : coverages) {
    const bool last = coverage == coverages[std::size(coverages) - 1];
    trained = run_program({"spm_train",
                           "--input=" + corpus.string(),
                           "--model_prefix=" + prefix.string(),
                           "--model_type=bpe",
                           "--vocab_size=" + std::to_string(vocab),
                           "--hard_vocab_limit=false",  // a small corpus may support fewer pieces
                           "--byte_fallback=true",
                           std::string("--character_coverage=") + coverage,
                           "--pad_id=0",
                           "--bos_id=1",
                           "--eos_id=2",
                           "--unk_id=3",
                           "--normalization_rule_name=identity",
                           "--remove_extra_whitespaces=false",
                           "--split_digits=true",
                           "--num_threads=1",
                           "--minloglevel=1"},
                          /*quiet=*/!last);
    if (trained.is_ok()) break;
  }
  TNL_RETURN_IF_ERROR(trained);
  // spm_train writes one line per piece to tokenizer.vocab; the engine reads only tokenizer.model.
  const fs::path vocab_file = prefix.string() + ".vocab";
  TNL_ASSIGN_OR_RETURN(std::string pieces, read_text(vocab_file));
  std::error_code ec;
  fs::remove(vocab_file, ec);
  const int64_t size = std::count(pieces.begin(), pieces.end(), '\n');
  if (size < 256 + 4) return internal_error(vocab_file.string() + ": only " + std::to_string(size) + " pieces");
  TNL_RETURN_IF_ERROR(write_text(out / "tokenizer_config.json",
                                 "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false\n}\n"));
  return size;
}

Status make_test_model(const Options& o, const bool vocab_given) {
  TNL_ASSIGN_OR_RETURN(ModelConfig config, config_from_options(o));
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return internal_error(o.out.string() + ": cannot create: " + ec.message());
  if (!o.tokenizer_corpus.empty()) {
    const int64_t target = vocab_given ? o.vocab : kDefaultTokenizerVocab;
    TNL_ASSIGN_OR_RETURN(config.vocab_size, train_tokenizer(o.tokenizer_corpus, o.out, target));
  }
  const DType dtype = o.dtype == "bf16" ? DType::kBF16 : o.dtype == "f16" ? DType::kF16 : DType::kF32;
  TNL_RETURN_IF_ERROR(write_random_checkpoint(o.out, config, o.seed, dtype));
  std::cout << "wrote " << o.out.string() << ": V=" << config.vocab_size << " d=" << config.dim
            << " L=" << config.num_layers << " H=" << config.num_heads << " D=" << config.hidden_dim
            << " G=" << config.glu_dim << " " << dtype_name(dtype) << ", " << config.num_parameters()
            << " parameters" << (o.tokenizer_corpus.empty() ? "" : ", with tokenizer") << "\n";
  return Status::ok();
}

}  // namespace
}  // namespace tnl

int main(int argc, char** argv) {
  tnl::Options o;
  CLI::App app{"Writes a TransNormerLLM checkpoint directory with random weights (config.json, "
               "model.safetensors; with --tokenizer-corpus also tokenizer.model and tokenizer_config.json)."};
  app.add_option("--out", o.out, "Output directory (created if needed)")->required();
  auto* config = app.add_option("--config", o.config_file, "Take the model config from this config.json")
                     ->check(CLI::ExistingFile);
  std::vector<CLI::Option*> size_flags = {
      app.add_option("--layers", o.layers, "L, decoder layers (>= 2)")->capture_default_str(),
      app.add_option("--dim", o.dim, "d, model width")->capture_default_str(),
      app.add_option("--heads", o.heads, "H, attention heads (must divide --hidden)")->capture_default_str(),
      app.add_option("--hidden", o.hidden, "D, attention inner width (default: d)"),
      app.add_option("--glu", o.glu, "G, channel-mixer width (default: d)"),
      app.add_option("--lrpe", o.lrpe, "Per-layer LRPE switches, e.g. 1,0,0,0 (default: layer 0 only)"),
      app.add_option("--act", o.act, "q/k feature map: silu, 1+elu, relu, elu, sigmoid, identity")
          ->capture_default_str(),
      app.add_flag("--bias", o.bias, "Linear layers carry biases"),
      app.add_flag("--untied", o.untied, "Separate lm_head.weight (tie_word_embeddings false)"),
      app.add_flag("--no-scale-embedding", o.no_scale_embedding, "Do not scale embeddings by sqrt(d)"),
  };
  for (CLI::Option* flag : size_flags) config->excludes(flag);
  auto* vocab = app.add_option("--vocab", o.vocab,
                               "V, vocabulary size (default 512; with --tokenizer-corpus the size asked of "
                               "spm_train, and V becomes the tokenizer's actual size)");
  app.add_option("--seed", o.seed, "Random seed (same seed, same weights)")->capture_default_str();
  app.add_option("--dtype", o.dtype, "Weight dtype")->check(CLI::IsMember({"f32", "bf16", "f16"}))->capture_default_str();
  app.add_option("--tokenizer-corpus", o.tokenizer_corpus,
                 "Train a SentencePiece BPE tokenizer (byte fallback) on this text file with spm_train")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  const bool vocab_given = vocab->count() > 0;
  if (vocab_given && !o.config_file.empty() && o.tokenizer_corpus.empty()) {
    std::cerr << "tnl-make-test-model: --vocab with --config: edit vocab_size in the config instead\n";
    return 2;
  }
  const tnl::Status s = tnl::make_test_model(o, vocab_given);
  if (!s.is_ok()) {
    std::cerr << "tnl-make-test-model: " << s.to_string() << "\n";
    return 1;
  }
  return 0;
}
