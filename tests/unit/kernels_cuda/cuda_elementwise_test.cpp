// The row-wise kernels of a layer against their CPU references on random inputs:
// embedding gather × scale, SRMSNorm (all rows and gathered rows), the
// post-attention norm ⊙ u, the SGLU product, bias adds, the φ/LRPE split of
// qkvu into head-major q, k, v, and weight conversion; the tensor-parallel
// pieces (a vocabulary shard's embedding, the norm split over ranks, the
// single-device all-reduce). Widths with and without
// the 16-byte vector path. Outputs are poisoned (NaN) first. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <vector>

#include "kernels/cpu/reference.h"
#include "kernels/cuda/launchers.h"
#include "tests/support/random.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using test::DeviceVector;
using test::relative_error;

// Outputs rounded to a 16-bit type: half an ulp of bf16 is 2⁻⁹ ≈ 2e-3 per element.
constexpr double kRoundedTolerance = 5e-3;

template <typename T>
class ElementwiseTest : public ::testing::Test {
 protected:
  void SetUp() override { TNL_SKIP_WITHOUT_CUDA(); }
};
using ElementTypes = ::testing::Types<__nv_bfloat16, __half>;
TYPED_TEST_SUITE(ElementwiseTest, ElementTypes);

TYPED_TEST(ElementwiseTest, EmbeddingGatherScalesAndZeroesInvalidIds) {
  using T = TypeParam;
  for (int64_t d : {256, 100}) {
    const int64_t V = 50;
    const std::vector<float> table = test::rounded<T>(test::random_vector(V * d, d));
    const std::vector<int32_t> tokens = {3, 49, 0, 17, -1, 50, 3};
    const float scale = 16.0f;
    std::vector<float> ref(tokens.size() * d, 0.0f);
    for (size_t t = 0; t < tokens.size(); ++t) {
      if (tokens[t] < 0 || tokens[t] >= V) continue;
      for (int64_t i = 0; i < d; ++i) ref[t * d + i] = table[tokens[t] * d + i] * scale;
    }
    DeviceVector<T> dtable(table);
    DeviceVector<int32_t> dtokens(tokens);
    DeviceVector<float> dx(ref.size());
    dx.poison();
    TNL_EXPECT_CUDA_OK(cuda::embed_tokens<T>(dtable.get(), V, 0, d, dtokens.get(), int64_t(tokens.size()), scale, dx.get(), nullptr));
    EXPECT_EQ(dx.to_host(), ref) << "d=" << d;  // an exact product of two representable values
  }
}

// A rank's vocabulary shard: rows for tokens [begin, begin + rows), zeros for
// every other token, so that the ranks' rows add up to the whole table's.
TYPED_TEST(ElementwiseTest, EmbeddingShardGivesItsRowsAndZerosElsewhere) {
  using T = TypeParam;
  const int64_t V = 50, d = 64, begin = 17, rows = 17;
  const std::vector<float> table = test::rounded<T>(test::random_vector(V * d, 77));
  const std::vector<float> shard(table.begin() + begin * d, table.begin() + (begin + rows) * d);
  const std::vector<int32_t> tokens = {3, 17, 33, 34, 20, 49, 0};
  std::vector<float> ref(tokens.size() * d, 0.0f);
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < begin || tokens[t] >= begin + rows) continue;
    for (int64_t i = 0; i < d; ++i) ref[t * d + i] = table[tokens[t] * d + i] * 2.0f;
  }
  DeviceVector<T> dshard(shard);
  DeviceVector<int32_t> dtokens(tokens);
  DeviceVector<float> dx(ref.size());
  dx.poison();
  TNL_EXPECT_CUDA_OK(cuda::embed_tokens<T>(dshard.get(), rows, begin, d, dtokens.get(), int64_t(tokens.size()), 2.0f,
                                           dx.get(), nullptr));
  EXPECT_EQ(dx.to_host(), ref);
}

