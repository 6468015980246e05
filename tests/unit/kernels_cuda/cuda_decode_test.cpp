// Batched recurrent decode (kernels/cuda/recurrent_decode.cu) against the CPU
// reference: φ and LRPE applied to the qkvu row, the slot state updated in place
// (S = λS + k vᵀ, a position of 0 starting from zero), o = qᵀS. Random inputs,
// scattered slots, positions up to 10⁵ (LRPE angles), head widths with and
// without a float4 remainder, every activation the released models use.
// Skips without a CUDA device.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "kernels/cpu/reference.h"
#include "kernels/cuda/launchers.h"
#include "tests/support/random.h"
#include "tests/unit/kernels_cuda/device_test_support.h"

namespace tnl {
namespace {

using test::DeviceVector;
using test::relative_error;

struct DecodeCase {
  int64_t e;
  bool lrpe;
  Activation act;
  int32_t column_slices = 0;  // 0: the launcher's choice
  int32_t rows_in_flight = 0;  // 0: the default (8)
};

template <typename T>
void run_decode_case(const DecodeCase& c, uint64_t seed) {
  const int64_t H = 3, e = c.e, ek = c.lrpe ? 2 * e : e, D = H * e;
  const std::vector<int32_t> slots = {4, 0, 9, 2, 7, 5, 1};
  const std::vector<int32_t> positions = {0, 5, 100000, 3, 0, 77, 12345};
  const int64_t B = int64_t(slots.size()), num_slots = 10;
  const int64_t head_state = ek * e, slot_stride = H * head_state + 128, layer_offset = 64;
  const std::vector<float> rates = {0.7f, 0.02f, 0.0003f};

  const std::vector<float> qkvu = test::rounded<T>(test::random_vector(B * 4 * D, seed, -2.0f, 2.0f));
  const std::vector<float> theta = test::random_vector(H * e, seed + 1, 0.0f, 1.0f);
  const std::vector<float> states0 = test::random_vector(layer_offset + num_slots * slot_stride, seed + 2);

  std::vector<float> o_ref(B * D), states_ref = states0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      std::vector<float> q(qkvu.begin() + b * 4 * D + h * e, qkvu.begin() + b * 4 * D + h * e + e);
      std::vector<float> k(qkvu.begin() + b * 4 * D + D + h * e, qkvu.begin() + b * 4 * D + D + h * e + e);
      const float* v = qkvu.data() + b * 4 * D + 2 * D + h * e;
      ref::activate(c.act, q.data(), e);
      ref::activate(c.act, k.data(), e);
      std::vector<float> qe(ek), ke(ek);
      if (c.lrpe) {
        ref::lrpe(q.data(), e, theta.data() + h * e, 1, e, positions[b], qe.data());
        ref::lrpe(k.data(), e, theta.data() + h * e, 1, e, positions[b], ke.data());
      } else {
        qe = q;
        ke = k;
      }
      float* S = states_ref.data() + layer_offset + slots[b] * slot_stride + h * head_state;
      if (positions[b] == 0) std::fill(S, S + head_state, 0.0f);
      ref::attention_recurrent(qe.data(), ke.data(), v, 1, ek, e, rates[h], S, o_ref.data() + b * D + h * e);
    }
  }

  DeviceVector<T> dqkvu(qkvu), dout(size_t(B * D));
  DeviceVector<float> dtheta(theta), drates(rates), dstates(states0);
  DeviceVector<int32_t> dpos(positions), dslots(slots);
  dout.poison();
  cuda::DecodeArgs a;
  a.batch = B;
  a.heads = H;
  a.e = e;
  a.lrpe = c.lrpe;
  a.act = c.act;
  a.theta = dtheta.get();
  a.rates = drates.get();
  a.positions = dpos.get();
  a.slots = dslots.get();
  a.layer_state = dstates.get() + layer_offset;
  a.slot_stride = slot_stride;
  a.column_slices = c.column_slices;
  a.rows_in_flight = c.rows_in_flight;
  TNL_EXPECT_CUDA_OK(cuda::recurrent_decode<T>(dqkvu.get(), a, dout.get(), nullptr));
  TNL_EXPECT_CUDA_OK(cudaDeviceSynchronize());

