// CPU reference implementations of every kernel of the model (model-spec §4–5).
//
// These are the ground truth the CUDA kernels are tested against, and the
// building blocks of the CPU backend. All tensors are fp32, row-major, contiguous.
// Attention functions work on one (sequence, head): q, k are [n, ek], v is [n, e],
// the state S is [ek, e], and `rate` is the decay rate s (λ = exp(−s)); λ^k is
// always exp(−s·k), never a repeated product.
#pragma once

#include <cstdint>

#include "kernels/activation.h"

namespace tnl::ref {

constexpr float kNormEps = 1e-6f;

// y[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + 1e-6), accumulated in double. y may alias x.
void srms_norm(const float* x, float* y, int64_t rows, int64_t width);

// x ← φ(x) elementwise.
void activate(Activation a, float* x, int64_t n);

// LRPE (model-spec §4): for rows at absolute positions start_pos … start_pos+n−1,
// out[r] = [x[r] ⊙ cos(θ·t), x[r] ⊙ sin(θ·t)]. x is [n, e] with row stride
// x_stride, theta is [e], out is [n, 2e]. The angle θ·t is formed in double.
void lrpe(const float* x, int64_t x_stride, const float* theta, int64_t n, int64_t e,
          int64_t start_pos, float* out);

// 1. Quadratic: o = ((Q Kᵀ) ⊙ M) V with M[t,j] = λ^(t−j), j ≤ t. Accumulates in
// double; reference only (O(n²)). Starts from a zero state.
void attention_quadratic(const float* q, const float* k, const float* v, int64_t n, int64_t ek,
                         int64_t e, float rate, float* o);

// 2. Recurrent: S ← λS + k vᵀ; o = qᵀS, token by token. `state` [ek, e] in/out.
void attention_recurrent(const float* q, const float* k, const float* v, int64_t n, int64_t ek,
                         int64_t e, float rate, float* state, float* o);

// 3. Blocked (Lightning Attention): blocks of `block` tokens, intra-block masked
// product plus inter-block term from the incoming state; `state` in/out. Matrix
// products go through BLAS. `scratch` needs blocked_attention_scratch_floats().
int64_t blocked_attention_scratch_floats(int64_t block, int64_t ek, int64_t e);
void attention_blocked(const float* q, const float* k, const float* v, int64_t n, int64_t ek,
                       int64_t e, float rate, int64_t block, float* state, float* o,
                       float* scratch);

// y[m, out] = x[m, in] · Wᵀ (+ bias), W is [out, in] (PyTorch layout). BLAS sgemm.
void linear(const float* x, const float* w, const float* bias, int64_t m, int64_t in, int64_t out,
            float* y);
// The same, writing y with a row stride of y_stride floats (a column tile of a wider output).
void linear_strided(const float* x, const float* w, const float* bias, int64_t m, int64_t in,
                    int64_t out, float* y, int64_t y_stride);

}  // namespace tnl::ref
