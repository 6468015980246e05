// The CUDA backend's GEMMs (engine/cuda/gemm.h): every algorithm cuBLASLt's
// heuristic offers for the backend's kinds of shape computes Y = beta·Y + X·Wᵀ
// (a tuned choice can be any of them, and which one wins depends on the machine),
// and so does the one tune() keeps. Shapes: a decode-sized qkvu (T out), an
// l3-like product accumulating into an fp32 residual, a logits-like product with
// an odd width. Random inputs; outputs poisoned before each run. And the probe that
// lets decode-graph GEMMs enter as dependent launches. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/random.h"
#if defined(TNL_WITH_CUDA)
#include "engine/cuda/capture_edges.h"
#include "engine/cuda/gemm.h"
#include "kernels/cuda/dependency_probe.h"
#include "kernels/cuda/launchers.h"
#include "tests/unit/kernels_cuda/device_test_support.h"
#endif

namespace tnl {
namespace {

#if defined(TNL_WITH_CUDA)
using test::DeviceVector;
using test::relative_error;

// T outputs are rounded to bf16 (half-ulp 2⁻⁹ per element; model-spec §6 allows
// 1e-2); fp32 outputs differ from the double reference by fp32 accumulation only.
constexpr double kRoundedTolerance = 1e-2;
constexpr double kF32Tolerance = 1e-4;

struct Case {
  GemmShape shape;
  float beta;
};

std::string label(const GemmShape& s) {
  return "n=" + std::to_string(s.n) + " in=" + std::to_string(s.in) + " out=" + std::to_string(s.out) +
         (s.f32_out ? " f32" : " bf16") + (s.accumulate ? " +=" : "");
}

// beta·y0 + x·wᵀ in double, from the values the GPU sees (x, w rounded to bf16).
std::vector<float> reference(const Case& c, const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& y0) {
  const GemmShape& s = c.shape;
  std::vector<float> y(size_t(s.n * s.out));
  for (int64_t i = 0; i < s.n; ++i) {
    for (int64_t o = 0; o < s.out; ++o) {
      double acc = 0;
      for (int64_t k = 0; k < s.in; ++k) acc += double(x[size_t(i * s.in + k)]) * double(w[size_t(o * s.in + k)]);
      y[size_t(i * s.out + o)] = float(double(c.beta) * double(y0[size_t(i * s.out + o)]) + acc);
    }
  }
  return y;
}

class GemmFixture {
 public:
  GemmFixture() : workspace_(32 << 20) {
    cudaStreamCreate(&stream_);
    auto created = GemmRunner::create(CUDA_R_16BF, stream_, workspace_.get(), workspace_.size());
    EXPECT_TRUE(created.has_value()) << created.status().to_string();
    if (created.has_value()) runner_ = std::move(*created);
  }
  ~GemmFixture() {
    runner_.reset();
    cudaStreamDestroy(stream_);
  }
  GemmRunner& runner() { return *runner_; }
  cudaStream_t stream() const { return stream_; }

 private:
  DeviceVector<std::byte> workspace_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<GemmRunner> runner_;
};

// The operands of one case on the device, and a check of one run against the reference.
class CaseOperands {
 public:
  explicit CaseOperands(const Case& c, uint64_t seed)
      : c_(c),
        x_(test::rounded<__nv_bfloat16>(test::random_vector(c.shape.n * c.shape.in, seed))),
        w_(test::rounded<__nv_bfloat16>(test::random_vector(c.shape.out * c.shape.in, seed + 1, -0.1f, 0.1f))),
        y0_(test::random_vector(c.shape.n * c.shape.out, seed + 2)),
        ref_(reference(c, x_, w_, y0_)),
        dx_(x_),
        dw_(w_),
        dw2_(w_),
        dy_bf16_(c.shape.f32_out ? 0 : size_t(c.shape.n * c.shape.out)),
        dy_f32_(c.shape.f32_out ? size_t(c.shape.n * c.shape.out) : 0) {}

  void* y() { return c_.shape.f32_out ? static_cast<void*>(dy_f32_.get()) : static_cast<void*>(dy_bf16_.get()); }
  const void* x() const { return dx_.get(); }
  const void* w() const { return dw_.get(); }
  std::vector<const void*> weights() const { return {dw_.get(), dw2_.get()}; }  // the same values twice

