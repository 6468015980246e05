// Lightning Attention prefill (kernels/cuda/lightning_prefill.cu + lightning_scan.cu)
// against the recurrent CPU reference (kernels/cpu/reference.h), on random inputs:
// a ragged variable-length batch in one launch (n = 1, n not a multiple of the
// block, several blocks), fresh sequences and sequences continuing from their
// slot's state, sequences cut into several segments (the carry path), every tile
// shape (e ∈ {32, 64, 128}, with and without LRPE's e_k = 2e; at e = 128 both
// mma.sync value-slice widths and, at e_k = 128, the warpgroup-MMA tile of sm_90a,
// which must all agree bit for bit), bf16 and fp16.
// Checks every output row (poisoned first), every slot state the launch owns,
// and that no other slot changed. Skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
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

// model-spec §6: bf16 operands with fp32 accumulation.
constexpr double kTolerance = 1e-2;

struct SequenceCase {
  int32_t len;
  bool fresh;  // false: continue from the slot's (random) state
  int32_t slot;
};

struct LightningCase {
  int64_t e;
  bool lrpe;
  int32_t max_segment;  // 0: the planner chooses; else forces short segments (carry path)
  int32_t slice = 0;    // LightningArgs::slice_columns (0: the plan's)
  bool wgmma = true;    // LightningArgs::allow_wgmma
  int32_t state_parts = 0;  // plan_lightning's (0: the planner chooses)
  std::string name() const {
    return "e" + std::to_string(e) + (lrpe ? "_lrpe" : "") + (max_segment ? "_seg" + std::to_string(max_segment) : "") +
           (slice ? "_slice" + std::to_string(slice) : "") + (wgmma ? "" : "_mma.sync") +
           (state_parts ? "_parts" + std::to_string(state_parts) : "");
  }
};

struct LightningResult {
  std::vector<float> o, states;
};

