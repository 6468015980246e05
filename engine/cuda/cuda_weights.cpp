#include "engine/cuda/cuda_weights.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/launchers.h"

namespace tnl {
namespace {

cuda::ElementType element_type(DType d) {
  switch (d) {
    case DType::kF32: return cuda::ElementType::kF32;
    case DType::kBF16: return cuda::ElementType::kBF16;
    case DType::kF16: return cuda::ElementType::kF16;
  }
  return cuda::ElementType::kF32;
}

// Copies raw file bytes to the device through `staging`, then converts to T at dst.
template <typename T>
Status upload_into(const TensorView& t, T* dst, DeviceBuffer<std::byte>& staging, cudaStream_t stream) {
  TNL_RETURN_IF_ERROR(staging.reserve(t.num_bytes));
  TNL_CUDA_TRY(cudaMemcpyAsync(staging.get(), t.data, size_t(t.num_bytes), cudaMemcpyHostToDevice, stream));
  TNL_CUDA_TRY(cuda::convert_elements<T>(element_type(t.dtype), staging.get(), t.numel(), dst, stream));
  // The staging buffer is reused by the next tensor: finish this one first.
  TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::ok();
}

template <typename T>
Status upload(const Checkpoint& c, const std::string& name, DeviceBuffer<T>* out, DeviceBuffer<std::byte>& staging,
              cudaStream_t stream, int64_t* bytes) {
  const TensorView& t = c.tensor(name);
  TNL_RETURN_IF_ERROR(out->allocate(t.numel()));
  *bytes += out->bytes();
  return upload_into(t, out->get(), staging, stream);
}

Status upload_f32(const std::vector<float>& host, DeviceBuffer<float>* out, int64_t* bytes) {
  TNL_RETURN_IF_ERROR(out->allocate(int64_t(host.size())));
  *bytes += out->bytes();
  TNL_CUDA_TRY(cudaMemcpy(out->get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  return Status::ok();
}

}  // namespace

template <typename T>
Expected<CudaWeights<T>> upload_weights(const Checkpoint& c, cudaStream_t stream) {
  const ModelConfig& cfg = c.config();
  CudaWeights<T> w;
  DeviceBuffer<std::byte> staging;
  TNL_RETURN_IF_ERROR(upload(c, kEmbedName, &w.embed, staging, stream, &w.bytes));
  if (!cfg.tie_word_embeddings) TNL_RETURN_IF_ERROR(upload(c, kLmHeadName, &w.lm_head, staging, stream, &w.bytes));
  w.layers.resize(cfg.num_layers);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    CudaLayerWeights<T>& lw = w.layers[l];
    auto name = [&](const char* suffix) { return layer_tensor_name(l, suffix); };
    TNL_RETURN_IF_ERROR(upload(c, name("token_mixer.qkvu_proj.weight"), &lw.qkvu, staging, stream, &w.bytes));
    TNL_RETURN_IF_ERROR(upload(c, name("token_mixer.out_proj.weight"), &lw.out, staging, stream, &w.bytes));
    TNL_RETURN_IF_ERROR(upload(c, name("channel_mixer.l3.weight"), &lw.l3, staging, stream, &w.bytes));
    const int64_t gd = cfg.glu_dim * cfg.dim;
    TNL_RETURN_IF_ERROR(lw.w12.allocate(2 * gd));
    w.bytes += lw.w12.bytes();
    TNL_RETURN_IF_ERROR(upload_into(c.tensor(name("channel_mixer.l1.weight")), lw.w12.get(), staging, stream));
    TNL_RETURN_IF_ERROR(upload_into(c.tensor(name("channel_mixer.l2.weight")), lw.w12.get() + gd, staging, stream));
    if (cfg.bias) {
      TNL_RETURN_IF_ERROR(upload(c, name("token_mixer.qkvu_proj.bias"), &lw.qkvu_bias, staging, stream, &w.bytes));
      TNL_RETURN_IF_ERROR(upload(c, name("token_mixer.out_proj.bias"), &lw.out_bias, staging, stream, &w.bytes));
      TNL_RETURN_IF_ERROR(upload(c, name("channel_mixer.l3.bias"), &lw.l3_bias, staging, stream, &w.bytes));
      TNL_RETURN_IF_ERROR(lw.b12.allocate(2 * cfg.glu_dim));
      w.bytes += lw.b12.bytes();
      TNL_RETURN_IF_ERROR(upload_into(c.tensor(name("channel_mixer.l1.bias")), lw.b12.get(), staging, stream));
      TNL_RETURN_IF_ERROR(
          upload_into(c.tensor(name("channel_mixer.l2.bias")), lw.b12.get() + cfg.glu_dim, staging, stream));
    }
    if (cfg.lrpe_layers[l]) TNL_RETURN_IF_ERROR(upload_f32(c.to_f32(name("token_mixer.lrpe.theta")), &lw.theta, &w.bytes));
    std::vector<float> rates;
    for (double s : decay_rates(cfg, l)) rates.push_back(float(s));
    TNL_RETURN_IF_ERROR(upload_f32(rates, &lw.rates, &w.bytes));
  }
  return w;
}

template <typename T>
Expected<CudaWeights<T>> random_weights(const ModelConfig& cfg, uint64_t seed, cudaStream_t stream) {
  CudaWeights<T> w;
  // Each tensor gets its own stream of the counter-based generator.
  auto fill = [&](DeviceBuffer<T>* out, int64_t n, float bound) -> Status {
    TNL_RETURN_IF_ERROR(out->allocate(n));
    w.bytes += out->bytes();
    TNL_CUDA_TRY(cuda::fill_uniform<T>(out->get(), n, seed++ * 0x9E3779B97F4A7C15ull, bound, stream));
    return Status::ok();
  };
  auto linear = [&](DeviceBuffer<T>* out, int64_t rows, int64_t in) {
    return fill(out, rows * in, float(1.0 / std::sqrt(double(in))));
  };
  const int64_t d = cfg.dim, D = cfg.hidden_dim, G = cfg.glu_dim;
  TNL_RETURN_IF_ERROR(fill(&w.embed, cfg.vocab_size * d, 1.7320508f));  // unit variance
  if (!cfg.tie_word_embeddings) TNL_RETURN_IF_ERROR(linear(&w.lm_head, cfg.vocab_size, d));
  w.layers.resize(cfg.num_layers);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    CudaLayerWeights<T>& lw = w.layers[l];
    TNL_RETURN_IF_ERROR(linear(&lw.qkvu, 4 * D, d));
    TNL_RETURN_IF_ERROR(linear(&lw.out, d, D));
    TNL_RETURN_IF_ERROR(linear(&lw.w12, 2 * G, d));
    TNL_RETURN_IF_ERROR(linear(&lw.l3, d, G));
    if (cfg.bias) {
      TNL_RETURN_IF_ERROR(fill(&lw.qkvu_bias, 4 * D, 0.02f));
      TNL_RETURN_IF_ERROR(fill(&lw.out_bias, d, 0.02f));
      TNL_RETURN_IF_ERROR(fill(&lw.b12, 2 * G, 0.02f));
      TNL_RETURN_IF_ERROR(fill(&lw.l3_bias, d, 0.02f));
    }
    if (cfg.lrpe_layers[l]) {
      std::vector<float> theta(static_cast<size_t>(D));  // the authors' 10000^(−2j/D)
      for (int64_t j = 0; j < D; ++j) theta[j] = float(std::pow(10000.0, -2.0 / double(D) * double(j)));
      TNL_RETURN_IF_ERROR(upload_f32(theta, &lw.theta, &w.bytes));
    }
    std::vector<float> rates;
    for (double s : decay_rates(cfg, l)) rates.push_back(float(s));
    TNL_RETURN_IF_ERROR(upload_f32(rates, &lw.rates, &w.bytes));
  }
  TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  return w;
}

template Expected<CudaWeights<__nv_bfloat16>> random_weights<__nv_bfloat16>(const ModelConfig&, uint64_t, cudaStream_t);
template Expected<CudaWeights<__half>> random_weights<__half>(const ModelConfig&, uint64_t, cudaStream_t);
template Expected<CudaWeights<__nv_bfloat16>> upload_weights<__nv_bfloat16>(const Checkpoint&, cudaStream_t);
template Expected<CudaWeights<__half>> upload_weights<__half>(const Checkpoint&, cudaStream_t);

}  // namespace tnl
