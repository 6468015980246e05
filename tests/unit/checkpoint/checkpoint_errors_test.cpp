// Checkpoint::open on broken directories: each failure is a Status whose
// message names the file and, where there is one, the tensor.
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>

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

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;
using test::tiny_config;
using testing::HasSubstr;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// Rewrites the JSON header of a safetensors file, keeping its data section.
// Offsets are relative to the data section, so they stay valid.
void edit_header(const fs::path& path, const std::function<void(json&)>& edit) {
  const std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  json header = json::parse(bytes.substr(8, n));
  edit(header);
  const std::string text = header.dump();
  const uint64_t m = text.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &m, 8);
  write_file(path, out + text + bytes.substr(8 + n));
}

class CheckpointErrors : public testing::Test {
 protected:
  void SetUp() override {
    config_ = tiny_config();
    ASSERT_TRUE(write_random_checkpoint(dir_.path(), config_, 21, DType::kF32).is_ok());
  }
  // The message of the (expected) failure to open the directory.
  std::string open_error() {
    auto ckpt = Checkpoint::open(dir_.path());
    EXPECT_FALSE(ckpt.has_value()) << "opened a broken checkpoint";
    return ckpt ? "" : ckpt.status().message();
  }
  void rewrite_tensors(const std::function<void(std::vector<TensorData>&)>& edit) {
    auto tensors = random_checkpoint_tensors(config_, 21, DType::kF32);
    edit(tensors);
    ASSERT_TRUE(write_safetensors(weights(), tensors).is_ok());
  }
  fs::path weights() const { return dir_ / "model.safetensors"; }

  ModelConfig config_;
  TempDir dir_;
};

TEST_F(CheckpointErrors, MissingTensor) {
  const std::string name = layer_tensor_name(1, kL2Weight);
  rewrite_tensors([&](auto& t) { std::erase_if(t, [&](const TensorData& x) { return x.name == name; }); });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr("missing tensor \"" + name + "\""));
  EXPECT_THAT(msg, HasSubstr("[48, 32]"));
}

TEST_F(CheckpointErrors, MissingLrpeThetaOnAnLrpeLayer) {
  const std::string name = layer_tensor_name(0, kLrpeTheta);
  rewrite_tensors([&](auto& t) { std::erase_if(t, [&](const TensorData& x) { return x.name == name; }); });
  EXPECT_THAT(open_error(), HasSubstr(name));
}

TEST_F(CheckpointErrors, UntiedWithoutLmHead) {
  config_.tie_word_embeddings = false;
  write_file(dir_ / "config.json", model_config_to_json(config_));
  rewrite_tensors([&](auto& t) { std::erase_if(t, [](const TensorData& x) { return x.name == kLmHeadName; }); });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr(kLmHeadName));
}

TEST_F(CheckpointErrors, BiasRequiredWhenConfigSaysSo) {
  config_.bias = true;
  write_file(dir_ / "config.json", model_config_to_json(config_));
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr(layer_tensor_name(0, kQkvuBias)));
}

TEST_F(CheckpointErrors, WrongShape) {
  const std::string name = layer_tensor_name(2, kOutWeight);
  rewrite_tensors([&](auto& t) {
    for (TensorData& x : t) {
      if (x.name == name) x.shape = {16, 64};  // same bytes, wrong shape
    }
  });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr(name));
  EXPECT_THAT(msg, HasSubstr("expected shape [32, 32], got [16, 64]"));
}

TEST_F(CheckpointErrors, WrongThetaShape) {
  const std::string name = layer_tensor_name(0, kLrpeTheta);
  rewrite_tensors([&](auto& t) {
    for (TensorData& x : t) {
      if (x.name == name) x.shape = {4, 8};
    }
  });
  EXPECT_THAT(open_error(), HasSubstr("expected shape [4, 1, 8], got [4, 8]"));
}

TEST_F(CheckpointErrors, UnexpectedTensor) {
  rewrite_tensors([](auto& t) {
    std::vector<float> v(4, 1.0f);
    t.push_back(tensor_from_f32("model.layers.0.token_mixer.rotary.inv_freq", {4}, v, DType::kF32));
  });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr("unexpected tensor \"model.layers.0.token_mixer.rotary.inv_freq\""));
}

TEST_F(CheckpointErrors, BiasWhenConfigHasNone) {
  const std::string name = layer_tensor_name(1, kL3Bias);
  rewrite_tensors([&](auto& t) {
    std::vector<float> v(32, 0.01f);
    t.push_back(tensor_from_f32(name, {32}, v, DType::kF32));
  });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(name));
  EXPECT_THAT(msg, HasSubstr("\"bias\": false"));
}