template <typename T>
void run_lightning_case(const LightningCase& c, const std::vector<SequenceCase>& seqs, uint64_t seed,
                        LightningResult* result = nullptr) {
  const int64_t H = 3, e = c.e, ek = c.lrpe ? 2 * e : e;
  const std::vector<float> rates = {0.9f, 0.05f, 0.0005f};  // fast decay … λ ≈ 1 (the last layer's case)
  const int32_t num_slots = 6;
  const int64_t head_state = ek * e;
  const int64_t slot_stride = H * head_state + 64;  // other layers' state sits between slots
  const int64_t layer_offset = 32;                  // this layer's state does not start the buffer

  int64_t N = 0;
  std::vector<int32_t> lens, seq_slot, seq_fresh;
  for (const SequenceCase& s : seqs) {
    lens.push_back(s.len);
    seq_slot.push_back(s.slot);
    seq_fresh.push_back(s.fresh ? 1 : 0);
    N += s.len;
  }
  // Head-major inputs, rounded to T so the reference sees what the kernel sees.
  const std::vector<float> q = test::rounded<T>(test::random_vector(H * N * ek, seed + 1, -0.5f, 0.5f));
  const std::vector<float> k = test::rounded<T>(test::random_vector(H * N * ek, seed + 2, -0.5f, 0.5f));
  const std::vector<float> v = test::rounded<T>(test::random_vector(H * N * e, seed + 3, -0.5f, 0.5f));
  const std::vector<float> states0 = test::random_vector(layer_offset + num_slots * slot_stride, seed + 4);

  // Reference: the recurrence per (sequence, head), from the slot state or zero.
  std::vector<float> o_ref(N * H * e), states_ref = states0;
  int64_t begin = 0;
  for (const SequenceCase& s : seqs) {
    for (int64_t h = 0; h < H; ++h) {
      float* S = states_ref.data() + layer_offset + s.slot * slot_stride + h * head_state;
      if (s.fresh) std::fill(S, S + head_state, 0.0f);
      std::vector<float> o(s.len * e);
      ref::attention_recurrent(q.data() + (h * N + begin) * ek, k.data() + (h * N + begin) * ek,
                               v.data() + (h * N + begin) * e, s.len, ek, e, rates[h], S, o.data());
      for (int64_t t = 0; t < s.len; ++t) {
        std::copy_n(o.data() + t * e, e, o_ref.data() + (begin + t) * H * e + h * e);
      }
    }
    begin += s.len;
  }

  const cuda::LightningPlan plan = cuda::plan_lightning(lens, H, e, 264, c.max_segment, c.state_parts);
  if (c.max_segment > 0) {
    ASSERT_GT(plan.num_multi, 0) << "the case must exercise the carry path";
  }
  if (c.state_parts > 1) {
    ASSERT_GT(plan.num_parts, plan.num_segments - int32_t(lens.size())) << "the case must cut segments into parts";
  }
  DeviceVector<T> dq(q), dk(k), dv(v), dout(size_t(N * H * e));
  DeviceVector<float> drates(rates), dstates(states0);
  DeviceVector<float> dscratch(size_t(std::max<int64_t>(1, cuda::lightning_scratch_floats(plan, H, ek, e))));
  auto nonempty = [](const std::vector<int32_t>& v) { return v.empty() ? std::vector<int32_t>{0} : v; };
  DeviceVector<int32_t> dsegments(plan.segments), dmulti(nonempty(plan.multi)), dparts(nonempty(plan.parts));
  DeviceVector<int32_t> dslot(seq_slot), dfresh(seq_fresh);
  dout.poison();

  cuda::LightningArgs a;
  a.total_tokens = N;
  a.heads = H;
  a.ek = ek;
  a.e = e;
  a.rates = drates.get();
  a.segments = dsegments.get();
  a.multi = dmulti.get();
  a.parts = dparts.get();
  a.set_plan(plan);
  a.seq_slot = dslot.get();
  a.seq_fresh = dfresh.get();
  a.layer_state = dstates.get() + layer_offset;
  a.slot_stride = slot_stride;
  a.scratch = dscratch.get();
  if (c.slice) a.slice_columns = c.slice;
  a.allow_wgmma = c.wgmma;
  TNL_EXPECT_CUDA_OK(cuda::lightning_prefill<T>(dq.get(), dk.get(), dv.get(), a, dout.get(), nullptr));
  TNL_EXPECT_CUDA_OK(cudaDeviceSynchronize());

  const std::vector<float> o = dout.to_host(), states = dstates.to_host();
  const double o_err = relative_error(o, o_ref);
  std::printf("[lightning %s, %d segments] o rel err %.3e\n", c.name().c_str(), plan.num_segments, o_err);
  EXPECT_LT(o_err, kTolerance) << c.name();

  // Owned slots hold the outgoing state; every other float is untouched.
  std::vector<bool> owned(states0.size(), false);
  for (const SequenceCase& s : seqs) {
    const int64_t at = layer_offset + s.slot * slot_stride;
    std::fill(owned.begin() + at, owned.begin() + at + H * head_state, true);
    const std::vector<float> got(states.begin() + at, states.begin() + at + H * head_state);
    const std::vector<float> want(states_ref.begin() + at, states_ref.begin() + at + H * head_state);
    const double s_err = relative_error(got, want);
    EXPECT_LT(s_err, kTolerance) << c.name() << " slot " << s.slot;
  }
  int64_t changed = 0;
  for (size_t i = 0; i < states0.size(); ++i) changed += !owned[i] && states[i] != states0[i];
  EXPECT_EQ(changed, 0) << c.name() << ": the launch wrote outside its slots";
  if (result) *result = {o, states};
}

template <typename T>
class LightningPrefillTest : public ::testing::Test {};
using ElementTypes = ::testing::Types<__nv_bfloat16, __half>;
TYPED_TEST_SUITE(LightningPrefillTest, ElementTypes);

