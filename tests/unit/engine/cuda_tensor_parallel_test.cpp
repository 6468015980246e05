// Tensor parallelism on the CUDA backend (model-spec §7):
//   - single-device communicator (every rank on one GPU): TP = 2 and 4 against
//     TP = 1 on random checkpoints with LRPE, bias, untied output, 1+elu and a
//     vocabulary that does not divide; prefill, mixed and decode steps, every
//     logits row within the bf16 tolerance of model-spec §6, the decode states
//     equal; on the shipped model, TP = 2 generates the same greedy text as TP = 1
//     (sampled on the device);
//   - NCCL: more ranks than visible GPUs fail at start-up saying what to change
//     (runs everywhere CUDA is built); the collectives and TP = 2 against TP = 1
//     run where two GPUs are visible and skip otherwise.
// GPU cases skip without a CUDA device (CI) and run for real on the GPU machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "engine/backend_factory/backend_factory.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/random_checkpoint.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_communicator.h"
#endif
#include "tests/support/random.h"
#include "tests/support/test_paths.h"

namespace tnl {
namespace {

using test::relative_error;

constexpr double kBf16Tolerance = 1e-2;  // model-spec §6, on the logits

#if defined(TNL_WITH_CUDA)

#define TNL_SKIP_WITHOUT_GPUS(n)                                                            \
  do {                                                                                      \
    if (cuda_device_count() < (n)) GTEST_SKIP() << "needs " << (n) << " visible CUDA devices"; \
  } while (0)

struct Variant {
  std::string name;
  ModelConfig config;
  std::vector<int32_t> sizes;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

std::vector<Variant> variants() {
  std::vector<Variant> out;
  ModelConfig a;  // e = 32, LRPE on layers 0 and 2, untied, bias, V = 301 (pads over 2 and 4)
  a.vocab_size = 301;
  a.dim = 128;
  a.num_layers = 3;
  a.num_heads = 4;
  a.hidden_dim = 128;
  a.glu_dim = 192;
  a.lrpe_layers = {true, false, true};
  a.tie_word_embeddings = false;
  a.bias = true;
  out.push_back({"h4_e32_untied_bias", a, {2, 4}});
  ModelConfig b = a;  // H = 8, e = 64 (the 385M tile), tied, 1+elu, no bias
  b.num_heads = 8;
  b.hidden_dim = 512;
  b.glu_dim = 256;
  b.tie_word_embeddings = false;
  b.bias = false;
  b.activation = Activation::kOnePlusElu;
  b.lrpe_layers = {false, true, false};
  b.tie_word_embeddings = true;
  out.push_back({"h8_e64_elu_tied", b, {2, 4}});
  return out;
}

std::unique_ptr<Backend> gpu_backend(const Checkpoint& checkpoint, int32_t tp, const std::string& comm) {
  BackendOptions o;
  o.device = "cuda";
  o.max_slots = 8;
  o.prefill_block = 64;
  o.gpu_memory_fraction = 0.1f;
  o.tensor_parallel_size = tp;
  o.tensor_parallel_comm = comm;
  auto b = make_backend(checkpoint, o);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  return b.has_value() ? std::move(b).value() : nullptr;
}

std::vector<int32_t> random_tokens(int64_t n, uint64_t seed, int64_t vocab) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = int32_t(rng() % uint64_t(vocab));
  return t;
}

// Prefills (one long enough for several Lightning segments), a mixed step, then
// decode-only steps (the path that replays graphs at TP = 1); every row.
std::vector<StepOutput> run_steps(Backend& b) {
  const int64_t V = b.config().vocab_size;
  const auto a = random_tokens(700, 1, V), c = random_tokens(9, 2, V), d = random_tokens(90, 3, V);
  std::vector<StepPlan> plans(4);
  plans[0].chunks = {{0, 0, a, LogitsMode::kLast}, {1, 0, c, LogitsMode::kAll}, {2, 0, {d.begin(), d.begin() + 70}, LogitsMode::kAll}};
  plans[1].chunks = {{0, 700, {a[3]}, LogitsMode::kLast}, {2, 70, {d.begin() + 70, d.end()}, LogitsMode::kAll},
                     {1, 9, {c[0]}, LogitsMode::kAll}};
  plans[2].chunks = {{0, 701, {a[5]}, LogitsMode::kLast}, {1, 10, {c[4]}, LogitsMode::kLast}, {2, 90, {d[0]}, LogitsMode::kLast}};
  plans[3].chunks = {{0, 702, {a[6]}, LogitsMode::kLast}, {1, 11, {c[5]}, LogitsMode::kLast}, {2, 91, {d[1]}, LogitsMode::kLast}};
  std::vector<StepOutput> outs(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    const Status s = b.run_step(plans[i], &outs[i]);
    EXPECT_TRUE(s.is_ok()) << "step " << i << ": " << s.to_string();
  }
  return outs;
}

std::vector<float> read_state(Backend& b, int32_t slot) {
  std::vector<float> s(size_t(b.state_bytes_per_slot() / 4));
  EXPECT_TRUE(b.read_state({StateTier::kLive, slot}, std::as_writable_bytes(std::span(s))).is_ok());
  return s;
}

class CudaTensorParallelTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    TNL_SKIP_WITHOUT_GPUS(1);
    dir_ = std::filesystem::temp_directory_path() / ("tnl_cuda_tp_" + GetParam().name + "_" + std::to_string(::getpid()));
    ASSERT_TRUE(write_random_checkpoint(dir_, GetParam().config, 5, DType::kBF16).is_ok());
    auto ckpt = Checkpoint::open(dir_);
    ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
    checkpoint_ = std::move(ckpt).value();
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Every step's logits of TP = `tp` over `comm` against TP = 1, and the states.
  void expect_equals_one_rank(int32_t tp, const std::string& comm) {
    auto one = gpu_backend(*checkpoint_, 1, "auto");
    ASSERT_NE(one, nullptr);
    const std::vector<StepOutput> want = run_steps(*one);
    auto sharded = gpu_backend(*checkpoint_, tp, comm);
    ASSERT_NE(sharded, nullptr);
    EXPECT_EQ(sharded->name(), "cuda x" + std::to_string(tp));
    EXPECT_GE(sharded->num_slots(), 3);
    const std::vector<StepOutput> got = run_steps(*sharded);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i].row_begin, want[i].row_begin);
      ASSERT_EQ(got[i].logits.size(), want[i].logits.size());
      const double err = relative_error(got[i].logits, want[i].logits);
      std::printf("[%s] TP %d (%s) step %zu logits rel err %.3e\n", GetParam().name.c_str(), tp, comm.c_str(), i, err);
      EXPECT_LT(err, kBf16Tolerance) << "TP " << tp << " step " << i;
    }
    for (int32_t slot = 0; slot < 3; ++slot) {
      const double err = relative_error(read_state(*sharded, slot), read_state(*one, slot));
      std::printf("[%s] TP %d (%s) slot %d state rel err %.3e\n", GetParam().name.c_str(), tp, comm.c_str(), slot, err);
      EXPECT_LT(err, kBf16Tolerance) << "TP " << tp << " slot " << slot;
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<Checkpoint> checkpoint_;
};