TEST_F(CheckpointErrors, ThetaOnANonLrpeLayer) {
  const std::string name = layer_tensor_name(2, kLrpeTheta);
  rewrite_tensors([&](auto& t) {
    std::vector<float> v(32, 0.5f);
    t.push_back(tensor_from_f32(name, {4, 1, 8}, v, DType::kF32));
  });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(name));
  EXPECT_THAT(msg, HasSubstr("linear_use_lrpe_list"));
}

TEST_F(CheckpointErrors, NonFiniteWeightsAreRefusedNamingTheTensor) {
  // A NaN or Inf weight used to load silently; every request then answered 200
  // with garbage. Each dtype, each kind of non-finite value.
  const std::string name = layer_tensor_name(1, kL3Weight);
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (float value : bad) {
      auto tensors = random_checkpoint_tensors(config_, 21, dtype);
      for (TensorData& t : tensors) {
        if (t.name != name) continue;
        std::vector<float> values(size_t(t.bytes.size() / size_t(dtype_size(dtype))), 0.25f);
        values[7] = value;
        t = tensor_from_f32(t.name, t.shape, values, dtype);
      }
      ASSERT_TRUE(write_safetensors(weights(), tensors).is_ok());
      const std::string msg = open_error();
      EXPECT_THAT(msg, HasSubstr(weights().string())) << dtype_name(dtype);
      EXPECT_THAT(msg, HasSubstr("\"" + name + "\""));
      EXPECT_THAT(msg, HasSubstr("non-finite value (NaN or Inf) at element 7"));
    }
  }
}

TEST_F(CheckpointErrors, UnsupportedDType) {
  const std::string name = layer_tensor_name(1, kL1Weight);
  for (const char* dtype : {"I8", "F64"}) {
    ASSERT_TRUE(write_random_checkpoint(dir_.path(), config_, 21, DType::kF32).is_ok());
    edit_header(weights(), [&](json& h) { h[name]["dtype"] = dtype; });
    const std::string msg = open_error();
    EXPECT_THAT(msg, HasSubstr(weights().string()));
    EXPECT_THAT(msg, HasSubstr(name));
    EXPECT_THAT(msg, HasSubstr("unsupported dtype \"" + std::string(dtype) + "\""));
  }
}

TEST_F(CheckpointErrors, TruncatedFile) {
  const std::string bytes = read_file(weights());
  write_file(weights(), bytes.substr(0, bytes.size() - 10));
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  // The tensor written last is the one that no longer fits.
  EXPECT_THAT(msg, HasSubstr(required_tensors(config_).back().name));
  EXPECT_THAT(msg, HasSubstr("truncated"));
}

TEST_F(CheckpointErrors, TruncatedInsideHeader) {
  write_file(weights(), read_file(weights()).substr(0, 100));
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr("exceeds the file size"));
  write_file(weights(), "abc");
  EXPECT_THAT(open_error(), HasSubstr("truncated"));
  write_file(weights(), "");
  EXPECT_THAT(open_error(), HasSubstr("truncated"));
}

TEST_F(CheckpointErrors, AbsurdHeaderLength) {
  std::string bytes = read_file(weights());
  const uint64_t absurd = uint64_t{1} << 40;
  std::memcpy(bytes.data(), &absurd, 8);
  write_file(weights(), bytes);
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr("absurd"));
}

TEST_F(CheckpointErrors, DataOffsetsOutsideFile) {
  const std::string name = layer_tensor_name(0, kOutWeight);
  edit_header(weights(), [&](json& h) { h[name]["data_offsets"] = {1u << 30, (1u << 30) + 32 * 32 * 4}; });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr(name));
  EXPECT_THAT(msg, HasSubstr("outside the data section"));
}

TEST_F(CheckpointErrors, OverlappingTensors) {
  const std::string a = layer_tensor_name(0, kL1Weight), b = layer_tensor_name(0, kL2Weight);
  edit_header(weights(), [&](json& h) { h[b]["data_offsets"] = h[a]["data_offsets"]; });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr(a));
  EXPECT_THAT(msg, HasSubstr(b));
  EXPECT_THAT(msg, HasSubstr("overlaps"));
}

TEST_F(CheckpointErrors, ByteLengthDisagreesWithShape) {
  const std::string name = layer_tensor_name(1, kL3Weight);
  edit_header(weights(), [&](json& h) {
    auto begin = h[name]["data_offsets"][0].get<int64_t>();
    h[name]["data_offsets"][1] = begin + 100;
  });
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(weights().string()));
  EXPECT_THAT(msg, HasSubstr(name));
  EXPECT_THAT(msg, HasSubstr("byte length 100"));
}