TYPED_TEST(ElementwiseTest, SrmsNormOfAllRowsAndOfGatheredRows) {
  using T = TypeParam;
  for (int64_t d : {1024, 70}) {
    const int64_t n = 9;
    const std::vector<float> x = test::random_vector(n * d, d, -3.0f, 3.0f);
    std::vector<float> ref(n * d);
    ref::srms_norm(x.data(), ref.data(), n, d);
    DeviceVector<float> dx(x);
    DeviceVector<T> dy(size_t(n * d));
    dy.poison();
    TNL_EXPECT_CUDA_OK(cuda::srms_norm<T>(dx.get(), d, nullptr, n, dy.get(), nullptr));
    EXPECT_LT(relative_error(dy.to_host(), ref), kRoundedTolerance) << "d=" << d;

    const std::vector<int32_t> rows = {8, 0, 4};
    std::vector<float> ref_rows;
    for (int32_t r : rows) ref_rows.insert(ref_rows.end(), ref.begin() + r * d, ref.begin() + (r + 1) * d);
    DeviceVector<int32_t> drows(rows);
    DeviceVector<T> dg(ref_rows.size());
    dg.poison();
    TNL_EXPECT_CUDA_OK(cuda::srms_norm<T>(dx.get(), d, drows.get(), int64_t(rows.size()), dg.get(), nullptr));
    EXPECT_LT(relative_error(dg.to_host(), ref_rows), kRoundedTolerance) << "gathered, d=" << d;
  }
}

TYPED_TEST(ElementwiseTest, NormGateOverAllChannelsTimesU) {
  using T = TypeParam;
  for (int64_t D : {512, 36}) {
    const int64_t n = 7, stride = 4 * D;  // u sits in the qkvu rows
    const std::vector<float> o = test::rounded<T>(test::random_vector(n * D, D, -2.0f, 2.0f));
    const std::vector<float> qkvu = test::rounded<T>(test::random_vector(n * stride, D + 1));
    std::vector<float> ref(n * D);
    ref::srms_norm(o.data(), ref.data(), n, D);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < D; ++i) ref[t * D + i] *= qkvu[t * stride + 3 * D + i];
    }
    DeviceVector<T> dob(o), dqkvu(qkvu), dg(size_t(n * D));
    dg.poison();
    TNL_EXPECT_CUDA_OK(cuda::norm_gate<T>(dob.get(), dqkvu.get() + 3 * D, stride, n, D, dg.get(), nullptr));
    EXPECT_LT(relative_error(dg.to_host(), ref), kRoundedTolerance) << "D=" << D;
  }
}

// Tensor parallelism: each rank's sums of squares over its channels, added in
// rank order by sum_rank_buffers (the single-device all-reduce), then each rank's
// gated norm; the shards side by side equal the whole norm_gate.
TYPED_TEST(ElementwiseTest, NormGateSplitOverRanksEqualsTheWholeNorm) {
  using T = TypeParam;
  for (auto [D, ranks] : {std::pair<int64_t, int64_t>{512, 4}, {36, 3}}) {
    const int64_t n = 7, stride = 4 * D, w = D / ranks;
    const std::vector<float> o = test::rounded<T>(test::random_vector(n * D, D + 3, -2.0f, 2.0f));
    const std::vector<float> qkvu = test::rounded<T>(test::random_vector(n * stride, D + 4));
    std::vector<float> ref(n * D);
    ref::srms_norm(o.data(), ref.data(), n, D);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < D; ++i) ref[t * D + i] *= qkvu[t * stride + 3 * D + i];
    }
    // Rank r's o [n, w] and u (its qkvu rows [n, 4w], u at 3w), as the rank holds them.
    std::deque<DeviceVector<T>> ro, ru;  // deque: DeviceVector does not move
    std::deque<DeviceVector<float>> sums;
    cuda::RankBufferSet set;
    set.count = int32_t(ranks);
    for (int64_t r = 0; r < ranks; ++r) {
      std::vector<float> o_r(n * w), u_r(n * 4 * w);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t i = 0; i < w; ++i) {
          o_r[t * w + i] = o[t * D + r * w + i];
          u_r[t * 4 * w + 3 * w + i] = qkvu[t * stride + 3 * D + r * w + i];
        }
      }
      ro.emplace_back(o_r);
      ru.emplace_back(u_r);
      sums.emplace_back(size_t(n));
      sums.back().poison();
      TNL_EXPECT_CUDA_OK(cuda::row_sum_squares<T>(ro.back().get(), n, w, sums.back().get(), nullptr));
      set.data[r] = sums.back().get();
    }
    TNL_EXPECT_CUDA_OK(cuda::sum_rank_buffers(set, n, nullptr));
    std::vector<float> got(n * D);
    for (int64_t r = 0; r < ranks; ++r) {
      DeviceVector<T> g(size_t(n * w));
      g.poison();
      TNL_EXPECT_CUDA_OK(cuda::norm_gate_summed<T>(ro[r].get(), ru[r].get() + 3 * w, 4 * w, n, w, sums[r].get(), D,
                                                   g.get(), nullptr));
      const std::vector<float> part = g.to_host();
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t i = 0; i < w; ++i) got[t * D + r * w + i] = part[t * w + i];
      }
    }
    EXPECT_LT(relative_error(got, ref), kRoundedTolerance) << "D=" << D << " over " << ranks << " ranks";
  }
}

