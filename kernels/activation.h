// φ, the feature map applied to q and k (model-spec §2 `linear_act_fun`).
#pragma once

#include <cmath>

#include "kernels/host_device.h"

namespace tnl {

enum class Activation { kSilu, kOnePlusElu, kRelu, kElu, kSigmoid, kIdentity };

// The exponential and the division φ uses: IEEE-rounded division and the
// library's expf, on the CPU and in most kernels.
struct PreciseMath {
  TNL_HOST_DEVICE float exp(float x) const { return expf(x); }
  TNL_HOST_DEVICE float div(float n, float d) const { return n / d; }
};

// φ(x) with `math` supplying exp and div (a kernel whose result is rounded to
// bf16/fp16 right after may pass the GPU's faster approximations).
template <typename Math>
TNL_HOST_DEVICE inline float apply_activation(Activation a, float x, Math math) {
  switch (a) {
    case Activation::kSilu: return math.div(x, 1.0f + math.exp(-x));
    case Activation::kOnePlusElu: return x > 0.0f ? 1.0f + x : math.exp(x);  // 1 + elu(x)
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kElu: return x > 0.0f ? x : math.exp(x) - 1.0f;
    case Activation::kSigmoid: return math.div(1.0f, 1.0f + math.exp(-x));
    case Activation::kIdentity: return x;
  }
  return x;
}

TNL_HOST_DEVICE inline float apply_activation(Activation a, float x) { return apply_activation(a, x, PreciseMath{}); }

}  // namespace tnl
