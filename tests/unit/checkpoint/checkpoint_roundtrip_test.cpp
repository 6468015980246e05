// Random checkpoints written and opened again: every tensor of model-spec §3 is
// found with its shape, dtype conversion preserves the values, and the layouts
// (single file, shards, tied/untied, bias, LRPE) are all accepted.
#include <cmath>
#include <cstring>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/random_checkpoint.h"
#include "engine/checkpoint/safetensors_writer.h"
#include "engine/checkpoint/shard_index.h"
#include "engine/checkpoint/tensor_names.h"
#include "tests/support/test_model.h"

namespace tnl {
namespace {

using test::TempDir;
using test::tiny_config;

std::unique_ptr<Checkpoint> open_ok(const std::filesystem::path& dir) {
  auto ckpt = Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
  return ckpt ? std::move(*ckpt) : nullptr;
}

void expect_all_tensors(const Checkpoint& ckpt, DType dtype) {
  for (const TensorSpec& spec : required_tensors(ckpt.config())) {
    ASSERT_TRUE(ckpt.has(spec.name)) << spec.name;
    const TensorView& t = ckpt.tensor(spec.name);
    EXPECT_EQ(t.shape, spec.shape) << spec.name;
    EXPECT_EQ(t.dtype, dtype) << spec.name;
    EXPECT_EQ(t.num_bytes, t.numel() * dtype_size(dtype)) << spec.name;
    EXPECT_THAT(t.file, testing::EndsWith(".safetensors"));
    const std::vector<float> v = ckpt.to_f32(spec.name);
    bool any_nonzero = false;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x)) << spec.name;
      any_nonzero |= x != 0.0f;
    }
    EXPECT_TRUE(any_nonzero) << spec.name << " is all zeros";
  }
}

class RoundTripByDType : public testing::TestWithParam<DType> {};

