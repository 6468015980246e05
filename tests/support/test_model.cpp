#include "tests/support/test_model.h"

#include <stdlib.h>  // mkdtemp

#include <cstdio>
#include <system_error>
#include <utility>

#include <gtest/gtest.h>

#include "engine/checkpoint/random_checkpoint.h"
#include "tests/support/test_paths.h"

namespace tnl::test {
namespace {

namespace fs = std::filesystem;

// Bump when random_checkpoint's values or layout change, so stale cached
// fixtures in the build tree are not reused.
constexpr int kFixtureVersion = 1;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

fs::path make_unique_dir(const fs::path& parent, const std::string& prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  std::string pattern = (parent / (prefix + "XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

}  // namespace

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = 96;
  c.dim = 32;
  c.num_layers = 3;
  c.num_heads = 4;
  c.hidden_dim = 32;
  c.glu_dim = 48;
  c.activation = Activation::kSilu;
  c.simple_rms_norm = true;
  c.lrpe_layers = {true, false, false};
  c.scale_embedding = true;
  c.bias = false;
  c.tie_word_embeddings = true;
  return c;
}

fs::path make_random_checkpoint(const ModelConfig& config, uint64_t seed, DType dtype) {
  const std::string key = model_config_to_json(config) + "|" + std::to_string(seed) + "|" + dtype_name(dtype) +
                          "|" + std::to_string(kFixtureVersion);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(key)));
  const fs::path cache = binary_dir() / "test_models";
  const fs::path dir = cache / (std::string("random-") + hex);
  if (fs::exists(dir / "model.safetensors")) return dir;

  // Write into a private directory, then rename: concurrent tests (ctest -j)
  // never see a half-written checkpoint, and the loser of a race just uses the winner's.
  const fs::path staging = make_unique_dir(cache, ".staging-");
  if (staging.empty()) {
    ADD_FAILURE() << "make_random_checkpoint: cannot create a directory under " << cache;
    return {};
  }
  const Status s = write_random_checkpoint(staging, config, seed, dtype);
  if (!s.is_ok()) {
    fs::remove_all(staging);
    ADD_FAILURE() << "make_random_checkpoint: " << s.to_string();
    return {};
  }
  std::error_code ec;
  fs::rename(staging, dir, ec);
  if (ec) fs::remove_all(staging, ec);  // another process won the race
  if (!fs::exists(dir / "model.safetensors")) {
    ADD_FAILURE() << "make_random_checkpoint: could not place the checkpoint at " << dir;
    return {};
  }
  return dir;
}

TempDir::TempDir() : path_(make_unique_dir(fs::temp_directory_path(), "tnl-test-")) {
  if (path_.empty()) ADD_FAILURE() << "TempDir: cannot create a directory under " << fs::temp_directory_path();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    TempDir discard(std::move(*this));
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

}  // namespace tnl::test
