#include "kernels/cpu/reference.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace tnl::ref {

void srms_norm(const float* x, float* y, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * width;
    double sum_sq = 0.0;
    for (int64_t i = 0; i < width; ++i) sum_sq += double(xr[i]) * double(xr[i]);
    const float inv = float(1.0 / std::sqrt(sum_sq / double(width) + double(kNormEps)));
    float* yr = y + r * width;
    for (int64_t i = 0; i < width; ++i) yr[i] = xr[i] * inv;
  }
}

void activate(Activation a, float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = apply_activation(a, x[i]);
}

void lrpe(const float* x, int64_t x_stride, const float* theta, int64_t n, int64_t e,
          int64_t start_pos, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    const double t = double(start_pos + r);
    const float* xr = x + r * x_stride;
    float* o = out + r * 2 * e;
    for (int64_t i = 0; i < e; ++i) {
      const double angle = double(theta[i]) * t;
      o[i] = float(double(xr[i]) * std::cos(angle));
      o[e + i] = float(double(xr[i]) * std::sin(angle));
    }
  }
}

void attention_quadratic(const float* q, const float* k, const float* v, int64_t n, int64_t ek,
                         int64_t e, float rate, float* o) {
  std::vector<double> acc(e);
  for (int64_t t = 0; t < n; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j <= t; ++j) {
      double score = 0.0;
      for (int64_t c = 0; c < ek; ++c) score += double(q[t * ek + c]) * double(k[j * ek + c]);
      score *= std::exp(-double(rate) * double(t - j));
      for (int64_t c = 0; c < e; ++c) acc[c] += score * double(v[j * e + c]);
    }
    for (int64_t c = 0; c < e; ++c) o[t * e + c] = float(acc[c]);
  }
}

void attention_recurrent(const float* q, const float* k, const float* v, int64_t n, int64_t ek,
                         int64_t e, float rate, float* state, float* o) {
  const float lambda = std::exp(-rate);
  for (int64_t t = 0; t < n; ++t) {
    const float* qt = q + t * ek;
    const float* kt = k + t * ek;
    const float* vt = v + t * e;
    float* ot = o + t * e;
    std::fill(ot, ot + e, 0.0f);
    for (int64_t a = 0; a < ek; ++a) {
      float* s = state + a * e;
      for (int64_t c = 0; c < e; ++c) s[c] = lambda * s[c] + kt[a] * vt[c];
      for (int64_t c = 0; c < e; ++c) ot[c] += qt[a] * s[c];
    }
  }
}

int64_t blocked_attention_scratch_floats(int64_t block, int64_t ek, int64_t e) {
  // scores [B,B], decayed keys [B,ek], decay powers [B+1]
  return block * block + block * ek + (block + 1) + 0 * e;
}

void attention_blocked(const float* q, const float* k, const float* v, int64_t n, int64_t ek,
                       int64_t e, float rate, int64_t block, float* state, float* o,
                       float* scratch) {
  float* scores = scratch;                  // [B, B]
  float* decayed_k = scores + block * block; // [B, ek]
  float* power = decayed_k + block * ek;     // power[i] = λ^i, i = 0…B
  for (int64_t i = 0; i <= block; ++i) power[i] = std::exp(-rate * float(i));

  for (int64_t p = 0; p < n; p += block) {
    const int64_t m = std::min(block, n - p);
    const float* qb = q + p * ek;
    const float* kb = k + p * ek;
    const float* vb = v + p * e;
    float* ob = o + p * e;

    // inter: o[r] = λ^(r+1) · q_rᵀ S  (S: all tokens before p)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(e), int(ek), 1.0f, qb,
                int(ek), state, int(e), 0.0f, ob, int(e));
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < e; ++c) ob[r * e + c] *= power[r + 1];
    }
    // intra: o += ((Q Kᵀ) ⊙ M) V, M[r,j] = λ^(r−j) for j ≤ r
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(m), int(ek), 1.0f, qb,
                int(ek), kb, int(ek), 0.0f, scores, int(m));
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t j = 0; j < m; ++j) scores[r * m + j] = j <= r ? scores[r * m + j] * power[r - j] : 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(e), int(m), 1.0f, scores,
                int(m), vb, int(e), 1.0f, ob, int(e));
    // outgoing state: S' = λ^m S + Σ_r λ^(m−1−r) k_r v_rᵀ
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < ek; ++c) decayed_k[r * ek + c] = kb[r * ek + c] * power[m - 1 - r];
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(ek), int(e), int(m), 1.0f, decayed_k,
                int(ek), vb, int(e), power[m], state, int(e));
  }
}

void linear(const float* x, const float* w, const float* bias, int64_t m, int64_t in, int64_t out,
            float* y) {
  linear_strided(x, w, bias, m, in, out, y, out);
}

void linear_strided(const float* x, const float* w, const float* bias, int64_t m, int64_t in,
                    int64_t out, float* y, int64_t y_stride) {
  if (bias) {
    for (int64_t r = 0; r < m; ++r) std::copy(bias, bias + out, y + r * y_stride);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(out), int(in), 1.0f, x, int(in),
              w, int(in), bias ? 1.0f : 0.0f, y, int(y_stride));
}

}  // namespace tnl::ref