TEST_P(CudaTensorParallelTest, SingleDeviceRanksEqualOneRank) {
  for (int32_t tp : GetParam().sizes) expect_equals_one_rank(tp, "single-device");
}

TEST_P(CudaTensorParallelTest, NcclRanksEqualOneRank) {
  TNL_SKIP_WITHOUT_GPUS(2);
  if (!nccl_built()) GTEST_SKIP() << "built without NCCL";
  for (int32_t tp : GetParam().sizes) {
    if (tp <= cuda_device_count()) expect_equals_one_rank(tp, "nccl");
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, CudaTensorParallelTest, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return info.param.name; });

// Greedy generation sampled on the device, as the engine runs it.
std::vector<int32_t> greedy_on_device(Backend& b, std::vector<int32_t> prompt, int n) {
  std::vector<int32_t> ids;
  int64_t pos = 0;
  std::vector<int32_t> feed = std::move(prompt);
  for (int i = 0; i < n; ++i) {
    StepPlan plan;
    SequenceChunk chunk{0, pos, feed, LogitsMode::kNone};
    chunk.sample = DeviceSampling{};  // RowSampling{}: temperature 0, greedy
    plan.chunks = {chunk};
    StepOutput out;
    const Status s = b.run_step(plan, &out);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (!s.is_ok() || out.sampled.size() != 1) break;
    ids.push_back(out.sampled[0].token);
    pos += int64_t(feed.size());
    feed = {ids.back()};
  }
  return ids;
}

