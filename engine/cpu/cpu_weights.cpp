#include "engine/cpu/cpu_weights.h"

namespace tnl {
namespace {

// The rank's vocabulary rows of an [V, d] matrix, zero rows padding it to V'.
std::vector<float> vocab_rows(const Checkpoint& checkpoint, const TensorView& t, const ShardLayout& shard) {
  std::vector<float> rows = block_to_f32(t, shard.vocab_block());
  rows.resize(size_t(shard.local.vocab_size * checkpoint.config().dim), 0.0f);
  return rows;
}

}  // namespace

CpuWeights load_cpu_weights(const Checkpoint& checkpoint, const ShardLayout& shard) {
  const ModelConfig& c = checkpoint.config();
  CpuWeights w;
  w.embed = vocab_rows(checkpoint, checkpoint.tensor(kEmbedName), shard);
  if (!c.tie_word_embeddings) w.lm_head = vocab_rows(checkpoint, checkpoint.tensor(kLmHeadName), shard);
  w.layers.resize(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    CpuLayerWeights& lw = w.layers[l];
    auto tensor = [&](const std::string& suffix) -> const TensorView& {
      return checkpoint.tensor(layer_tensor_name(l, suffix));
    };
    lw.qkvu = blocks_to_f32(tensor("token_mixer.qkvu_proj.weight"), shard.qkvu_rows());
    lw.out = block_to_f32(tensor("token_mixer.out_proj.weight"), shard.out_proj_cols());
    lw.l1 = block_to_f32(tensor("channel_mixer.l1.weight"), shard.glu_rows());
    lw.l2 = block_to_f32(tensor("channel_mixer.l2.weight"), shard.glu_rows());
    lw.l3 = block_to_f32(tensor("channel_mixer.l3.weight"), shard.l3_cols());
    if (c.bias) {
      lw.qkvu_bias = blocks_to_f32(tensor("token_mixer.qkvu_proj.bias"), shard.qkvu_rows());
      lw.l1_bias = block_to_f32(tensor("channel_mixer.l1.bias"), shard.glu_rows());
      lw.l2_bias = block_to_f32(tensor("channel_mixer.l2.bias"), shard.glu_rows());
      if (shard.holds_reduced_biases()) {
        lw.out_bias = checkpoint.to_f32(layer_tensor_name(l, "token_mixer.out_proj.bias"));
        lw.l3_bias = checkpoint.to_f32(layer_tensor_name(l, "channel_mixer.l3.bias"));
      }
    }
    if (c.lrpe_layers[l]) lw.theta = block_to_f32(tensor("token_mixer.lrpe.theta"), shard.theta_rows());
    for (double s : shard.decay_rates(l)) lw.decay_rate.push_back(float(s));
  }
  return w;
}

}  // namespace tnl