TEST_P(RoundTripByDType, WrittenValuesComeBackWithinRounding) {
  const DType dtype = GetParam();
  const ModelConfig config = tiny_config();
  TempDir tmp;
  ASSERT_TRUE(write_random_checkpoint(tmp.path(), config, 7, dtype).is_ok());
  auto ckpt = open_ok(tmp.path());
  ASSERT_NE(ckpt, nullptr);
  expect_all_tensors(*ckpt, dtype);

  // The file holds exactly the generator's values, encoded as dtype.
  for (const TensorData& t : random_checkpoint_tensors(config, 7, dtype)) {
    const TensorView& view = ckpt->tensor(t.name);
    ASSERT_EQ(view.num_bytes, static_cast<int64_t>(t.bytes.size()));
    EXPECT_EQ(std::memcmp(view.data, t.bytes.data(), t.bytes.size()), 0) << t.name;
  }
  // And the fp32 values are the generator's fp32 values within dtype rounding.
  const auto f32 = random_checkpoint_tensors(config, 7, DType::kF32);
  const double tolerance = dtype == DType::kF32 ? 0.0 : dtype == DType::kBF16 ? 1.0 / 128 : 1.0 / 1024;
  for (const TensorData& t : f32) {
    std::vector<float> want(t.bytes.size() / 4);
    convert_to_f32(DType::kF32, t.bytes.data(), static_cast<int64_t>(want.size()), want.data());
    const std::vector<float> got = ckpt->to_f32(t.name);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_LE(std::fabs(got[i] - want[i]), tolerance * std::fabs(want[i]) + 1e-7) << t.name << "[" << i << "]";
    }
  }
  EXPECT_EQ(ckpt->output_matrix().data, ckpt->tensor(kEmbedName).data);  // tied
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, RoundTripByDType, testing::Values(DType::kF32, DType::kBF16, DType::kF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(CheckpointRoundTrip, ConfigComesBack) {
  const auto dir = test::make_random_checkpoint(tiny_config(), 1);
  ASSERT_FALSE(dir.empty());
  auto ckpt = open_ok(dir);
  ASSERT_NE(ckpt, nullptr);
  EXPECT_EQ(model_config_to_json(ckpt->config()), model_config_to_json(tiny_config()));
  EXPECT_EQ(ckpt->dir(), dir);
  EXPECT_TRUE(ckpt->has(layer_tensor_name(0, kLrpeTheta)));
  EXPECT_FALSE(ckpt->has(layer_tensor_name(1, kLrpeTheta)));
  EXPECT_FALSE(ckpt->has(kLmHeadName));
  EXPECT_EQ(ckpt->tensor(layer_tensor_name(0, kLrpeTheta)).shape, (std::vector<int64_t>{4, 1, 8}));
}

TEST(CheckpointRoundTrip, CachedFixtureIsDeterministic) {
  const auto a = test::make_random_checkpoint(tiny_config(), 3, DType::kBF16);
  const auto b = test::make_random_checkpoint(tiny_config(), 3, DType::kBF16);
  const auto c = test::make_random_checkpoint(tiny_config(), 4, DType::kBF16);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto ca = open_ok(a), cc = open_ok(c);
  ASSERT_TRUE(ca && cc);
  EXPECT_NE(ca->to_f32(kEmbedName), cc->to_f32(kEmbedName));
}

TEST(CheckpointRoundTrip, UntiedBiasAndAllLrpeLayers) {
  ModelConfig config = tiny_config();
  config.tie_word_embeddings = false;
  config.bias = true;
  config.lrpe_layers = {true, true, true};
  config.scale_embedding = false;
  TempDir tmp;
  ASSERT_TRUE(write_random_checkpoint(tmp.path(), config, 11, DType::kF32).is_ok());
  auto ckpt = open_ok(tmp.path());
  ASSERT_NE(ckpt, nullptr);
  expect_all_tensors(*ckpt, DType::kF32);
  EXPECT_TRUE(ckpt->has(kLmHeadName));
  EXPECT_TRUE(ckpt->has(layer_tensor_name(2, kL3Bias)));
  EXPECT_EQ(ckpt->tensor(layer_tensor_name(1, kQkvuBias)).shape, (std::vector<int64_t>{4 * 32}));
  EXPECT_EQ(ckpt->output_matrix().data, ckpt->tensor(kLmHeadName).data);
  EXPECT_NE(ckpt->to_f32(kLmHeadName), ckpt->to_f32(kEmbedName));
}

TEST(CheckpointRoundTrip, TiedCheckpointMayCarryAnIgnoredLmHead) {
  const ModelConfig config = tiny_config();
  TempDir tmp;
  ASSERT_TRUE(write_random_checkpoint(tmp.path(), config, 5, DType::kF32).is_ok());
  auto tensors = random_checkpoint_tensors(config, 5, DType::kF32);
  std::vector<float> lm(config.vocab_size * config.dim, 0.25f);
  tensors.push_back(tensor_from_f32(kLmHeadName, {config.vocab_size, config.dim}, lm, DType::kF32));
  ASSERT_TRUE(write_safetensors(tmp / "model.safetensors", tensors).is_ok());
  auto ckpt = open_ok(tmp.path());
  ASSERT_NE(ckpt, nullptr);
  EXPECT_EQ(ckpt->output_matrix().data, ckpt->tensor(kEmbedName).data);
  EXPECT_FALSE(ckpt->has(kLmHeadName));
}

TEST(CheckpointRoundTrip, ThetaFollowsTheAuthorsInitWithinTheRandomFactor) {
  const ModelConfig config = tiny_config();
  for (const TensorData& t : random_checkpoint_tensors(config, 9, DType::kF32)) {
    if (t.name != layer_tensor_name(0, kLrpeTheta)) continue;
    std::vector<float> theta(t.bytes.size() / 4);
    convert_to_f32(DType::kF32, t.bytes.data(), static_cast<int64_t>(theta.size()), theta.data());
    ASSERT_EQ(theta.size(), 32u);
    for (size_t j = 0; j < theta.size(); ++j) {
      const double base = std::pow(10000.0, -2.0 / 32.0 * double(j));
      EXPECT_GE(theta[j], 0.5 * base * (1 - 1e-6));
      EXPECT_LE(theta[j], 1.5 * base * (1 + 1e-6));
    }
    return;
  }
  FAIL() << "no lrpe.theta on layer 0";
}

// Two shards plus model.safetensors.index.json, split by layer.
TEST(CheckpointRoundTrip, ShardedCheckpoint) {
  ModelConfig config = tiny_config();
  config.tie_word_embeddings = false;
  TempDir tmp;
  ASSERT_TRUE(write_random_checkpoint(tmp.path(), config, 13, DType::kBF16).is_ok());
  std::filesystem::remove(tmp / "model.safetensors");
  std::vector<TensorData> first, second;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (TensorData& t : random_checkpoint_tensors(config, 13, DType::kBF16)) {
    const bool early = t.name == kEmbedName || t.name.rfind("model.layers.0.", 0) == 0;
    const char* shard = early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    index["weight_map"][t.name] = shard;
    (early ? first : second).push_back(std::move(t));
  }
  ASSERT_TRUE(write_safetensors(tmp / "model-00001-of-00002.safetensors", first).is_ok());
  ASSERT_TRUE(write_safetensors(tmp / "model-00002-of-00002.safetensors", second).is_ok());
  std::ofstream(tmp / kShardIndexFile) << index.dump(2);

  auto ckpt = open_ok(tmp.path());
  ASSERT_NE(ckpt, nullptr);
  expect_all_tensors(*ckpt, DType::kBF16);
  EXPECT_THAT(ckpt->tensor(kEmbedName).file, testing::HasSubstr("model-00001-of-00002"));
  EXPECT_THAT(ckpt->tensor(kLmHeadName).file, testing::HasSubstr("model-00002-of-00002"));
}

}  // namespace
}  // namespace tnl