  // y ← y0 (accumulating cases) or NaN, then one run; the error against the reference.
  double run_and_compare(GemmRunner& runner, cudaStream_t stream) {
    if (c_.shape.accumulate) {
      cudaMemcpy(dy_f32_.get(), y0_.data(), y0_.size() * sizeof(float), cudaMemcpyHostToDevice);
    } else if (c_.shape.f32_out) {
      dy_f32_.poison();
    } else {
      dy_bf16_.poison();
    }
    const Status st = runner.run(c_.shape, x(), w(), y(), c_.beta);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    cudaStreamSynchronize(stream);
    return relative_error(c_.shape.f32_out ? dy_f32_.to_host() : dy_bf16_.to_host(), ref_);
  }
  double tolerance() const { return c_.shape.f32_out ? kF32Tolerance : kRoundedTolerance; }

 private:
  Case c_;
  std::vector<float> x_, w_, y0_, ref_;
  DeviceVector<__nv_bfloat16> dx_, dw_, dw2_;
  DeviceVector<__nv_bfloat16> dy_bf16_;
  DeviceVector<float> dy_f32_;
};

const Case kCases[] = {
    {{48, 1024, 4096, false, false}, 0.0f},  // qkvu at a decode batch
    {{256, 2816, 1024, true, true}, 1.0f},   // l3 into the residual stream
    {{17, 256, 1001, true, false}, 0.0f},    // logits of an odd vocabulary
};
#endif

TEST(CudaGemm, EveryHeuristicCandidateAndTheTunedChoiceComputeTheProduct) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  TNL_SKIP_WITHOUT_CUDA();
  GemmFixture f;
  uint64_t seed = 11;
  for (const Case& c : kCases) {
    CaseOperands ops(c, seed += 10);
    int tried = 0;
    for (int i = 0;; ++i) {
      const Status pinned = f.runner().pin(c.shape, i);
      if (!pinned.is_ok()) {
        EXPECT_EQ(pinned.code(), StatusCode::kOutOfRange) << pinned.to_string();
        break;
      }
      const double err = ops.run_and_compare(f.runner(), f.stream());
      EXPECT_LT(err, ops.tolerance()) << label(c.shape) << " candidate " << i;
      ++tried;
    }
    EXPECT_GE(tried, 1) << label(c.shape);

    auto tuned = f.runner().tune(c.shape, ops.x(), ops.weights(), ops.y(), c.beta);
    ASSERT_TRUE(tuned.has_value()) << tuned.status().to_string();
    EXPECT_GE(tuned->candidates, 1);
    EXPECT_LT(tuned->chosen, tried);
    EXPECT_GT(tuned->chosen_us, 0.0);
    EXPECT_LE(tuned->chosen_us, tuned->first_pick_us);
    const double err = ops.run_and_compare(f.runner(), f.stream());
    EXPECT_LT(err, ops.tolerance()) << label(c.shape) << " tuned";
  }
#endif
}

// The probe's premise: behind a programmatic edge, a consumer that does not
// wait (an ordinary copy kernel) runs while the delayed producer spins and reads
// what x held before, and behind an ordinary edge it reads what the producer
// wrote. Then the backend's decode-shaped GEMMs (385M shape, 32-256 rows): each
// probe either passes — and then the same GEMM captured behind a programmatic
// edge, as the decode graphs capture it, gives the reference bits — or leaves
// the shape on ordinary edges; the count is printed.
TEST(CudaGemm, ProgrammaticEdgesOnlyForKernelsThatWait) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  TNL_SKIP_WITHOUT_CUDA();
  GemmFixture f;
  const int64_t n = 1 << 16;  // bf16 elements
  const std::vector<float> src = test::rounded<__nv_bfloat16>(test::random_vector(n, 5));
  DeviceVector<__nv_bfloat16> dsrc(src), dx(static_cast<size_t>(n)), dout(static_cast<size_t>(n));
  for (bool programmatic : {true, false}) {
    cudaMemsetAsync(dx.get(), 0, size_t(n) * 2, f.stream());
    ASSERT_EQ(cudaStreamBeginCapture(f.stream(), cudaStreamCaptureModeThreadLocal), cudaSuccess);
    EXPECT_EQ(cuda::delayed_copy(dsrc.get(), dx.get(), n * 2, 50'000, f.stream()), cudaSuccess);
    if (programmatic) {
      EXPECT_EQ(make_next_capture_edges_programmatic(f.stream()), cudaSuccess);
    }
    EXPECT_EQ(cuda::convert_elements<__nv_bfloat16>(cuda::ElementType::kBF16, dx.get(), n, dout.get(), f.stream()),
              cudaSuccess);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamEndCapture(f.stream(), &graph), cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, f.stream()), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(f.stream()), cudaSuccess);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    const std::vector<float> out = dout.to_host();
    int64_t copied = 0;
    for (int64_t i = 0; i < n; ++i) copied += out[size_t(i)] == src[size_t(i)] && src[size_t(i)] != 0.0f;
    if (programmatic) {
      EXPECT_LT(copied, n / 2) << "a consumer that does not wait read the delayed copy's result";
    } else {
      EXPECT_GT(copied, n * 9 / 10) << "an ordinary edge let the consumer read x before the copy";
    }
  }

