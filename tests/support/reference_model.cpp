#include "tests/support/reference_model.h"

#include <cmath>

#include "kernels/cpu/reference.h"

namespace tnl::test {

std::vector<float> reference_logits(const Checkpoint& ckpt, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = ckpt.config();
  const int64_t n = int64_t(tokens.size()), d = c.dim, D = c.hidden_dim, G = c.glu_dim, H = c.num_heads;
  const int64_t e = c.head_dim(), V = c.vocab_size;
  auto weight = [&](int64_t l, const char* suffix) { return ckpt.to_f32(layer_tensor_name(l, suffix)); };
  auto bias = [&](int64_t l, const char* suffix) {
    return c.bias ? ckpt.to_f32(layer_tensor_name(l, suffix)) : std::vector<float>{};
  };
  auto maybe = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };

  const std::vector<float> embed = ckpt.to_f32(kEmbedName);
  std::vector<float> x(n * d);
  const float scale = c.scale_embedding ? float(std::sqrt(double(d))) : 1.0f;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < d; ++i) x[t * d + i] = embed[int64_t(tokens[t]) * d + i] * scale;
  }

  std::vector<float> a(n * d), qkvu(n * 4 * D), o(n * D), y(n * d), g1(n * G), g2(n * G);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    ref::srms_norm(x.data(), a.data(), n, d);
    const auto wqkvu = weight(l, "token_mixer.qkvu_proj.weight");
    const auto bqkvu = bias(l, "token_mixer.qkvu_proj.bias");
    ref::linear(a.data(), wqkvu.data(), maybe(bqkvu), n, d, 4 * D, qkvu.data());
    const std::vector<double> rates = decay_rates(c, l);
    const int64_t ek = c.key_dim(l);
    std::vector<float> theta;
    if (c.lrpe_layers[l]) theta = ckpt.to_f32(layer_tensor_name(l, "token_mixer.lrpe.theta"));
    for (int64_t h = 0; h < H; ++h) {
      std::vector<float> qh(n * e), kh(n * e), vh(n * e), q(n * ek), k(n * ek), oh(n * e);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t i = 0; i < e; ++i) {
          qh[t * e + i] = apply_activation(c.activation, qkvu[t * 4 * D + h * e + i]);
          kh[t * e + i] = apply_activation(c.activation, qkvu[t * 4 * D + D + h * e + i]);
          vh[t * e + i] = qkvu[t * 4 * D + 2 * D + h * e + i];
        }
      }
      if (c.lrpe_layers[l]) {
        ref::lrpe(qh.data(), e, theta.data() + h * e, n, e, 0, q.data());
        ref::lrpe(kh.data(), e, theta.data() + h * e, n, e, 0, k.data());
      } else {
        q = qh;
        k = kh;
      }
      ref::attention_quadratic(q.data(), k.data(), vh.data(), n, ek, e, float(rates[h]), oh.data());
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t i = 0; i < e; ++i) o[t * D + h * e + i] = oh[t * e + i];
      }
    }
    ref::srms_norm(o.data(), o.data(), n, D);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < D; ++i) o[t * D + i] *= qkvu[t * 4 * D + 3 * D + i];
    }
    const auto wout = weight(l, "token_mixer.out_proj.weight");
    const auto bout = bias(l, "token_mixer.out_proj.bias");
    ref::linear(o.data(), wout.data(), maybe(bout), n, D, d, y.data());
    for (int64_t i = 0; i < n * d; ++i) x[i] += y[i];

    ref::srms_norm(x.data(), a.data(), n, d);
    const auto w1 = weight(l, "channel_mixer.l1.weight"), w2 = weight(l, "channel_mixer.l2.weight");
    const auto w3 = weight(l, "channel_mixer.l3.weight");
    const auto b1 = bias(l, "channel_mixer.l1.bias"), b2 = bias(l, "channel_mixer.l2.bias");
    const auto b3 = bias(l, "channel_mixer.l3.bias");
    ref::linear(a.data(), w1.data(), maybe(b1), n, d, G, g1.data());
    ref::linear(a.data(), w2.data(), maybe(b2), n, d, G, g2.data());
    for (int64_t i = 0; i < n * G; ++i) g1[i] *= g2[i];
    ref::linear(g1.data(), w3.data(), maybe(b3), n, G, d, y.data());
    for (int64_t i = 0; i < n * d; ++i) x[i] += y[i];
  }
  ref::srms_norm(x.data(), a.data(), n, d);
  std::vector<float> logits(n * V);
  const std::vector<float> out = c.tie_word_embeddings ? embed : ckpt.to_f32(kLmHeadName);
  ref::linear(a.data(), out.data(), nullptr, n, d, V, logits.data());
  return logits;
}

}  // namespace tnl::test
