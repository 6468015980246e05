// tnl-make-test-model end to end: the directories it writes open as valid
// checkpoints, with the requested config and, given a corpus, a tokenizer
// whose size becomes V. Skips when the tool is not built in this build tree.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/tensor_names.h"
#include "tests/support/test_model.h"
#include "tests/support/test_paths.h"

namespace tnl {
namespace {

namespace fs = std::filesystem;

fs::path tool() { return test::binary_dir() / "tools" / "tnl-make-test-model"; }

// Runs the tool with `args`; returns its exit status.
int run_tool(const std::string& args) {
  std::string cmd = tool().string();  // build paths hold no quotes or spaces
  cmd.append(" ").append(args).append(" > /dev/null 2>&1");
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class MakeTestModel : public testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(tool())) GTEST_SKIP() << tool() << " is not built";
  }
  test::TempDir dir_;
};

TEST_F(MakeTestModel, SizeFlagsGiveThatConfig) {
  const fs::path out = dir_ / "m";
  ASSERT_EQ(run_tool("--out '" + out.string() +
                     "' --layers 3 --dim 32 --heads 4 --hidden 32 --glu 48 --vocab 96 --lrpe 1,0,1 --act relu"
                     " --bias --untied --no-scale-embedding --dtype bf16 --seed 4"),
            0);
  auto ckpt = Checkpoint::open(out);
  ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
  const ModelConfig& c = (*ckpt)->config();
  EXPECT_EQ(c.vocab_size, 96);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.glu_dim, 48);
  EXPECT_EQ(c.lrpe_layers, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(c.activation, Activation::kRelu);
  EXPECT_TRUE(c.bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.scale_embedding);
  EXPECT_EQ((*ckpt)->tensor(kEmbedName).dtype, DType::kBF16);
  EXPECT_TRUE((*ckpt)->has(layer_tensor_name(2, kLrpeTheta)));
}

TEST_F(MakeTestModel, ConfigFileAndSeedAreReproducible) {
  const fs::path a = dir_ / "a", b = dir_ / "b";
  std::ofstream(dir_ / "config.json") << model_config_to_json(test::tiny_config());
  ASSERT_EQ(run_tool("--out '" + a.string() + "' --config '" + (dir_ / "config.json").string() + "' --seed 9"), 0);
  ASSERT_EQ(run_tool("--out '" + b.string() + "' --config '" + (dir_ / "config.json").string() + "' --seed 9"), 0);
  auto ca = Checkpoint::open(a), cb = Checkpoint::open(b);
  ASSERT_TRUE(ca.has_value() && cb.has_value());
  EXPECT_EQ(model_config_to_json((*ca)->config()), model_config_to_json(test::tiny_config()));
  EXPECT_EQ((*ca)->to_f32(kEmbedName), (*cb)->to_f32(kEmbedName));
}

TEST_F(MakeTestModel, RejectsBadFlags) {
  const std::string out = "--out '" + (dir_ / "bad").string() + "'";
  EXPECT_NE(run_tool(out + " --layers 4 --lrpe 1,0"), 0);
  EXPECT_NE(run_tool(out + " --heads 3"), 0);
  EXPECT_NE(run_tool(out + " --dtype f64"), 0);
  EXPECT_NE(run_tool(out + " --act tanh"), 0);
  EXPECT_NE(run_tool(out + " --layers 1 --lrpe 1"), 0);
  EXPECT_NE(run_tool(""), 0);  // --out is required
}

TEST_F(MakeTestModel, TrainsATokenizerAndUsesItsSize) {
  const fs::path corpus = test::source_dir() / "tests" / "data" / "tokenizer_corpus.txt";
  if (!fs::exists(corpus)) GTEST_SKIP() << corpus << " is missing";
  if (std::system("command -v spm_train > /dev/null 2>&1") != 0) GTEST_SKIP() << "spm_train not on PATH";
  const fs::path out = dir_ / "tok";
  ASSERT_EQ(run_tool("--out '" + out.string() + "' --tokenizer-corpus '" + corpus.string() + "' --vocab 400"), 0);
  EXPECT_TRUE(fs::exists(out / "tokenizer.model"));
  std::ifstream tc(out / "tokenizer_config.json");
  const nlohmann::json tokenizer_config = nlohmann::json::parse(tc, nullptr, false);
  EXPECT_EQ(tokenizer_config.value("add_bos_token", false), true);
  EXPECT_EQ(tokenizer_config.value("add_eos_token", true), false);
  auto ckpt = Checkpoint::open(out);
  ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->config().vocab_size, 400);
  EXPECT_EQ((*ckpt)->tensor(kEmbedName).shape[0], 400);
}

}  // namespace
}  // namespace tnl
