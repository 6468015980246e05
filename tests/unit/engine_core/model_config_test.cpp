// config.json parsing/validation (model-spec §2) and the ALiBi-derived decay (§4).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/model_config.h"

namespace tnl {
namespace {

using ::testing::HasSubstr;

const char* kReleased385m = R"({
  "architectures": ["TransnormerForCausalLM"], "model_type": "transnormer",
  "vocab_size": 64000, "decoder_embed_dim": 1024, "decoder_layers": 24,
  "decoder_attention_heads": 8, "hidden_dim": 1024, "glu_dim": 2816,
  "linear_act_fun": "silu", "norm_type": "simplermsnorm",
  "linear_use_lrpe_list": [1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],
  "no_scale_embedding": false, "bias": false, "init_std": 0.02, "use_cache": true,
  "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "add_bos_token": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.31.0"})";

TEST(ModelConfig, ParsesReleasedConfig) {
  auto c = parse_model_config(kReleased385m, "config.json");
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_EQ(c->vocab_size, 64000);
  EXPECT_EQ(c->head_dim(), 128);
  EXPECT_EQ(c->key_dim(0), 256);
  EXPECT_EQ(c->key_dim(1), 128);
  EXPECT_EQ(c->activation, Activation::kSilu);
  EXPECT_TRUE(c->scale_embedding);
  EXPECT_TRUE(c->tie_word_embeddings);  // HF default when absent
  // Round trip through our writer.
  auto again = parse_model_config(model_config_to_json(*c), "again");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->glu_dim, 2816);
  EXPECT_EQ(again->lrpe_layers, c->lrpe_layers);
}

TEST(ModelConfig, DefaultsGluAndHiddenToWidth) {
  auto c = parse_model_config(
      R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "glu_dim": -1})",
      "c.json");
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_EQ(c->glu_dim, 16);
  EXPECT_EQ(c->hidden_dim, 16);
  EXPECT_EQ(c->lrpe_layers, std::vector<bool>({false, false}));
}

TEST(ModelConfig, UnknownFieldsAreIgnoredAndListed) {
  // Current transformers writes `dtype` (beside or instead of torch_dtype); fine-tunes
  // add their own keys. None of them may refuse the checkpoint.
  auto c = parse_model_config(
      R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2,
          "dtype": "bfloat16", "torch_dtype": "bfloat16", "quantization_config": {"bits": 8}, "my_key": [1]})",
      "c.json");
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_EQ(c->unknown_fields, std::vector<std::string>({"my_key", "quantization_config"}));
  EXPECT_EQ(c->dim, 16);
}

TEST(ModelConfig, ErrorsNameFileAndField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"{", "not valid JSON"},
      {R"({"decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2})", "vocab_size"},
      {R"({"vocab_size": "10", "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2})", "vocab_size"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 3})", "divisible"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 1, "decoder_attention_heads": 2})", "decoder_layers"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "dtype": 16})", "\"dtype\" must be a string"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "architectures": "x"})", "\"architectures\" must be a list"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16.5, "decoder_layers": 2, "decoder_attention_heads": 2})", "decoder_embed_dim"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "bias": "no"})", "bias"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "linear_use_lrpe_list": [1]})", "linear_use_lrpe_list"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "norm_type": "layernorm"})", "norm_type"},
      {R"({"vocab_size": 10, "decoder_embed_dim": -4, "decoder_layers": 2, "decoder_attention_heads": 2})", "decoder_embed_dim"},
      {R"({"vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2, "eos_token_id": 10})", "special token"},
      {R"({"model_type": "llama", "vocab_size": 10, "decoder_embed_dim": 16, "decoder_layers": 2, "decoder_attention_heads": 2})", "model_type"},
  };
  for (const Case& c : cases) {
    auto r = parse_model_config(c.json, "/ckpt/config.json");
    ASSERT_FALSE(r.has_value()) << c.json;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("/ckpt/config.json")) << c.json;
    EXPECT_THAT(r.status().message(), HasSubstr(c.message)) << c.json;
  }
}

TEST(AlibiSlopes, PowerOfTwo) {
  const std::vector<double> s = alibi_slopes(8);
  ASSERT_EQ(s.size(), 8u);
  for (int h = 0; h < 8; ++h) EXPECT_DOUBLE_EQ(s[h], std::pow(2.0, -(h + 1.0)));
}

TEST(AlibiSlopes, NotPowerOfTwoTakesEveryOtherSlopeOfTheNextPower) {
  const std::vector<double> s6 = alibi_slopes(6), s4 = alibi_slopes(4), s8 = alibi_slopes(8);
  ASSERT_EQ(s6.size(), 6u);
  for (int h = 0; h < 4; ++h) EXPECT_DOUBLE_EQ(s6[h], s4[h]);
  EXPECT_DOUBLE_EQ(s6[4], s8[0]);
  EXPECT_DOUBLE_EQ(s6[5], s8[2]);
}

TEST(DecayRates, LastLayerDecaysLeast) {
  ModelConfig c;
  c.num_layers = 4;
  c.num_heads = 2;
  const std::vector<double> first = decay_rates(c, 0), last = decay_rates(c, 3);
  EXPECT_DOUBLE_EQ(first[0], alibi_slopes(2)[0] * (1.0 + 1e-5));
  EXPECT_DOUBLE_EQ(last[1], alibi_slopes(2)[1] * 1e-5);
  EXPECT_NEAR(std::exp(-last[0]), 1.0, 1e-5);
}

}  // namespace
}  // namespace tnl
