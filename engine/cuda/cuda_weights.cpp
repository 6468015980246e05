#include "engine/cuda/cuda_weights.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "engine/checkpoint/tensor_block.h"
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

// Copies a block of a tensor's raw file bytes to the device through `staging`
// (rows of whole width in one copy, a column block as a strided one), then
// converts it to T at dst, rows × cols row-major.
template <typename T>
Status upload_block(const TensorView& t, TensorBlock block, T* dst, DeviceBuffer<std::byte>& staging,
                    cudaStream_t stream) {
  block = resolve_block(t, block);
  const int64_t cols = tensor_matrix_cols(t), esize = dtype_size(t.dtype);
  const int64_t numel = block.rows * block.cols;
  if (numel == 0) return Status::ok();
  TNL_RETURN_IF_ERROR(staging.reserve(numel * esize));
  const std::byte* src = t.data + (block.row_begin * cols + block.col_begin) * esize;
  TNL_CUDA_TRY(cudaMemcpy2DAsync(staging.get(), size_t(block.cols * esize), src, size_t(cols * esize),
                                 size_t(block.cols * esize), size_t(block.rows), cudaMemcpyHostToDevice, stream));
  TNL_CUDA_TRY(cuda::convert_elements<T>(element_type(t.dtype), staging.get(), numel, dst, stream));
  // The staging buffer is reused by the next block: finish this one first.
  TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::ok();
}

// Blocks of one tensor stacked row-wise into a new buffer of `rows` × cols
// elements (more rows than the blocks have: zeros after them).
template <typename T>
Status upload_blocks(const TensorView& t, const std::vector<TensorBlock>& blocks, int64_t rows, DeviceBuffer<T>* out,
                     DeviceBuffer<std::byte>& staging, cudaStream_t stream, int64_t* bytes) {
  int64_t cols = -1, filled = 0;
  for (const TensorBlock& b : blocks) cols = resolve_block(t, b).cols;
  TNL_RETURN_IF_ERROR(out->allocate(rows * cols));
  *bytes += out->bytes();
  for (const TensorBlock& b : blocks) {
    TNL_RETURN_IF_ERROR(upload_block(t, b, out->get() + filled * cols, staging, stream));
    filled += b.rows;
  }
  if (filled < rows) {
    TNL_CUDA_TRY(cudaMemsetAsync(out->get() + filled * cols, 0, size_t((rows - filled) * cols) * sizeof(T), stream));
  }
  return Status::ok();
}

