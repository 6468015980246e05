// Embedding gather × scale: x[t, :] = E[token_t, :] · scale (model-spec §4), fp32 out.
// The table may be a tensor-parallel rank's vocabulary shard: rows for tokens
// [vocab_begin, vocab_begin + vocab); other tokens give zero rows, so that the
// all-reduce over ranks assembles every token's row.
// One CTA per token; 8 elements (16 bytes of T) per thread step when d % 8 == 0.
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/launchers.h"

namespace tnl::cuda {
namespace {

template <typename T>
__global__ void embed_kernel(const T* table, int64_t vocab, int64_t vocab_begin, int64_t dim, const int32_t* tokens,
                             float scale, float* x) {
  const int64_t t = blockIdx.x;
  const int64_t token = int64_t(tokens[t]) - vocab_begin;
  float* xt = x + t * dim;
  const bool valid = token >= 0 && token < vocab;
  const T* row = table + int64_t(valid ? token : 0) * dim;
  if (dim % 8 == 0) {
    for (int64_t i = threadIdx.x * 8; i < dim; i += blockDim.x * 8) {
      const auto p = *reinterpret_cast<const detail::Pack8<T>*>(row + i);
      float4 a, b;
      a.x = detail::to_f32(p.v[0]) * scale; a.y = detail::to_f32(p.v[1]) * scale;
      a.z = detail::to_f32(p.v[2]) * scale; a.w = detail::to_f32(p.v[3]) * scale;
      b.x = detail::to_f32(p.v[4]) * scale; b.y = detail::to_f32(p.v[5]) * scale;
      b.z = detail::to_f32(p.v[6]) * scale; b.w = detail::to_f32(p.v[7]) * scale;
      if (!valid) a = b = make_float4(0.f, 0.f, 0.f, 0.f);
      *reinterpret_cast<float4*>(xt + i) = a;
      *reinterpret_cast<float4*>(xt + i + 4) = b;
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) xt[i] = valid ? detail::to_f32(row[i]) * scale : 0.0f;
  }
}

}  // namespace

template <typename T>
cudaError_t embed_tokens(const T* table, int64_t vocab, int64_t vocab_begin, int64_t dim, const int32_t* tokens,
                         int64_t n, float scale, float* x, cudaStream_t stream) {
  if (vocab <= 0 || vocab_begin < 0 || dim <= 0 || n < 0 || !table || !tokens || !x) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  embed_kernel<<<unsigned(n), 128, 0, stream>>>(table, vocab, vocab_begin, dim, tokens, scale, x);
  return cudaGetLastError();
}

template cudaError_t embed_tokens<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, int64_t, const int32_t*,
                                                 int64_t, float, float*, cudaStream_t);
template cudaError_t embed_tokens<__half>(const __half*, int64_t, int64_t, int64_t, const int32_t*, int64_t, float,
                                          float*, cudaStream_t);

}  // namespace tnl::cuda