TYPED_TEST(LightningPrefillTest, RaggedBatchMatchesRecurrence) {
  TNL_SKIP_WITHOUT_CUDA();
  // n = 1, not a multiple of any block, exactly one block, several blocks, long; fresh and continuing.
  const std::vector<SequenceCase> seqs = {{1, true, 3}, {37, false, 0}, {64, true, 5}, {200, false, 2}, {700, true, 4}};
  uint64_t seed = 100;
  for (int64_t e : {32, 64, 128}) {
    for (bool lrpe : {false, true}) {
      for (int32_t max_segment : {0, 128}) {
        seed += 10;
        if (e != 128) {
          // e_k = 128 takes the warpgroup-MMA tile where there is one: also the mma.sync one, same bits.
          if (e == 64 && lrpe) {
            LightningResult chosen, sync;
            run_lightning_case<TypeParam>({e, lrpe, max_segment}, seqs, seed, &chosen);
            run_lightning_case<TypeParam>({e, lrpe, max_segment, 0, false}, seqs, seed, &sync);
            EXPECT_TRUE(chosen.o == sync.o && chosen.states == sync.states) << "e64 lrpe segment " << max_segment;
            continue;
          }
          run_lightning_case<TypeParam>({e, lrpe, max_segment}, seqs, seed);
          continue;
        }
        // Both mma.sync slice widths on the same inputs: each right, and the same bits.
        LightningResult wide, narrow, warpgroup;
        run_lightning_case<TypeParam>({e, lrpe, max_segment, 64, false}, seqs, seed, &wide);
        run_lightning_case<TypeParam>({e, lrpe, max_segment, 32}, seqs, seed, &narrow);
        ASSERT_FALSE(wide.o.empty() || narrow.o.empty());
        EXPECT_TRUE(wide.o == narrow.o) << "e128 lrpe " << lrpe << " segment " << max_segment << ": outputs differ";
        EXPECT_TRUE(wide.states == narrow.states) << "e128 lrpe " << lrpe << " segment " << max_segment << ": states differ";
        // The 64-column tile as the launcher picks it (warpgroup MMA at e_k = 128 on
        // sm_90a): the same bits too. The launcher's choice depends on the step's
        // other sequences (the plan's slice width), so equal bits keep a prompt's
        // result independent of its company (measured so on an H100, nvcc 13.0).
        run_lightning_case<TypeParam>({e, lrpe, max_segment, 64}, seqs, seed, &warpgroup);
        EXPECT_TRUE(warpgroup.o == wide.o) << "e128 lrpe " << lrpe << " segment " << max_segment << ": outputs differ";
        EXPECT_TRUE(warpgroup.states == wide.states) << "e128 lrpe " << lrpe << " segment " << max_segment
                                                     << ": states differ";
      }
    }
  }
}

TYPED_TEST(LightningPrefillTest, OneLongContinuingSequenceAcrossManySegments) {
  TNL_SKIP_WITHOUT_CUDA();
  // A single sequence: the planner cuts it so that the chip fills; the first
  // segment starts from the slot state, the rest are carried.
  run_lightning_case<TypeParam>({64, true, 0}, {{3000, false, 1}}, 7);
  run_lightning_case<TypeParam>({128, false, 0}, {{2049, false, 0}}, 8);
}

TYPED_TEST(LightningPrefillTest, StatesPassInPartsMatchesRecurrence) {
  TNL_SKIP_WITHOUT_CUDA();
  // Segments of 128 tokens (the planner's, capped at 512) whose states pass runs
  // in parts of one block (forced: the planner keeps parts of ≥ 128 tokens),
  // continuing and fresh, a sequence too short to cut among them; at e_k = 128
  // the mma.sync tile on the same plan gives the same bits as the launcher's choice.
  const std::vector<SequenceCase> seqs = {{1000, false, 1}, {37, true, 2}, {2500, true, 3}, {700, false, 5}};
  uint64_t seed = 300;
  for (int64_t e : {64, 128}) {
    for (bool lrpe : {false, true}) {
      LightningResult chosen, sync;
      run_lightning_case<TypeParam>({e, lrpe, 512, 0, true, 2}, seqs, seed += 10, &chosen);
      if (e != 128 || lrpe) continue;
      run_lightning_case<TypeParam>({e, lrpe, 512, 64, false, 2}, seqs, seed, &sync);
      EXPECT_TRUE(chosen.o == sync.o && chosen.states == sync.states) << "e128 parts: the tiles differ";
    }
  }
}