  const std::vector<float> o = dout.to_host(), states = dstates.to_host();
  const std::string name = "e" + std::to_string(e) + (c.lrpe ? " lrpe" : "") + " act " + std::to_string(int(c.act)) +
                           " slices " + std::to_string(c.column_slices) + " in flight " +
                           std::to_string(c.rows_in_flight);
  const double o_err = relative_error(o, o_ref);
  const double s_err = relative_error(states, states_ref);  // fp32 state: the whole buffer, owned slots or not
  std::printf("[decode %s] o rel err %.3e, state rel err %.3e\n", name.c_str(), o_err, s_err);
  EXPECT_LT(o_err, 1e-2) << name;  // o is rounded to T
  EXPECT_LT(s_err, 1e-5) << name;  // fp32 math on the same inputs
  int64_t changed = 0;
  for (int64_t i = 0; i < int64_t(states0.size()); ++i) {
    bool owned = false;
    for (int32_t s : slots) {
      const int64_t at = layer_offset + s * slot_stride;
      owned = owned || (i >= at && i < at + H * head_state);
    }
    changed += !owned && states[i] != states0[i];
  }
  EXPECT_EQ(changed, 0) << name << ": wrote outside its slots";
}

template <typename T>
class RecurrentDecodeTest : public ::testing::Test {};
using ElementTypes = ::testing::Types<__nv_bfloat16, __half>;
TYPED_TEST_SUITE(RecurrentDecodeTest, ElementTypes);

TYPED_TEST(RecurrentDecodeTest, MatchesRecurrenceForEveryShape) {
  TNL_SKIP_WITHOUT_CUDA();
  uint64_t seed = 1;
  for (int64_t e : {8, 32, 64, 128, 96}) {
    for (bool lrpe : {false, true}) {
      for (Activation act : {Activation::kSilu, Activation::kOnePlusElu}) {
        // The launcher's choice (7 sequences × 3 heads: sliced where e allows), one
        // CTA a head, and explicit slices down to 4 columns; each with 8 (the
        // default) and 16 state rows in flight a thread.
        for (int32_t slices : {0, 1, 2, 4, 8}) {
          if (slices > 1 && e % (4 * slices) != 0) continue;
          for (int32_t in_flight : {0, 16}) run_decode_case<TypeParam>({e, lrpe, act, slices, in_flight}, seed += 3);
        }
      }
    }
  }
}

TEST(RecurrentDecodeArgs, RejectsBadShapes) {
  cuda::DecodeArgs a;
  a.batch = 1;
  a.heads = 1;
  a.e = 6;  // not a multiple of 4
  EXPECT_EQ(cuda::recurrent_decode<__nv_bfloat16>(nullptr, a, nullptr, nullptr), cudaErrorInvalidValue);
}

// Host code: runs everywhere. Slices double while the launch stays within 256
// CTAs and a slice keeps at least 16 columns, in whole float4s.
TEST(RecurrentDecodeArgs, ColumnSlicesGiveSmallBatchesMoreCtas) {
  EXPECT_EQ(cuda::decode_column_slices(1, 8, 128), 8);    // 64 CTAs of 16 columns
  EXPECT_EQ(cuda::decode_column_slices(1, 16, 128), 8);   // 128 CTAs
  EXPECT_EQ(cuda::decode_column_slices(16, 8, 128), 2);   // 256 CTAs
  EXPECT_EQ(cuda::decode_column_slices(32, 8, 128), 1);   // 256 CTAs already
  EXPECT_EQ(cuda::decode_column_slices(1, 3, 96), 4);     // 24 columns: 12 would be under 16
  EXPECT_EQ(cuda::decode_column_slices(1, 1, 8), 1);      // too narrow to split
  EXPECT_EQ(cuda::decode_column_slices(7, 3, 64), 4);
  for (int64_t batch : {1, 2, 5, 16, 64, 256}) {
    for (int64_t e : {8, 32, 64, 96, 128}) {
      const int64_t s = cuda::decode_column_slices(batch, 8, e);
      EXPECT_EQ(e % (4 * s), 0) << "batch " << batch << " e " << e;
      EXPECT_TRUE(s == 1 || batch * 8 * s <= 256) << "batch " << batch << " e " << e;
    }
  }
  // Explicit slices that cut a float4 are refused.
  cuda::DecodeArgs a;
  a.batch = 1;
  a.heads = 1;
  a.e = 8;
  a.column_slices = 4;  // 2 columns a slice
  EXPECT_EQ(cuda::recurrent_decode<__nv_bfloat16>(nullptr, a, nullptr, nullptr), cudaErrorInvalidValue);
  a.column_slices = -1;
  EXPECT_EQ(cuda::recurrent_decode<__nv_bfloat16>(nullptr, a, nullptr, nullptr), cudaErrorInvalidValue);
  a.column_slices = 1;
  a.rows_in_flight = 4;  // only 16 and 8 are compiled
  EXPECT_EQ(cuda::recurrent_decode<__nv_bfloat16>(nullptr, a, nullptr, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace tnl