Status upload_f32(const std::vector<float>& host, DeviceBuffer<float>* out, int64_t* bytes) {
  TNL_RETURN_IF_ERROR(out->allocate(int64_t(host.size())));
  *bytes += out->bytes();
  TNL_CUDA_TRY(cudaMemcpy(out->get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  return Status::ok();
}

}  // namespace

template <typename T>
Expected<CudaWeights<T>> upload_weights(const Checkpoint& c, const ShardLayout& shard, cudaStream_t stream) {
  const ModelConfig& cfg = shard.local;
  CudaWeights<T> w;
  DeviceBuffer<std::byte> staging;
  auto load = [&](const std::string& name, const std::vector<TensorBlock>& blocks, int64_t rows, DeviceBuffer<T>* out) {
    return upload_blocks(c.tensor(name), blocks, rows, out, staging, stream, &w.bytes);
  };
  const int64_t V = cfg.vocab_size, D = cfg.hidden_dim, G = cfg.glu_dim, d = cfg.dim;
  TNL_RETURN_IF_ERROR(load(kEmbedName, {shard.vocab_block()}, V, &w.embed));
  if (!cfg.tie_word_embeddings) TNL_RETURN_IF_ERROR(load(kLmHeadName, {shard.vocab_block()}, V, &w.lm_head));
  w.layers.resize(cfg.num_layers);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    CudaLayerWeights<T>& lw = w.layers[l];
    auto name = [&](const char* suffix) { return layer_tensor_name(l, suffix); };
    TNL_RETURN_IF_ERROR(load(name("token_mixer.qkvu_proj.weight"), shard.qkvu_rows(), 4 * D, &lw.qkvu));
    TNL_RETURN_IF_ERROR(load(name("token_mixer.out_proj.weight"), {shard.out_proj_cols()}, d, &lw.out));
    TNL_RETURN_IF_ERROR(load(name("channel_mixer.l3.weight"), {shard.l3_cols()}, d, &lw.l3));
    TNL_RETURN_IF_ERROR(lw.w12.allocate(2 * G * d));
    w.bytes += lw.w12.bytes();
    TNL_RETURN_IF_ERROR(upload_block(c.tensor(name("channel_mixer.l1.weight")), shard.glu_rows(), lw.w12.get(), staging, stream));
    TNL_RETURN_IF_ERROR(
        upload_block(c.tensor(name("channel_mixer.l2.weight")), shard.glu_rows(), lw.w12.get() + G * d, staging, stream));
    if (cfg.bias) {
      TNL_RETURN_IF_ERROR(load(name("token_mixer.qkvu_proj.bias"), shard.qkvu_rows(), 4 * D, &lw.qkvu_bias));
      if (shard.holds_reduced_biases()) {
        TNL_RETURN_IF_ERROR(load(name("token_mixer.out_proj.bias"), {TensorBlock::whole_rows(0, d)}, d, &lw.out_bias));
        TNL_RETURN_IF_ERROR(load(name("channel_mixer.l3.bias"), {TensorBlock::whole_rows(0, d)}, d, &lw.l3_bias));
      }
      TNL_RETURN_IF_ERROR(lw.b12.allocate(2 * G));
      w.bytes += lw.b12.bytes();
      TNL_RETURN_IF_ERROR(upload_block(c.tensor(name("channel_mixer.l1.bias")), shard.glu_rows(), lw.b12.get(), staging, stream));
      TNL_RETURN_IF_ERROR(
          upload_block(c.tensor(name("channel_mixer.l2.bias")), shard.glu_rows(), lw.b12.get() + G, staging, stream));
    }
    if (cfg.lrpe_layers[l]) {
      TNL_RETURN_IF_ERROR(upload_f32(block_to_f32(c.tensor(name("token_mixer.lrpe.theta")), shard.theta_rows()),
                                     &lw.theta, &w.bytes));
    }
    std::vector<float> rates;
    for (double s : shard.decay_rates(l)) rates.push_back(float(s));
    TNL_RETURN_IF_ERROR(upload_f32(rates, &lw.rates, &w.bytes));
  }
  TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  return w;
}

template <typename T>
Expected<CudaWeights<T>> random_weights(const ShardLayout& shard, uint64_t seed, cudaStream_t stream) {
  const ModelConfig& cfg = shard.local;
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
      // The authors' 10000^(−2j/D) over the whole model's channels j; this rank's heads.
      const int64_t global_d = shard.global.hidden_dim, first = shard.head_begin() * cfg.head_dim();
      std::vector<float> theta(static_cast<size_t>(D));
      for (int64_t j = 0; j < D; ++j) theta[j] = float(std::pow(10000.0, -2.0 / double(global_d) * double(first + j)));
      TNL_RETURN_IF_ERROR(upload_f32(theta, &lw.theta, &w.bytes));
    }
    std::vector<float> rates;
    for (double s : shard.decay_rates(l)) rates.push_back(float(s));
    TNL_RETURN_IF_ERROR(upload_f32(rates, &lw.rates, &w.bytes));
  }
  TNL_CUDA_TRY(cudaStreamSynchronize(stream));
  return w;
}

template Expected<CudaWeights<__nv_bfloat16>> random_weights<__nv_bfloat16>(const ShardLayout&, uint64_t, cudaStream_t);
template Expected<CudaWeights<__half>> random_weights<__half>(const ShardLayout&, uint64_t, cudaStream_t);
template Expected<CudaWeights<__nv_bfloat16>> upload_weights<__nv_bfloat16>(const Checkpoint&, const ShardLayout&,
                                                                           cudaStream_t);
template Expected<CudaWeights<__half>> upload_weights<__half>(const Checkpoint&, const ShardLayout&, cudaStream_t);

}  // namespace tnl