TEST(LightningPlanTest, SegmentsCoverEverySequenceInOrder) {
  const std::vector<int32_t> lens = {1, 300, 5000, 64};
  for (int32_t max_segment : {0, 64, 100}) {
    const cuda::LightningPlan plan = cuda::plan_lightning(lens, 8, 128, 264, max_segment);
    std::vector<int64_t> covered(lens.size(), 0);
    int64_t next_token = 0;
    for (int32_t s = 0; s < plan.num_segments; ++s) {
      const int32_t begin = plan.segments[4 * s], len = plan.segments[4 * s + 1], seq = plan.segments[4 * s + 2];
      EXPECT_EQ(begin, next_token);
      EXPECT_GT(len, 0);
      if (max_segment > 0) {
        EXPECT_LE(len, (max_segment + 63) / 64 * 64);
      }
      covered[seq] += len;
      next_token += len;
    }
    for (size_t i = 0; i < lens.size(); ++i) EXPECT_EQ(covered[i], lens[i]) << "sequence " << i;
  }
}

// The parts tile every non-last segment of every cut sequence, in order, and the
// multi entries say which (seq, first segment, count, first part, parts).
void expect_parts_tile_non_last_segments(const cuda::LightningPlan& plan) {
  ASSERT_EQ(plan.multi.size(), size_t(5 * plan.num_multi));
  ASSERT_EQ(plan.parts.size(), size_t(4 * plan.num_parts));
  int32_t next_part = 0;
  for (int32_t m = 0; m < plan.num_multi; ++m) {
    const int32_t* e = plan.multi.data() + 5 * m;
    const int32_t seq = e[0], first = e[1], count = e[2], first_part = e[3], parts = e[4];
    EXPECT_EQ(first_part, next_part);
    int32_t p = first_part;
    for (int32_t j = first; j < first + count - 1; ++j) {
      const int32_t begin = plan.segments[4 * j], end = begin + plan.segments[4 * j + 1];
      for (int32_t at = begin; at < end; ++p) {
        ASSERT_LT(p, first_part + parts) << "sequence " << seq << " segment " << j;
        EXPECT_EQ(plan.parts[4 * p], at);
        EXPECT_GT(plan.parts[4 * p + 1], 0);
        EXPECT_EQ(plan.parts[4 * p + 2], seq);
        EXPECT_EQ(plan.parts[4 * p + 3], 0);
        at += plan.parts[4 * p + 1];
        EXPECT_LE(at, end);
      }
    }
    EXPECT_EQ(p, first_part + parts) << "sequence " << seq << ": parts past its non-last segments";
    next_part = first_part + parts;
  }
  EXPECT_EQ(next_part, plan.num_parts);
}

TEST(LightningPlanTest, StatesPassPartsFillTheSmsAndTileTheNonLastSegments) {
  // Four 32k sequences, 16 heads: two segments each; the four non-last ones alone
  // would give the states pass 64 CTAs on 132 SMs, so each is cut in two.
  const cuda::LightningPlan longer = cuda::plan_lightning(std::vector<int32_t>(4, 32768), 16, 128, 264);
  EXPECT_EQ(longer.num_parts, 8);
  expect_parts_tile_non_last_segments(longer);
  // One long prompt on 8 heads: 15 non-last segments already give 120 CTAs.
  const cuda::LightningPlan one = cuda::plan_lightning({8192}, 8, 128, 264);
  EXPECT_EQ(one.num_parts, one.num_segments - 1);
  expect_parts_tile_non_last_segments(one);
  // Forced (tests, tnl-bench): 512-token segments (64 heads: the planner's cut is
  // longer, capped at 512) in parts of 192, 192 and 128; one part a segment.
  const cuda::LightningPlan forced = cuda::plan_lightning({1000, 37, 2500}, 64, 64, 264, 512, 3);
  EXPECT_EQ(forced.max_segment_len, 512);
  EXPECT_EQ(forced.num_parts, 3 * (1 + 4));
  expect_parts_tile_non_last_segments(forced);
  const cuda::LightningPlan whole = cuda::plan_lightning(std::vector<int32_t>(4, 32768), 16, 128, 264, 0, 1);
  EXPECT_EQ(whole.num_parts, 4);
  expect_parts_tile_non_last_segments(whole);
  // Chosen parts are never shorter than kLightningMinSegment: 256-token segments of
  // a lone prompt on one head stay in (at most) two parts.
  const cuda::LightningPlan thin = cuda::plan_lightning({4096}, 1, 128, 264, 256);
  for (int32_t p = 0; p < thin.num_parts; ++p) EXPECT_GE(thin.parts[4 * p + 1], cuda::kLightningMinSegment);
  expect_parts_tile_non_last_segments(thin);
}

