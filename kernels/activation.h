// φ, the feature map applied to q and k (model-spec §2 `linear_act_fun`).
#pragma once

#include <cmath>

namespace tnl {

enum class Activation { kSilu, kOnePlusElu, kRelu, kElu, kSigmoid, kIdentity };

#if defined(__CUDACC__)
#define TNL_HOST_DEVICE __host__ __device__
#else
#define TNL_HOST_DEVICE
#endif

TNL_HOST_DEVICE inline float apply_activation(Activation a, float x) {
  switch (a) {
    case Activation::kSilu: return x / (1.0f + expf(-x));
    case Activation::kOnePlusElu: return x > 0.0f ? 1.0f + x : expf(x);  // 1 + elu(x)
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kElu: return x > 0.0f ? x : expf(x) - 1.0f;
    case Activation::kSigmoid: return 1.0f / (1.0f + expf(-x));
    case Activation::kIdentity: return x;
  }
  return x;
}

}  // namespace tnl