TEST(RankReduce, SumsEveryBufferInRankOrderIntoAll) {
  TNL_SKIP_WITHOUT_CUDA();
  const int64_t n = 5003;  // more than one grid-stride pass at small grids, not a multiple of the block
  std::vector<std::vector<float>> host;
  std::deque<DeviceVector<float>> dev;
  cuda::RankBufferSet set;
  set.count = 3;
  for (int r = 0; r < 3; ++r) {
    host.push_back(test::random_vector(n, 40 + r, -100.0f, 100.0f));
    dev.emplace_back(host.back());
    set.data[r] = dev.back().get();
  }
  TNL_EXPECT_CUDA_OK(cuda::sum_rank_buffers(set, n, nullptr));
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = (host[0][i] + host[1][i]) + host[2][i];
  for (int r = 0; r < 3; ++r) EXPECT_EQ(dev[r].to_host(), want) << "rank " << r;  // fp32, same order: exact
  set.count = cuda::kMaxRankBuffers + 1;
  EXPECT_EQ(cuda::sum_rank_buffers(set, n, nullptr), cudaErrorInvalidValue);
}

TYPED_TEST(ElementwiseTest, SgluProductAndBiasAdds) {
  using T = TypeParam;
  for (int64_t G : {256, 12}) {
    const int64_t n = 5;
    const std::vector<float> h12 = test::rounded<T>(test::random_vector(n * 2 * G, G));
    std::vector<float> ref(n * G);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < G; ++i) ref[t * G + i] = h12[t * 2 * G + i] * h12[t * 2 * G + G + i];
    }
    DeviceVector<T> dh(h12), dp(size_t(n * G));
    dp.poison();
    TNL_EXPECT_CUDA_OK(cuda::sglu_product<T>(dh.get(), n, G, dp.get(), nullptr));
    EXPECT_LT(relative_error(dp.to_host(), ref), kRoundedTolerance) << "G=" << G;

    const std::vector<float> bias = test::rounded<T>(test::random_vector(G, G + 7));
    const std::vector<float> y = test::random_vector(n * G, G + 8);
    std::vector<float> yref = y;
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < G; ++i) yref[t * G + i] += bias[i];
    }
    DeviceVector<T> db(bias);
    DeviceVector<float> dy(y);
    TNL_EXPECT_CUDA_OK(cuda::add_bias_f32<T>(dy.get(), db.get(), n, G, nullptr));
    EXPECT_LT(relative_error(dy.to_host(), yref), 1e-6);
    DeviceVector<T> dyt(y);
    TNL_EXPECT_CUDA_OK(cuda::add_bias<T>(dyt.get(), db.get(), n, G, nullptr));
    EXPECT_LT(relative_error(dyt.to_host(), yref), kRoundedTolerance);
  }
}