TEST(CudaTensorParallelShippedModel, TwoRanksOnOneGpuGenerateTheSameGreedyText) {
  TNL_SKIP_WITHOUT_GPUS(1);
  auto ckpt = Checkpoint::open(test::source_dir() / "models/tnl-brown-12m");
  ASSERT_TRUE(ckpt.has_value()) << ckpt.status().to_string();
  const std::vector<int32_t> prompt = {1, 517, 1204, 33, 981, 2047, 12, 400, 77, 3000, 41, 8};
  auto one = gpu_backend(**ckpt, 1, "auto");
  auto two = gpu_backend(**ckpt, 2, "single-device");
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  const std::vector<int32_t> want = greedy_on_device(*one, prompt, 48);
  const std::vector<int32_t> got = greedy_on_device(*two, prompt, 48);
  ASSERT_EQ(want.size(), 48u);
  EXPECT_EQ(got, want);
}

TEST(NcclCommunicator, MoreRanksThanVisibleGpusFailAtStartUp) {
  const int visible = cuda_device_count();
  auto comms = make_nccl_communicators(0, visible + 1);
  ASSERT_FALSE(comms.has_value());
  const std::string& m = comms.status().message();
  if (!nccl_built()) {
    EXPECT_NE(m.find("no NCCL"), std::string::npos) << m;
    return;
  }
  EXPECT_NE(m.find("needs " + std::to_string(visible + 1) + " GPUs"), std::string::npos) << m;
  EXPECT_NE(m.find("single-device"), std::string::npos) << m;  // what to change
}

TEST(NcclCommunicator, CollectivesOnTwoGpus) {
  TNL_SKIP_WITHOUT_GPUS(2);
  if (!nccl_built()) GTEST_SKIP() << "built without NCCL";
  auto made = make_nccl_communicators(0, 2);
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  CudaCommunicators comms = std::move(made).value();
  constexpr int64_t n = 1001;
  std::vector<std::vector<float>> host = {test::random_vector(n, 1), test::random_vector(n, 2)};
  std::vector<float*> data(2), gathered(2);
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(cudaSetDevice(comms[r]->device()), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&data[r], n * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&gathered[r], 2 * n * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(data[r], host[r].data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  // NCCL calls of one group from one thread: inside a group call.
  std::vector<Status> statuses(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      cudaSetDevice(comms[r]->device());
      Status s = comms[r]->all_gather(data[r], gathered[r], n);
      if (s.is_ok()) s = comms[r]->all_reduce_sum(data[r], n);
      if (s.is_ok() && cudaStreamSynchronize(comms[r]->stream()) != cudaSuccess) s = internal_error("sync");
      statuses[r] = s;
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : statuses) ASSERT_TRUE(s.is_ok()) << s.to_string();
  for (int r = 0; r < 2; ++r) {
    std::vector<float> sum(n), all(2 * n);
    cudaSetDevice(comms[r]->device());
    ASSERT_EQ(cudaMemcpy(sum.data(), data[r], n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(all.data(), gathered[r], 2 * n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_FLOAT_EQ(sum[i], host[0][i] + host[1][i]);
      ASSERT_EQ(all[i], host[0][i]);
      ASSERT_EQ(all[n + i], host[1][i]);
    }
    cudaFree(data[r]);
    cudaFree(gathered[r]);
  }
}

#else

TEST(CudaTensorParallel, BuiltWithoutCuda) { GTEST_SKIP() << "built without CUDA"; }

#endif

}  // namespace
}  // namespace tnl