  const int64_t d = 1024, D = 1024, G = 2816;
  const std::vector<float> w = test::rounded<__nv_bfloat16>(test::random_vector(4 * D * G, 7, -0.1f, 0.1f));
  DeviceVector<__nv_bfloat16> dw(w);  // large enough for every shape's weight
  int probed = 0, passed = 0;
  for (int64_t rows : {32, 64, 256}) {
    for (const GemmShape& s : {GemmShape{rows, d, 4 * D, false, false}, GemmShape{rows, D, d, true, true},
                               GemmShape{rows, d, 2 * G, false, false}, GemmShape{rows, G, d, true, true}}) {
      auto waits = f.runner().probe_programmatic(s, dw.get());
      ASSERT_TRUE(waits.has_value()) << label(s) << ": " << waits.status().to_string();
      EXPECT_EQ(*waits, f.runner().programmatic(s)) << label(s);
      ++probed;
      passed += *waits;
      ASSERT_TRUE(f.runner().pin(s, 0).is_ok());
      EXPECT_FALSE(f.runner().programmatic(s)) << "pinning another kernel forgets the probe, " << label(s);
    }
  }
  std::printf("%d of %d decode-shaped GEMMs wait for a programmatic predecessor\n", passed, probed);

  // choose_for_graphs: whatever it keeps computes the product, and the flag says
  // whether the kept kernel passed the probe.
  for (const Case& c : kCases) {
    CaseOperands ops(c, 77);
    auto chosen = f.runner().choose_for_graphs(c.shape, ops.x(), ops.weights(), ops.y(), c.beta, 1.0);
    ASSERT_TRUE(chosen.has_value()) << label(c.shape) << ": " << chosen.status().to_string();
    EXPECT_EQ(chosen->programmatic, f.runner().programmatic(c.shape)) << label(c.shape);
    if (chosen->first_pick_waits) {
      EXPECT_TRUE(chosen->programmatic) << label(c.shape);
    }
    EXPECT_LT(ops.run_and_compare(f.runner(), f.stream()), ops.tolerance()) << label(c.shape) << " chosen for graphs";
    std::printf("%s: first pick waits %d, programmatic %d (candidate %d)\n", label(c.shape).c_str(),
                int(chosen->first_pick_waits), int(chosen->programmatic), chosen->chosen);
  }
#endif
}

TEST(CudaGemm, RejectsWhatItCannotRun) {
#if !defined(TNL_WITH_CUDA)
  GTEST_SKIP() << "built without CUDA";
#else
  TNL_SKIP_WITHOUT_CUDA();
  GemmFixture f;
  CaseOperands ops(kCases[0], 3);
  const GemmShape s = kCases[0].shape;
  EXPECT_EQ(f.runner().run(s, ops.x(), ops.w(), ops.y(), 1.0f).code(), StatusCode::kInvalidArgument)
      << "beta on a shape that does not accumulate";
  const auto* misaligned = static_cast<const std::byte*>(ops.x()) + 16;
  EXPECT_EQ(f.runner().run(s, misaligned, ops.w(), ops.y(), 0.0f).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.runner().run({-1, 1024, 4096, false, false}, ops.x(), ops.w(), ops.y(), 0.0f).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(f.runner().run({0, 1024, 4096, false, false}, ops.x(), ops.w(), ops.y(), 0.0f).is_ok());
  EXPECT_EQ(f.runner().tune(s, ops.x(), {}, ops.y(), 0.0f).status().code(), StatusCode::kInvalidArgument);
#endif
}

}  // namespace
}  // namespace tnl