template <typename T>
void split_qkv_case(int64_t e, Activation act) {
  const int64_t n = 6, H = 3, D = H * e;
  const std::vector<float> qkvu = test::rounded<T>(test::random_vector(n * 4 * D, 11, -2.0f, 2.0f));
  const std::vector<float> theta = test::random_vector(H * e, 12, 0.0f, 1.0f);
  const std::vector<int32_t> positions = {0, 1, 2, 99999, 40, 41};
  for (bool lrpe : {false, true}) {
    const int64_t ek = lrpe ? 2 * e : e;
    std::vector<float> qr(H * n * ek), kr(H * n * ek), vr(H * n * e);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < H; ++h) {
        std::vector<float> q(qkvu.begin() + t * 4 * D + h * e, qkvu.begin() + t * 4 * D + h * e + e);
        std::vector<float> k(qkvu.begin() + t * 4 * D + D + h * e, qkvu.begin() + t * 4 * D + D + h * e + e);
        ref::activate(act, q.data(), e);
        ref::activate(act, k.data(), e);
        float* qo = qr.data() + (h * n + t) * ek;
        float* ko = kr.data() + (h * n + t) * ek;
        if (lrpe) {
          ref::lrpe(q.data(), e, theta.data() + h * e, 1, e, positions[t], qo);
          ref::lrpe(k.data(), e, theta.data() + h * e, 1, e, positions[t], ko);
        } else {
          std::copy(q.begin(), q.end(), qo);
          std::copy(k.begin(), k.end(), ko);
        }
        std::copy_n(qkvu.begin() + t * 4 * D + 2 * D + h * e, e, vr.begin() + (h * n + t) * e);
      }
    }
    DeviceVector<T> dqkvu(qkvu), dq(qr.size()), dk(kr.size()), dv(vr.size());
    DeviceVector<float> dtheta(theta);
    DeviceVector<int32_t> dpos(positions);
    dq.poison();
    dk.poison();
    dv.poison();
    TNL_EXPECT_CUDA_OK(cuda::split_qkv<T>(dqkvu.get(), n, H, e, act, lrpe ? dtheta.get() : nullptr,
                                          dpos.get(), dq.get(), dk.get(), dv.get(), nullptr));
    const std::string where =
        "e=" + std::to_string(e) + " lrpe " + std::to_string(lrpe) + " act " + std::to_string(int(act));
    EXPECT_LT(relative_error(dq.to_host(), qr), kRoundedTolerance) << where;
    EXPECT_LT(relative_error(dk.to_host(), kr), kRoundedTolerance) << where;
    EXPECT_EQ(dv.to_host(), vr) << "v is copied as is";
  }
}

TYPED_TEST(ElementwiseTest, SplitQkvAppliesActivationAndLrpe) {
  using T = TypeParam;
  for (int64_t e : {16, 12}) {  // the 16-byte path and the per-channel one
    for (Activation act : {Activation::kSilu, Activation::kOnePlusElu, Activation::kSigmoid}) split_qkv_case<T>(e, act);
  }
}

TYPED_TEST(ElementwiseTest, ConvertsEveryCheckpointDtype) {
  using T = TypeParam;
  const std::vector<float> x = test::random_vector(1000, 3, -4.0f, 4.0f);
  const std::vector<float> want = test::rounded<T>(x);
  DeviceVector<float> src32(x);
  DeviceVector<__nv_bfloat16> src16(x);
  DeviceVector<T> dst(x.size());
  dst.poison();
  TNL_EXPECT_CUDA_OK(cuda::convert_elements<T>(cuda::ElementType::kF32, src32.get(), int64_t(x.size()), dst.get(), nullptr));
  EXPECT_EQ(dst.to_host(), want);
  dst.poison();
  TNL_EXPECT_CUDA_OK(cuda::convert_elements<T>(cuda::ElementType::kBF16, src16.get(), int64_t(x.size()), dst.get(), nullptr));
  EXPECT_LT(relative_error(dst.to_host(), x), kRoundedTolerance);
}

}  // namespace
}  // namespace tnl