TEST(LightningPlanTest, ShortSequencesAreCutIntoMinimumSegmentsAndTheStartUpBoundHolds) {
  // One 512-token prompt on a 132-SM chip: too few CTAs, so it is cut into
  // segments of kLightningMinSegment tokens.
  const cuda::LightningPlan one = cuda::plan_lightning({512}, 8, 128, 264);
  EXPECT_EQ(one.num_segments, 512 / cuda::kLightningMinSegment);
  EXPECT_EQ(one.max_segment_len, cuda::kLightningMinSegment);
  EXPECT_EQ(one.slice_columns, 32) << "4 segments x 8 heads x 2 wide slices = 64 CTAs < 132 SMs";
  // Random steps of at most 8192 tokens in at most 64 sequences, several shapes:
  // never more segments than the start-up sizing allows.
  std::mt19937 rng(5);
  for (const auto [heads, e] : {std::pair<int64_t, int64_t>{8, 128}, {2, 32}, {16, 64}, {1, 128}}) {
    for (int trial = 0; trial < 200; ++trial) {
      const int64_t max_tokens = 8192, max_seqs = 64;
      const int seqs = std::uniform_int_distribution<int>(1, int(max_seqs))(rng);
      int64_t left = max_tokens;
      std::vector<int32_t> lens;
      for (int i = 0; i < seqs && left > 0; ++i) {
        const int32_t n = std::uniform_int_distribution<int32_t>(1, int32_t(std::min<int64_t>(left, 3000)))(rng);
        lens.push_back(n);
        left -= n;
      }
      const cuda::LightningPlan plan = cuda::plan_lightning(lens, heads, e, 264);
      ASSERT_LE(plan.num_segments, cuda::lightning_max_segments(max_tokens, max_seqs, heads, e, 264))
          << "heads " << heads << " e " << e << " sequences " << lens.size();
      ASSERT_LE(plan.num_parts, cuda::lightning_max_parts(max_tokens, heads, e, 264))
          << "heads " << heads << " e " << e << " sequences " << lens.size();
      expect_parts_tile_non_last_segments(plan);
    }
  }
}

TEST(LightningPlanTest, AShortTailIsSpreadOverTheOtherSegmentsOnlyWhereTheyGrowLittle) {
  // Four 32k sequences, 16 heads: pieces of 15,936 tokens would leave a 896-token
  // tail, and every piece but the last goes through the states pass; two pieces
  // of 16,384 read half of K and V there instead of 97%.
  const cuda::LightningPlan longer = cuda::plan_lightning(std::vector<int32_t>(4, 32768), 16, 128, 264);
  EXPECT_EQ(longer.num_segments, 8);
  EXPECT_EQ(longer.max_segment_len, 16384);
  const cuda::LightningPlan eight_k = cuda::plan_lightning(std::vector<int32_t>(4, 8192), 16, 128, 264);
  EXPECT_EQ(eight_k.num_segments, 8);
  EXPECT_EQ(eight_k.max_segment_len, 4096);
  // A 515-token prompt: pieces of two blocks and a 3-token tail; spreading it would
  // make two-block pieces three blocks long, so it stays.
  const cuda::LightningPlan short_prompt = cuda::plan_lightning({515}, 8, 128, 264);
  EXPECT_EQ(short_prompt.num_segments, 5);
  EXPECT_EQ(short_prompt.max_segment_len, cuda::kLightningMinSegment);
  // A forced segment length (tests of the carry path) is kept as it is: 2,048,
  // 2,048 and 4 tokens.
  EXPECT_EQ(cuda::plan_lightning(std::vector<int32_t>(32, 4100), 8, 128, 264, 2048).num_segments, 32 * 3);
}