TEST_F(CheckpointErrors, NoWeightsFile) {
  fs::remove(weights());
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(dir_.path().string()));
  EXPECT_THAT(msg, HasSubstr("model.safetensors"));
}

TEST_F(CheckpointErrors, NoConfig) {
  fs::remove(dir_ / "config.json");
  EXPECT_THAT(open_error(), HasSubstr("config.json"));
}

// A sharded layout: layer 0 and the embedding in shard 1, the rest in shard 2.
class ShardedCheckpointErrors : public CheckpointErrors {
 protected:
  void SetUp() override {
    CheckpointErrors::SetUp();
    fs::remove(weights());
    std::vector<TensorData> first, second;
    index_ = {{"metadata", json::object()}, {"weight_map", json::object()}};
    for (TensorData& t : random_checkpoint_tensors(config_, 21, DType::kF32)) {
      const bool early = t.name == kEmbedName || t.name.rfind("model.layers.0.", 0) == 0;
      index_["weight_map"][t.name] = early ? kShard1 : kShard2;
      (early ? first : second).push_back(std::move(t));
    }
    ASSERT_TRUE(write_safetensors(dir_ / kShard1, first).is_ok());
    ASSERT_TRUE(write_safetensors(dir_ / kShard2, second).is_ok());
    write_index();
    auto ok = Checkpoint::open(dir_.path());
    ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  }
  void write_index() { write_file(index_path(), index_.dump(2)); }
  fs::path index_path() const { return dir_ / kShardIndexFile; }

  static constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char* kShard2 = "model-00002-of-00002.safetensors";
  json index_;
};

TEST_F(ShardedCheckpointErrors, ShardFileMissing) {
  fs::remove(dir_ / kShard2);
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(kShard2));
  EXPECT_THAT(msg, HasSubstr("shard file missing"));
  EXPECT_THAT(msg, HasSubstr("model.layers."));  // names a tensor the index puts there
}

TEST_F(ShardedCheckpointErrors, IndexNotJson) {
  write_file(index_path(), "{\"weight_map\": {");
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(index_path().string()));
  EXPECT_THAT(msg, HasSubstr("malformed index"));
}

TEST_F(ShardedCheckpointErrors, IndexWithoutWeightMap) {
  write_file(index_path(), R"({"metadata": {}})");
  EXPECT_THAT(open_error(), HasSubstr("weight_map"));
  write_file(index_path(), R"({"weight_map": {}})");
  EXPECT_THAT(open_error(), HasSubstr("empty"));
}

TEST_F(ShardedCheckpointErrors, IndexMapsToNonString) {
  index_["weight_map"][kEmbedName] = 3;
  write_index();
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(index_path().string()));
  EXPECT_THAT(msg, HasSubstr(kEmbedName));
}

TEST_F(ShardedCheckpointErrors, IndexPointsOutsideTheDirectory) {
  index_["weight_map"][kEmbedName] = "../elsewhere.safetensors";
  write_index();
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(kEmbedName));
  EXPECT_THAT(msg, HasSubstr("not a file name in the checkpoint directory"));
}

TEST_F(ShardedCheckpointErrors, IndexPlacesTensorInTheWrongShard) {
  index_["weight_map"][kEmbedName] = kShard2;
  write_index();
  const std::string msg = open_error();
  // Either shard may be examined first; both failures name a shard and the embedding.
  EXPECT_THAT(msg, HasSubstr(kEmbedName));
  EXPECT_THAT(msg, HasSubstr("-of-00002.safetensors"));
}

TEST_F(ShardedCheckpointErrors, TensorMissingFromIndexAndShards) {
  const std::string name = layer_tensor_name(2, kL1Weight);
  index_["weight_map"].erase(name);
  write_index();
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(kShard2));  // the shard holds a tensor the index does not list
  EXPECT_THAT(msg, HasSubstr(name));
}

TEST_F(ShardedCheckpointErrors, TruncatedShard) {
  const std::string bytes = read_file(dir_ / kShard1);
  write_file(dir_ / kShard1, bytes.substr(0, bytes.size() - 1));
  const std::string msg = open_error();
  EXPECT_THAT(msg, HasSubstr(kShard1));
  EXPECT_THAT(msg, HasSubstr("truncated"));
}

}  // namespace
}  // namespace tnl
