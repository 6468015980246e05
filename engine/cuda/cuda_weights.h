// The model's weights on the GPU in T (bf16 or fp16), PyTorch layout [out, in].
// l1 and l2 are stacked into one [2G, d] matrix so the SGLU inputs come from one GEMM.
// A tensor-parallel rank holds its shard (engine/parallel/shard_layout.h): every
// shape below is then the shard's (H/T heads, D/T, G/T, V' vocabulary rows).
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/cuda/device_buffer.h"
#include "engine/parallel/shard_layout.h"

namespace tnl {

template <typename T>
struct CudaLayerWeights {
  DeviceBuffer<T> qkvu, qkvu_bias;  // [4D, d], [4D]
  DeviceBuffer<T> out, out_bias;    // [d, D], [d] (the bias on rank 0 only)
  DeviceBuffer<T> w12, b12;         // [2G, d], [2G]: l1 rows then l2 rows
  DeviceBuffer<T> l3, l3_bias;      // [d, G], [d] (the bias on rank 0 only)
  DeviceBuffer<float> theta;        // [H, e] fp32, LRPE layers only
  DeviceBuffer<float> rates;        // [H] decay rate s (λ = exp(−s))
};

template <typename T>
struct CudaWeights {
  DeviceBuffer<T> embed;    // [V, d]; a shard's last rows past V are zeros
  DeviceBuffer<T> lm_head;  // [V, d]; empty when tied
  std::vector<CudaLayerWeights<T>> layers;
  int64_t bytes = 0;        // device bytes of all weights
  const T* output_matrix() const { return lm_head.get() ? lm_head.get() : embed.get(); }
};

// Uploads and converts the shard's blocks of every tensor, straight from the
// memory-mapped file (synchronous on `stream`).
template <typename T>
Expected<CudaWeights<T>> upload_weights(const Checkpoint& checkpoint, const ShardLayout& shard, cudaStream_t stream);

// Random weights of any config, drawn on the GPU (benchmarks of shapes nobody has
// a checkpoint of): the distributions of write_random_checkpoint, uniform in
// place of its normal embedding, in the shard's shapes (each rank draws its
// own; λ and θ are the global heads'). Synchronous on `stream`.
template <typename T>
Expected<CudaWeights<T>> random_weights(const ShardLayout& shard, uint64_t seed, cudaStream_t stream);

}  // namespace tnl