TEST(LightningPrefillArgsTest, RejectsSliceWidthsTheHeadWidthDoesNotHave) {
  // Refused before anything touches a device, so this runs without a GPU too.
  int32_t ints[4] = {0, 1, 0, 3};
  float floats[1] = {0.0f};
  __nv_bfloat16 t[1];
  cuda::LightningArgs a;
  a.total_tokens = 1;
  a.heads = 1;
  a.rates = floats;
  a.segments = ints;
  a.seq_slot = ints;
  a.seq_fresh = ints;
  a.layer_state = floats;
  a.num_segments = 1;
  for (const auto [e, slice] : {std::pair<int64_t, int32_t>{128, 48}, {128, 16}, {64, 32}, {32, 64}, {32, 16}}) {
    a.e = a.ek = e;
    a.slice_columns = slice;
    EXPECT_EQ(cuda::lightning_prefill<__nv_bfloat16>(t, t, t, a, t, nullptr), cudaErrorInvalidValue)
        << "e " << e << " slice " << slice;
  }
}

TEST(LightningPlanTest, SliceWidthAndUncutShortSequencesFollowTheChipsFill) {
  // Six 512-token turns (385M shape, 132 SMs): 32-column CTAs of the whole
  // sequences (6 x 8 x 4 = 192) fill the SMs, so nothing is cut.
  const cuda::LightningPlan turns = cuda::plan_lightning(std::vector<int32_t>(6, 512), 8, 128, 264);
  EXPECT_EQ(turns.num_segments, 6);
  EXPECT_EQ(turns.num_multi, 0);
  EXPECT_EQ(turns.slice_columns, 32);
  // Turns of 1,024 tokens too (the longest left whole).
  EXPECT_EQ(cuda::plan_lightning(std::vector<int32_t>(6, 1024), 8, 128, 264).num_segments, 6);
  // Longer turns are cut as before, into 64-column CTAs once those fill the SMs.
  const cuda::LightningPlan longer = cuda::plan_lightning(std::vector<int32_t>(6, 1500), 8, 128, 264);
  EXPECT_GT(longer.num_multi, 0);
  EXPECT_EQ(longer.slice_columns, 0);
  // Two short turns do not fill the SMs uncut: cut into 8 segments of 128 tokens,
  // and 32 columns (8 x 8 x 2 = 128 64-column CTAs < 132).
  const cuda::LightningPlan two = cuda::plan_lightning({512, 512}, 8, 128, 264);
  EXPECT_EQ(two.num_segments, 8);
  EXPECT_GT(two.num_multi, 0);
  EXPECT_EQ(two.slice_columns, 32);
  // A long prompt fills the chip with 64-column CTAs; other head widths keep theirs.
  EXPECT_EQ(cuda::plan_lightning({8192}, 8, 128, 264).slice_columns, 0);
  EXPECT_EQ(cuda::plan_lightning({512}, 8, 64, 264).slice_columns, 0);
  // Ten turns: 64-column CTAs of the whole sequences would fill the SMs once (160),
  // a case not measured uncut: cut as before.
  EXPECT_GT(cuda::plan_lightning(std::vector<int32_t>(10, 512), 8, 128, 264).num_multi, 0);
  // Many sequences fill the chip uncut with 64-column CTAs already.
  const cuda::LightningPlan many = cuda::plan_lightning(std::vector<int32_t>(20, 300), 8, 128, 264);
  EXPECT_EQ(many.num_segments, 20);
  EXPECT_EQ(many.slice_columns, 0);
}

}  // namespace
}  // namespace tnl
