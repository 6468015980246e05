#include "engine/cpu/cpu_weights.h"

namespace tnl {

CpuWeights load_cpu_weights(const Checkpoint& checkpoint) {
  const ModelConfig& c = checkpoint.config();
  CpuWeights w;
  w.embed = checkpoint.to_f32(kEmbedName);
  if (!c.tie_word_embeddings) w.lm_head = checkpoint.to_f32(kLmHeadName);
  w.layers.resize(c.num_layers);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    CpuLayerWeights& lw = w.layers[l];
    auto get = [&](const std::string& suffix) { return checkpoint.to_f32(layer_tensor_name(l, suffix)); };
    lw.qkvu = get("token_mixer.qkvu_proj.weight");
    lw.out = get("token_mixer.out_proj.weight");
    lw.l1 = get("channel_mixer.l1.weight");
    lw.l2 = get("channel_mixer.l2.weight");
    lw.l3 = get("channel_mixer.l3.weight");
    if (c.bias) {
      lw.qkvu_bias = get("token_mixer.qkvu_proj.bias");
      lw.out_bias = get("token_mixer.out_proj.bias");
      lw.l1_bias = get("channel_mixer.l1.bias");
      lw.l2_bias = get("channel_mixer.l2.bias");
      lw.l3_bias = get("channel_mixer.l3.bias");
    }
    if (c.lrpe_layers[l]) lw.theta = get("token_mixer.lrpe.theta");  // [H,1,e] == [H,e]
    for (double s : decay_rates(c, l)) lw.decay_rate.push_back(float(s));
  }
  return w;
}

}  // namespace tnl
